"""Attention passes: rewrite the attention of efficient ViTs for a target, exactly.

Importing this package registers every pass in it (`attention::cga_fusion`,
`attention::split_heads`).
"""

from edgec.passes.attention import cga_fusion, split_heads  # noqa: F401
