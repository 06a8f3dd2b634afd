"""LowFormer: official altair199797/LowFormer state_dict → timm `lowformer` names.

timm's own `checkpoint_filter_fn` already maps every official layout (plain, `head.opseq.*`
from `ClsHeadTorchScript`, `mlpremoved` E-series) onto its names; checked strictly against all
seven released variants' key lists (0 missing, 0 unexpected). edgec reuses it.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

OFFICIAL_PREFIXES = ("backbone.", "head.op_list.", "head.opseq.")


def is_official(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for the official layout (`backbone.*`, `head.op_list.*` or `head.opseq.*`)."""
    return any(k.startswith(OFFICIAL_PREFIXES) for k in state_dict)


def official_to_timm(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map an official-layout LowFormer state_dict onto timm's names (timm's filter)."""
    from timm.models.lowformer import checkpoint_filter_fn

    return dict(checkpoint_filter_fn(dict(state_dict), None))
