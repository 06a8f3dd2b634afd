"""What every `ort_*` module shares: the runtime's name, the lazy import, session options.

onnxruntime is imported on first use (`import_ort()`), never when a module is imported, so
`import edgec.runtimes.ort` costs nothing where ORT is absent or unused. Every session edgec
opens runs on the CPU execution provider (`CPU`).
"""

from __future__ import annotations

from edgec.errors import UserError

NAME = "onnxruntime"
CPU = ["CPUExecutionProvider"]
OPTIMIZATION_LEVELS = {  # edgec word → ORT GraphOptimizationLevel
    "disabled": "ORT_DISABLE_ALL",
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "layout": "ORT_ENABLE_LAYOUT",
    "all": "ORT_ENABLE_ALL",
}


def import_ort():
    """The `onnxruntime` module, imported on first use."""
    import onnxruntime

    return onnxruntime


def session_options(ort, *, threads: int, optimization: str):
    """`SessionOptions` for `threads` intra-op threads, sequential, at `optimization`.

    `optimization` is one of `OPTIMIZATION_LEVELS`; a bad level or thread count is a
    `UserError`. ORT logs errors only (severity 3).
    """
    if optimization not in OPTIMIZATION_LEVELS:
        raise UserError(
            f"unknown ORT optimization level {optimization!r}",
            f"choose one of: {', '.join(OPTIMIZATION_LEVELS)}",
        )
    if threads < 1:
        raise UserError(f"threads must be >= 1, got {threads}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(
        ort.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization]
    )
    so.log_severity_level = 3
    return so
