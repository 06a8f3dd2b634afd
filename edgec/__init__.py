"""edgec: an edge-deployment compiler for efficient vision transformers.

`edgec compile MODEL --target DEVICE` loads a model, exports it to ONNX, verifies it against
PyTorch, runs graph passes, emits a runtime artifact, measures or estimates its latency and
writes a manifest and a report. See README.md.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`edgec.estimate(model, device)`, imported on first use (onnx_ir is slow to import and
    `edgec --help` must stay fast). The `edgec.estimate` module is itself callable."""
    if name == "estimate":
        import importlib

        return importlib.import_module("edgec.estimate")
    raise AttributeError(f"module 'edgec' has no attribute {name!r}")
