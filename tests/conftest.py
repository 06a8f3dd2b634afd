"""Makes `tests/support` importable as `support` from every test folder; shared fixtures."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session", autouse=True)
def _host_calibration_cache(tmp_path_factory):
    """Host latency calibrations (edgec.cost_model.host_calibration) go to a folder of this
    session, never into the user's ~/.cache; subprocesses (bench scripts) inherit it."""
    os.environ["EDGEC_CACHE_DIR"] = str(tmp_path_factory.mktemp("edgec-cache"))


class ZooExports:
    """Dynamo exports of zoo models (seeded init), made once per test session.

    Exporting a model takes tens of seconds on CI's two cores, and many test files (passes,
    backends) need the same few graphs: `zoo_exports.get(name, shape)` exports on first use
    and hands every caller its own copy, so tests may change the graph freely.
    """

    def __init__(self) -> None:
        self._protos: dict[tuple[str, tuple[int, ...]], bytes] = {}

    def get(self, name: str, shape: tuple[int, ...]):
        import onnx
        import onnx_ir as ir

        key = (name, tuple(shape))
        if key not in self._protos:
            from edgec.exporters.export import export_onnx
            from edgec.models import create

            model = export_onnx(create(name), key[1])
            self._protos[key] = ir.to_proto(model).SerializeToString()
        return ir.from_proto(onnx.load_from_string(self._protos[key]))


@pytest.fixture(scope="session")
def zoo_exports() -> ZooExports:
    return ZooExports()


class EfficientTAMGraphs:
    """EfficientTAM-Ti/1's graphs at 64×64 (seeded init), each exported once per session.

    `efficienttam_graphs.get("memory_attention")` gives a fresh copy of that graph (its
    dynamic dims' ranges in the metadata `edgec.dim_ranges`); `.specs` are the `GraphSpec`s
    (module, example inputs, dynamic dims) in run order.
    """

    def __init__(self, name: str = "efficienttam_ti_1", size: int = 64) -> None:
        from edgec.models import create
        from edgec.models.efficienttam.graphs import graph_specs

        self.specs = {s.name: s for s in graph_specs(create(name, image_size=size).eval())}
        self._protos: dict[str, bytes] = {}

    def get(self, graph: str):
        import onnx
        import onnx_ir as ir

        if graph not in self._protos:
            from edgec.exporters.efficienttam import export_graph

            model = export_graph(self.specs[graph])
            self._protos[graph] = ir.to_proto(model).SerializeToString()
        return ir.from_proto(onnx.load_from_string(self._protos[graph]))


@pytest.fixture(scope="session")
def efficienttam_graphs() -> EfficientTAMGraphs:
    return EfficientTAMGraphs()
