"""Sliding-window inference for volumes larger than a model's window (host side).

`sliding_window(fn, volume, window, overlap, batch, blend)` tiles the spatial axes of
`volume` (B, C, *spatial) with windows of size `window`, `overlap` of a window apart at most
(stride = max(1, int(window·(1 - overlap))) per axis; the last window on each axis is pulled
back to end at the border, so every voxel is covered and no window leaves the volume). It runs
`fn` on up to `batch` windows at a time and blends the window outputs into one volume:

    out[v] = Σ_w weight_w[v] · fn(window_w)[v] / Σ_w weight_w[v]

- blend="constant": every voxel of a window weighs 1 (a plain mean of the overlapping
  predictions; MONAI's default, as in the official SegFormer3D inference);
- blend="gaussian": a separable Gaussian centred on the window, σ = sigma_scale·window
  (0.125 as in MONAI/nnU-Net), normalised to a peak of 1 and floored at 1e-3 of it, so window
  borders (which see the least context) count least.

Each output voxel is thus a convex combination of the window predictions covering it. An axis
shorter than the window is zero-padded (symmetrically) to the window and the output cropped
back. `fn` must map (n, C, *window) to (n, K, *window).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch

from edgec.errors import UserError

BLENDS = ("constant", "gaussian")


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """The start of every window along an axis of length `size` (size ≥ window)."""
    if size <= window:
        return [0]
    stride = max(1, int(window * (1 - overlap)))
    count = -(-(size - window) // stride) + 1
    return sorted({min(i * stride, size - window) for i in range(count)})


def blend_weights(
    window: Sequence[int], blend: str = "constant", sigma_scale: float = 0.125
) -> torch.Tensor:
    """The per-voxel weight map of one window (float32, shape `window`)."""
    if blend == "constant":
        return torch.ones(tuple(window))
    if blend != "gaussian":
        raise UserError(f"unknown blend {blend!r}", f"use one of {', '.join(BLENDS)}")
    weights = torch.ones(())
    for size in window:
        centre = (size - 1) / 2
        sigma = max(sigma_scale * size, 1e-6)
        axis = torch.exp(-0.5 * ((torch.arange(size, dtype=torch.float64) - centre) / sigma) ** 2)
        weights = weights[..., None] * axis
    weights = weights / weights.max()
    return weights.clamp_min(1e-3).float()


def sliding_window(
    fn: Callable[[torch.Tensor], torch.Tensor],
    volume: torch.Tensor,
    window: Sequence[int] = (128, 128, 128),
    overlap: float = 0.5,
    batch: int = 4,
    blend: str = "constant",
    sigma_scale: float = 0.125,
) -> torch.Tensor:
    """Run `fn` over `volume` (B, C, *spatial) window by window and blend; see the module doc."""
    window = tuple(int(w) for w in window)
    spatial_rank = len(window)
    if volume.ndim != spatial_rank + 2:
        raise UserError(
            f"sliding_window needs a (B, C, {spatial_rank} spatial axes) tensor, "
            f"got shape {tuple(volume.shape)}",
            "add the batch and channel axes (volume[None, None] for a single volume)",
        )
    if not 0 <= overlap < 1:
        raise UserError(f"overlap must be in [0, 1), got {overlap}")
    if batch < 1 or min(window) < 1:
        raise UserError(f"batch and window sizes must be positive, got {batch}, {window}")
    spatial = tuple(int(s) for s in volume.shape[2:])
    padded, crop = _pad_to_window(volume, spatial, window)
    size = tuple(int(s) for s in padded.shape[2:])
    weights = blend_weights(window, blend, sigma_scale).to(volume.device)
    starts = itertools.product(
        *(window_starts(s, w, overlap) for s, w in zip(size, window, strict=True))
    )
    slices = [
        tuple(slice(s, s + w) for s, w in zip(start, window, strict=True)) for start in starts
    ]
    results = []
    for item in padded:
        out = norm = None
        for first in range(0, len(slices), batch):
            group = slices[first : first + batch]
            preds = fn(torch.stack([item[(slice(None), *sl)] for sl in group]))
            if tuple(preds.shape[2:]) != window or preds.shape[0] != len(group):
                raise UserError(
                    f"fn returned shape {tuple(preds.shape)} for {len(group)} windows of "
                    f"{window}; sliding_window needs (n, K, *window)"
                )
            if out is None:
                out = preds.new_zeros((preds.shape[1], *size), dtype=torch.float32)
                norm = torch.zeros(size, device=out.device)
            for pred, sl in zip(preds, group, strict=True):
                out[(slice(None), *sl)] += pred.float() * weights
                norm[sl] += weights
        results.append((out / norm)[(slice(None), *crop)])
    return torch.stack(results)


def _pad_to_window(volume: torch.Tensor, spatial: tuple[int, ...], window: tuple[int, ...]):
    """Zero-pad axes shorter than the window (symmetrically); the crop that undoes it."""
    pads, crop = [], []
    for s, w in zip(spatial, window, strict=True):
        before = max(w - s, 0) // 2
        after = max(w - s, 0) - before
        pads.append((before, after))
        crop.append(slice(before, before + s))
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants the last axis first
    if any(flat):
        volume = torch.nn.functional.pad(volume, flat)
    return volume, tuple(crop)
