"""Load an artifact in a child process before anyone loads it in this one.

ONNX Runtime's graph optimizers are native code, and some graphs crash them outright: 1.32's
NCHWc layout transformer segfaults on EfficientTAM's fp16 memory-attention graph at
`ORT_ENABLE_ALL` (the level a user's plain `InferenceSession` uses). In-process, that kills
edgec mid-compile with no message and leaves the user an artifact their app cannot open. So
`ort.emit` loads every artifact once in a child process at that level: a crash or a refusal
becomes a `UserError` that says what happened, and the staged output is discarded.

    edgec compile …  →  ort.emit writes model.onnx  →  probe_load(model.onnx)
                                                        child: InferenceSession(ENABLE_ALL)
                                                        died by signal → UserError
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from edgec.errors import UserError

_LOAD = """
import sys, onnxruntime as ort
so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
so.intra_op_num_threads = 1
so.log_severity_level = 3
ort.InferenceSession(sys.argv[1], so, providers=["CPUExecutionProvider"])
"""


def probe_load(path: Path, *, timeout_s: float = 900.0) -> None:
    """Raise `UserError` unless ONNX Runtime (all optimizations on) loads `path` cleanly."""
    try:
        result = subprocess.run(
            [sys.executable, "-c", _LOAD, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"ONNX Runtime did not finish loading {path.name} within {timeout_s:.0f} s",
            "report this with the model and --precision; --dump-ir shows the graph",
        ) from None
    if result.returncode == 0:
        return
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise UserError(
            f"ONNX Runtime crashed ({name}) loading {path.name} with all graph optimizations "
            "on: a bug in ONNX Runtime's optimizers on this graph, so no app could load it",
            "try another --precision (fp32 for ONNX Runtime targets) or another target; "
            "report it with the model and precision",
        )
    last = (result.stderr.strip().splitlines() or ["(no message)"])[-1]
    raise UserError(
        f"ONNX Runtime refuses to load {path.name}: {last}",
        "report this with the model and --precision; --dump-ir shows the graph",
    )
