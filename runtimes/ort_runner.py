"""Loading a model into an ORT session (CPU EP) and running it: `load`, `OrtRunner`.

    runner = load(art, threads=1)       # an .onnx, an .ort or an Artifact
    outputs = runner.run({"input": x})  # output name → array; feeds are checked first
    session_options_used(runner)        # the settings behind it, for the manifest

Sessions get `ort_session.session_options`: `threads` intra-op threads, one inter-op
thread, sequential execution, the chosen graph optimisation level.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgec.artifact import Artifact
from edgec.errors import ModelLoadError, UserError
from edgec.runtimes.ort_session import CPU, OPTIMIZATION_LEVELS, import_ort, session_options

_NUMPY_TYPES = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16,
    "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(int16)": np.int16,
    "tensor(uint16)": np.uint16, "tensor(int32)": np.int32, "tensor(uint32)": np.uint32,
    "tensor(int64)": np.int64, "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}  # fmt: skip


class OrtRunner:
    """One ORT inference session (CPU EP) behind the runner interface every runtime offers.

    `run` checks the feeds (names, dtypes, ranks, static dims) and then delegates to the
    session; `last_inference_ms` is set by every `run`. For timing, `bound(feeds)` checks
    once and returns a zero-overhead callable to hand to `edgec.runtimes.measure`.
    Usable as a context manager; `close()` releases the session.
    """

    def __init__(self, session, path: Path, threads: int, optimization: str):
        self.session = session
        self.path = path
        self.threads = threads
        self.optimization = optimization
        inputs = session.get_inputs()
        self.input_names: list[str] = [i.name for i in inputs]
        self.input_shapes: dict[str, tuple[int | str | None, ...]] = {
            i.name: tuple(i.shape) for i in inputs
        }
        self.input_types: dict[str, str] = {i.name: i.type for i in inputs}
        self.output_names: list[str] = [o.name for o in session.get_outputs()]
        self.last_inference_ms: float | None = None

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once; returns output name → array."""
        self._check_feeds(feeds)
        t0 = time.perf_counter()
        outputs = self.session.run(self.output_names, feeds)
        self.last_inference_ms = (time.perf_counter() - t0) * 1e3
        return dict(zip(self.output_names, outputs, strict=True))

    def bound(self, feeds: dict[str, np.ndarray]) -> Callable[[], object]:
        """A callable that runs these (checked) feeds with nothing else in the timed path."""
        self._check_feeds(feeds)
        session, names = self.session, self.output_names
        return lambda: session.run(names, feeds)

    def example_feeds(self, seed: int = 0, dynamic_dim: int = 1) -> dict[str, np.ndarray]:
        """Seeded random inputs of the right dtype; symbolic dims become `dynamic_dim`."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for name in self.input_names:
            shape = [d if isinstance(d, int) else dynamic_dim for d in self.input_shapes[name]]
            dtype = np.dtype(_NUMPY_TYPES.get(self.input_types[name], np.float32))
            if dtype.kind == "f":
                feeds[name] = rng.standard_normal(shape).astype(dtype)
            else:
                feeds[name] = np.zeros(shape, dtype)
        return feeds

    def _check_feeds(self, feeds: dict[str, np.ndarray]) -> None:
        if self.session is None:
            raise RuntimeError(f"the runner for {self.path.name} is closed")
        missing = [n for n in self.input_names if n not in feeds]
        unknown = [n for n in feeds if n not in self.input_names]
        if missing or unknown:
            raise UserError(
                f"inputs do not match {self.path.name}: missing {missing}, unknown {unknown}",
                f"the model takes {self.input_names}",
            )
        for name in self.input_names:
            x, want = feeds[name], self.input_shapes[name]
            dtype = _NUMPY_TYPES.get(self.input_types[name])
            if dtype is not None and x.dtype != np.dtype(dtype):
                raise UserError(
                    f"input {name!r} is {x.dtype}, the model wants {self.input_types[name]}"
                )
            if len(x.shape) != len(want) or any(
                isinstance(w, int) and w != d for w, d in zip(want, x.shape, strict=True)
            ):
                raise UserError(
                    f"input {name!r} has shape {list(x.shape)}, the model wants {list(want)}"
                )

    def close(self) -> None:
        """Release the session."""
        self.session = None

    def __enter__(self) -> OrtRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load(path: Path | str | Artifact, threads: int = 1, optimization: str = "all") -> OrtRunner:
    """Open an .onnx or .ort file (or an `Artifact`) on the CPU EP.

    Session options: `intra_op_num_threads=threads`, `inter_op_num_threads=1`, sequential
    execution, graph optimisation `optimization` (one of `OPTIMIZATION_LEVELS`).
    """
    path = Path(path.path if isinstance(path, Artifact) else path)
    if not path.is_file():
        raise ModelLoadError(f"no such model file: {path}")
    ort = import_ort()
    so = session_options(ort, threads=threads, optimization=optimization)
    try:
        session = ort.InferenceSession(str(path), so, providers=CPU)
    except Exception as e:
        raise ModelLoadError(f"onnxruntime cannot load {path}: {e}") from e
    return OrtRunner(session, path, threads, optimization)


def session_options_used(runner: OrtRunner) -> dict[str, Any]:
    """The session settings behind a runner, for the manifest."""
    ort = import_ort()
    so = runner.session.get_session_options()
    sequential = so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    return {
        "onnxruntime": ort.__version__,
        "providers": list(runner.session.get_providers()),
        "intra_op_num_threads": so.intra_op_num_threads,
        "inter_op_num_threads": so.inter_op_num_threads,
        "execution_mode": "sequential" if sequential else "parallel",
        "graph_optimization_level": OPTIMIZATION_LEVELS[runner.optimization],
        "model_format": "ort" if runner.path.suffix == ".ort" else "onnx",
    }
