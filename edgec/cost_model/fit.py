"""Fit a device's calibration constants to measured latencies.

Minimises, over θ = (compute_scale, memory_scale, overhead_us, layout_scale) (`roofline`),

    Σ_anchors huber(log predicted − log measured)  +  Σ_constants ((log θ − log θ_prior) / width)²

`huber(r)` is r² while the model is within a factor 2 of a measurement and grows linearly
beyond it: published measurements disagree by 10–25 % between toolchains, but some are off
by several times for reasons the record does not state (a compiler cliff, a partition the
source does not report: latency.md §1.3), and one such anchor must not drag every other
prediction of its device along with it. It is still fitted and still scored.

The second term is a prior. For a device on its own it is weak (`width` = log 30: a factor 30
away from the prior costs as much as one anchor off by a factor e): it keeps a constant the
anchors cannot see (e.g. launch overhead when every anchor is a large model) at its prior
instead of letting it run off; the anchors decide the rest. (A factor-4 width was tried first:
it held the constants so close to the priors that the cross-validated error doubled.)
The overhead can be held fixed (`fixed_overhead_us`): the launch overhead of one runtime on one
kind of unit is shared by the devices that run it (`bench/estimator.py`'s runtime groups), since
a per-device fit cannot tell a larger launch cost from slower small kernels on a handful of
mostly-large anchors. The search is a deterministic grid in log space (coarse, then fine around
the best point), so the same anchors always give the same constants.

The fifth constant, `reduction_launches` (what a whole-axis reduction costs, in launches:
`roofline`), is chosen from a short list of candidates: θ is fitted for each and the one with
the lowest loss wins, the first (1: no extra cost) on a tie, e.g. when no anchor reduces.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from edgec.cost_model.roofline import Terms

__all__ = [
    "OUTLIER_FACTOR",
    "PRIOR_WIDTH",
    "Constants",
    "fit_constants",
    "predict_seconds",
]

PRIOR_WIDTH = math.log(30.0)
OUTLIER_FACTOR = 2.0  # beyond this ratio to the model, an anchor's pull stops growing


def predict_seconds(
    terms: Sequence[Terms],
    compute: float,
    memory: float,
    overhead: float,
    layout: float | None = None,
    reduction_launches: float = 1.0,
) -> float:
    """Predicted latency of one model (sum over its kernels) under the given constants."""
    return sum(t.seconds(compute, memory, overhead, layout, reduction_launches) for t in terms)


# (compute_scale, memory_scale, overhead_us, layout_scale, reduction_launches)
Constants = tuple[float, float, float, float, float]


def fit_constants(
    samples: Sequence[tuple[Sequence[Terms], float]],
    prior: Sequence[float],
    width: float = PRIOR_WIDTH,
    fixed_overhead_us: float | None = None,
    reduction_launches: Sequence[float] = (1.0,),
) -> Constants:
    """The constants fitted to `(kernel terms, seconds)` samples, the first four pulled towards
    `prior` (compute, memory, overhead, layout) with the given log-space `width`; the overhead
    is held at `fixed_overhead_us` when given, and `reduction_launches` lists the candidates
    for the fifth (see the module docstring)."""
    fits = [
        (_fit_scales(samples, prior, width, fixed_overhead_us, reduction), float(reduction))
        for reduction in reduction_launches
    ]
    (_, scales), reduction = min(fits, key=lambda fit: fit[0][0])  # the first on a tie
    return (*scales, reduction)


def _fit_scales(samples, prior, width, fixed_overhead_us, reduction):
    """(loss, (compute, memory, overhead, layout)) at the best grid point for one reduction
    cost."""
    arrays = [_split(terms, seconds, reduction) for terms, seconds in samples]
    center = np.log(np.array(prior[:4], dtype=float))
    if fixed_overhead_us is not None:
        center[2] = math.log(fixed_overhead_us)
    spans = np.array([math.log(60.0), math.log(30.0), math.log(30.0), math.log(100.0)])
    best = center
    for points in (25, 13):
        axes = [
            np.array([c]) if (i == 2 and fixed_overhead_us is not None)
            else np.linspace(c - s, c + s, points)
            for i, (c, s) in enumerate(zip(best, spans, strict=True))
        ]  # fmt: skip
        best, loss = _grid_best(arrays, center, axes, width)
        spans = spans * 2.5 / (points - 1)
    compute, memory, overhead, layout = (float(math.exp(v)) for v in best)
    return loss, (compute, memory, overhead, layout)


def _split(terms: Sequence[Terms], seconds: float, reduction_launches: float):
    """(compute, memory) arrays of the non-layout and of the layout kernels, launches, log s."""
    parts = []
    for layout in (False, True):
        chosen = [t for t in terms if t.layout == layout]
        parts += [np.array([t.compute_s for t in chosen]), np.array([t.memory_s for t in chosen])]
    launches = sum(t.launches + (reduction_launches - 1.0) * t.reductions for t in terms)
    return (*parts, float(launches), math.log(seconds))


def _huber(r: np.ndarray) -> np.ndarray:
    delta = math.log(OUTLIER_FACTOR)
    a = np.abs(r)
    return np.where(a <= delta, r * r, 2 * delta * a - delta * delta)


def _roofline_sum(c: np.ndarray, m: np.ndarray, compute_s, memory_s) -> np.ndarray:
    """Σ_kernels max(c·compute, m·memory) on the (c, m) grid."""
    if not len(compute_s):
        return np.zeros((len(c), len(m)))
    return np.maximum(
        c[:, None, None] * compute_s[None, None, :], m[None, :, None] * memory_s[None, None, :]
    ).sum(axis=2)


def _grid_best(arrays, center: np.ndarray, axes: list[np.ndarray], width: float):
    """(log-space point, loss) of the grid point with the lowest loss."""
    loss = _grid_loss(arrays, center, axes, width)
    index = np.unravel_index(int(np.argmin(loss)), loss.shape)
    return np.array([axes[i][index[i]] for i in range(4)]), float(loss[index])


def _grid_loss(arrays, center: np.ndarray, axes: list[np.ndarray], width: float) -> np.ndarray:
    """The loss on the (compute, memory, overhead, layout) grid of log-space `axes`."""
    c, m, o, lay = (np.exp(a) for a in axes)
    grids = np.meshgrid(*axes, indexing="ij")
    loss = sum(((g - center[i]) / width) ** 2 for i, g in enumerate(grids))
    for compute_s, memory_s, lay_compute, lay_memory, launches, log_measured in arrays:
        body = _roofline_sum(c, m, compute_s, memory_s)  # (c, m)
        copies = _roofline_sum(c, lay, lay_compute, lay_memory)  # (c, layout)
        predicted = (
            body[:, :, None, None]
            + copies[:, None, None, :]
            + o[None, None, :, None] * 1e-6 * launches
        )
        loss = loss + _huber(np.log(predicted) - log_measured)
    return loss
