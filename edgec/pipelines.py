"""Named pipelines: ordered lists of pass ids, with why each order is what it is.

The ids name passes registered by `edgec.passes` (importing it registers them all); this module
is plain data so that anything can read a pipeline without importing the passes.
"""

from __future__ import annotations

from edgec.errors import UserError

_CLEANUP = [
    # Every value gets a dtype and a shape first: the no-op tests of remove_identity and
    # the rank checks of fold_batchnorm read them, and the folder uses them to evaluate
    # Shape/Size of values it cannot compute.
    "cleanup::infer_shapes",
    # Turn constant subgraphs (shape arithmetic, transposed weights, Constant chains) into
    # initializers, so the pattern passes below see constants where the model has them.
    "cleanup::fold_constants",
    # Attention-bias gathers are constant too but larger than fold_constants' size cap
    # allows; fold them with their own cap before anything looks at the attention.
    "cleanup::fold_bias_gather",
    # Exporters write many no-ops (Identity, Dropout, Reshape to the same shape, Add of a
    # zero bias table) and folding exposes more; remove them after the folds that can create
    # them and before fold_batchnorm, whose patterns a no-op between BN and Conv/Gemm hides.
    "cleanup::remove_identity",
    # BN parameters and the neighbouring weights are constants now, and BN is adjacent to
    # the linear op it folds into. (It creates no no-op and leaves only its own inputs dead.)
    "cleanup::fold_batchnorm",
    # Last: sweep the nodes, initializers, functions and opsets the passes above orphaned.
    "cleanup::remove_dead",
]

_DEFAULT = [
    *_CLEANUP,
    # Residual depthwise convs become one conv; before the attention rewrite so that the
    # graph it matches is already as small as it gets.
    "speed::fold_dw_residual",
    # Needs constant attention biases (fold_bias_gather) and static shapes (infer_shapes).
    "attention::cga_fusion",
    # After cga_fusion (whose up-front projection conv it moves): window 1×1 convs run on
    # the whole map, so partition/reverse are 4-D block transposes without NCHWc reorders.
    "speed::window_layout",
    # Spatial ReduceMean → GlobalAveragePool, which ORT keeps in NCHWc (SE blocks, head).
    "speed::global_pool",
    # The rewrites above leave shape and split constants they replaced; sweep them (ORT would
    # warn about every unused initializer when it loads the artifact).
    "cleanup::remove_dead",
]

PIPELINES: dict[str, list[str]] = {
    "cleanup": _CLEANUP,
    # What a device profile gets unless it names another (devices/host.toml says "default").
    "default": _DEFAULT,
    # The Apple Neural Engine (devices/iphone-*.toml): Apple's transformer guidance wants one
    # attention chain per head on tensors of rank ≤ 4 and no 5-D/6-D reshapes (Core ML refuses
    # rank > 5 outright). EfficientViT's cascaded attention gets there through the default
    # passes (cga_fusion + window_layout leave no tensor above rank 4; without them its window
    # partition is 6-D); multi-head attention of other families through split_heads.
    "ane": [
        *_DEFAULT,
        # Needs static shapes and folded constants (cleanup) to trace each head's channels.
        "attention::split_heads",
    ],
}


def pipeline(name: str) -> list[str]:
    """The pass ids of pipeline `name` (a copy); a `UserError` naming the choices if unknown."""
    try:
        return list(PIPELINES[name])
    except KeyError:
        known = ", ".join(sorted(PIPELINES))
        raise UserError(f"unknown pipeline {name!r}", f"choose one of: {known}") from None
