"""The pass runner: records per pass, option validation, errors that name the pass."""

import dataclasses

import onnx_ir as ir
import pytest

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.errors import PassError, UserError
from edgec.pass_manager import PASSES, EdgecPass, register_pass, run_passes

TEXT = """
<ir_version: 8, opset_import: ["" : 18]>
g (float[2, 3] x) => (float[2, 3] y) {
    a = Identity(x)
    y = Relu(a)
}
"""


def test_records_say_what_each_pass_did(tmp_path):
    model = ir.from_onnx_text(TEXT)
    records = run_passes(
        model, ["cleanup::remove_identity", "cleanup::remove_dead"], dump_dir=tmp_path
    )
    first, second = records
    assert first.id == "cleanup::remove_identity" and first.modified
    assert (first.nodes_before, first.nodes_after) == (2, 1)
    assert first.stats and not second.modified
    assert [p.name for p in tmp_path.iterdir()] == ["00_cleanup__remove_identity.onnx"]


def test_verifier_runs_after_changing_passes_only():
    seen = []
    run_passes(
        ir.from_onnx_text(TEXT),
        ["cleanup::remove_identity", "cleanup::remove_dead"],
        verifier=lambda model, pass_id: seen.append(pass_id) or {"passed": True},
    )
    assert seen == ["cleanup::remove_identity"]


def test_unknown_pass_option_and_option_for_a_pass_not_run():
    with pytest.raises(UserError, match="does not support option"):
        run_passes(
            ir.from_onnx_text(TEXT),
            ["cleanup::fold_constants"],
            options={"cleanup::fold_constants": {"colour": 1}},
        )
    with pytest.raises(UserError, match="not in the pipeline"):
        run_passes(
            ir.from_onnx_text(TEXT),
            ["cleanup::remove_dead"],
            options={"cleanup::fold_constants": {}},
        )
    with pytest.raises(UserError, match="unknown pass"):
        run_passes(ir.from_onnx_text(TEXT), ["cleanup::no_such_pass"])


def test_a_crashing_pass_is_named_with_the_passes_before_it():
    @register_pass
    class Broken(EdgecPass):
        id = "test::broken"

        @dataclasses.dataclass(frozen=True)
        class Options:
            pass

        def call(self, model):
            raise RuntimeError("boom")

    try:
        with pytest.raises(PassError, match=r"test::broken failed.*cleanup::remove_dead"):
            run_passes(ir.from_onnx_text(TEXT), ["cleanup::remove_dead", "test::broken"])
    finally:
        PASSES._items.pop("test::broken")


def test_pass_ids_must_be_namespaced():
    with pytest.raises(ValueError, match="namespace::name"):

        @register_pass
        class Unnamed(EdgecPass):
            id = "plain"
