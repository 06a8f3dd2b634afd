"""Named pipelines: ordered lists of pass ids, with why each order is what it is.

The ids name passes registered by `edgec.passes` (importing it registers them all); this module
is plain data so that anything can read a pipeline without importing the passes.
"""

from __future__ import annotations

from edgec.errors import UserError

PIPELINES: dict[str, list[str]] = {
    "cleanup": [
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
        # BN parameters and the neighbouring weights are constants by now.
        "cleanup::fold_batchnorm",
        # Folding leaves no-op Reshape/Identity/Add-of-zero behind (and exporters write many);
        # remove them after everything that can create them.
        "cleanup::remove_identity",
        # Last: sweep the nodes, initializers, functions and opsets the passes above orphaned.
        "cleanup::remove_dead",
    ],
}


def pipeline(name: str) -> list[str]:
    """The pass ids of pipeline `name` (a copy); a `UserError` naming the choices if unknown."""
    try:
        return list(PIPELINES[name])
    except KeyError:
        known = ", ".join(sorted(PIPELINES))
        raise UserError(f"unknown pipeline {name!r}", f"choose one of: {known}") from None
