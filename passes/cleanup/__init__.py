"""Cleanup passes: make an exported graph small and plain before the real rewrites.

Importing this package registers every cleanup pass (one module per pass).
"""

from edgec.passes.cleanup import (
    fold_batchnorm,
    fold_bias_gather,
    fold_constants,
    infer_shapes,
    remove_dead,
    remove_identity,
)

__all__ = [
    "fold_batchnorm",
    "fold_bias_gather",
    "fold_constants",
    "infer_shapes",
    "remove_dead",
    "remove_identity",
]
