"""edgec: an edge-deployment compiler for efficient vision transformers.

`edgec compile MODEL --target DEVICE` loads a model, exports it to ONNX, verifies it against
PyTorch, runs graph passes, emits a runtime artifact, measures or estimates its latency and
writes a manifest and a report. See README.md.
"""

__version__ = "0.1.0"
