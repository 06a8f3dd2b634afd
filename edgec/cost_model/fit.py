"""Fit a device's three calibration constants to measured latencies.

Minimises, over (compute_scale, memory_scale, overhead_us),

    Σ_anchors (log predicted − log measured)²  +  Σ_constants ((log θ − log θ_prior) / log 4)²

The second term is a weak prior (a factor 30 away from the prior costs as much as one anchor
off by a factor e): it keeps a constant the anchors cannot see (e.g. launch overhead when every
anchor is a large model) at its prior instead of letting it run off; the anchors decide the
rest. (A factor-4 width was tried first: it held the constants so close to the priors that
the cross-validated error doubled.) The search is a deterministic grid in log space
(coarse, then fine around the best point), so the same anchors always give the same constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgec.cost_model.roofline import Terms

__all__ = ["fit_constants", "predict_seconds"]

_PRIOR_WIDTH = math.log(30.0)


def predict_seconds(
    terms: Sequence[Terms], compute: float, memory: float, overhead: float
) -> float:
    """Predicted latency of one model (sum over its kernels) under the given constants."""
    return sum(t.seconds(compute, memory, overhead) for t in terms)


def fit_constants(
    samples: Sequence[tuple[Sequence[Terms], float]], prior: tuple[float, float, float]
) -> tuple[float, float, float]:
    """(compute_scale, memory_scale, overhead_us) fitted to `(kernel terms, seconds)` samples."""
    arrays = [
        (
            np.array([t.compute_s for t in terms]),
            np.array([t.memory_s for t in terms]),
            float(sum(t.launches for t in terms)),
            math.log(seconds),
        )
        for terms, seconds in samples
    ]
    center = np.log(np.array(prior, dtype=float))
    spans = np.array([math.log(60.0), math.log(30.0), math.log(30.0)])
    best = center
    for points in (41, 21):
        axes = [np.linspace(c - s, c + s, points) for c, s in zip(best, spans, strict=True)]
        best = _grid_best(arrays, center, axes)
        spans = spans * 2.5 / (points - 1)
    compute, memory, overhead = (float(math.exp(v)) for v in best)
    return compute, memory, overhead


def _grid_best(arrays, center: np.ndarray, axes: list[np.ndarray]) -> np.ndarray:
    c, m, o = (np.exp(a) for a in axes)
    loss = (
        ((axes[0][:, None, None] - center[0]) / _PRIOR_WIDTH) ** 2
        + ((axes[1][None, :, None] - center[1]) / _PRIOR_WIDTH) ** 2
        + ((axes[2][None, None, :] - center[2]) / _PRIOR_WIDTH) ** 2
    )
    for compute_s, memory_s, launches, log_measured in arrays:
        body = np.maximum(
            c[:, None, None] * compute_s[None, None, :], m[None, :, None] * memory_s[None, None, :]
        ).sum(axis=2)
        predicted = body[:, :, None] + o[None, None, :] * 1e-6 * launches
        loss = loss + (np.log(predicted) - log_measured) ** 2
    i, j, k = np.unravel_index(int(np.argmin(loss)), loss.shape)
    return np.array([axes[0][i], axes[1][j], axes[2][k]])
