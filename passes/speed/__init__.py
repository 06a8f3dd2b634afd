"""Speed passes: graph rewrites that make the ORT CPU artifact faster without changing results.

Importing this package registers every pass in it.
"""

from edgec.passes.speed import (  # noqa: F401
    fold_dw_residual,
    global_pool,
    window_layout,
)
