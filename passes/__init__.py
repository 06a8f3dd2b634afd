"""ONNX → ONNX graph passes (`edgec.passes`).

Importing this package imports every pass family, so every pass is registered in
`edgec.pass_manager.PASSES` under its namespaced id. Add a family here when you add one.
"""

from edgec.passes import attention, cleanup, integer, quant, speed

__all__ = ["attention", "cleanup", "integer", "quant", "speed"]
