"""Activation ranges from calibration statistics: min-max, percentile, entropy, MSE.

A `Histogram` holds one tensor's value counts over its calibrated [min, max]. `choose_range`
turns it into the range `quant::activations` quantizes to:

- `minmax`: [min, max];
- `percentile`: the `percentile`-th and (100 − `percentile`)-th values;
- `mse`: of the ranges [a·min, a·max] (a from 0.2 to 1), the one with the least expected
  squared error: step²/12 for every value inside (rounding), the clip error outside;
- `entropy`: the same candidates, judged by KL(P‖Q) between the histogram with the clipped
  mass folded into the edge bins and its quantized version (TensorRT's entropy calibration,
  applied to both ends).

Every range includes 0, so that zero (padding, ReLU output) is exactly representable.
`activation_qparams` gives the (scale, zero point) of a range: uint8 asymmetric, or int8
symmetric.
"""

from __future__ import annotations

import dataclasses

import numpy as np

METHODS = ("minmax", "percentile", "mse", "entropy")
_CANDIDATES = np.linspace(0.2, 1.0, 41)


@dataclasses.dataclass
class Histogram:
    lo: float
    hi: float
    counts: np.ndarray

    @classmethod
    def empty(cls, lo: float, hi: float, bins: int) -> Histogram:
        return cls(lo, hi, np.zeros(bins, np.float64))

    def add(self, values: np.ndarray) -> None:
        # in float64: a float32 tensor whose range spans a few ulps would make numpy refuse
        # ("Too many bins for data range") to cut it into 2048 float32-sized bins
        lo, hi = float(self.lo), float(self.hi)
        if hi > lo:
            wide = np.asarray(values, dtype=np.float64)
            counts, _ = np.histogram(wide, bins=len(self.counts), range=(lo, hi))
            self.counts += counts

    def centers(self) -> np.ndarray:
        edges = np.linspace(self.lo, self.hi, len(self.counts) + 1)
        return (edges[:-1] + edges[1:]) / 2


def choose_range(
    method: str, lo: float, hi: float, histogram: Histogram | None, percentile: float
) -> tuple[float, float]:
    """The quantization range of one tensor (see the module docstring)."""
    if method == "minmax" or histogram is None or histogram.counts.sum() == 0:
        return _with_zero(lo, hi)
    if method == "percentile":
        cdf = np.cumsum(histogram.counts) / histogram.counts.sum()
        centers = histogram.centers()
        low = centers[min(np.searchsorted(cdf, 1 - percentile / 100), len(cdf) - 1)]
        high = centers[min(np.searchsorted(cdf, percentile / 100), len(cdf) - 1)]
        return _with_zero(low, high)
    loss = _mse if method == "mse" else _kl
    scores = [loss(histogram, *_with_zero(a * lo, a * hi)) for a in _CANDIDATES]
    best = _CANDIDATES[int(np.argmin(scores))]
    return _with_zero(best * lo, best * hi)


def activation_qparams(lo: float, hi: float, symmetric: bool) -> tuple[float, int]:
    """(scale, zero point) of range [lo, hi]: int8 zp 0 if `symmetric`, else uint8."""
    lo, hi = _with_zero(lo, hi)
    if symmetric:
        return max(abs(lo), abs(hi), 1e-12) / 127.0, 0
    scale = max(hi - lo, 1e-12) / 255.0
    return scale, int(np.clip(np.round(-lo / scale), 0, 255))


def _mse(histogram: Histogram, lo: float, hi: float) -> float:
    """Expected squared error: step²/12 per value inside [lo, hi], the clip error outside."""
    centers = histogram.centers()
    step = (hi - lo) / 255.0
    inside = (centers >= lo) & (centers <= hi)
    clipped = np.clip(centers, lo, hi)
    rounding = histogram.counts[inside].sum() * step**2 / 12
    return float(rounding + np.sum(histogram.counts * (centers - clipped) ** 2))


def _kl(histogram: Histogram, lo: float, hi: float) -> float:
    """KL(P‖Q): P = the bins inside [lo, hi] with the clipped mass on the edge bins, Q = P
    merged into 256 levels and spread evenly over each level's non-empty bins."""
    centers = histogram.centers()
    inside = np.flatnonzero((centers >= lo) & (centers <= hi))
    if len(inside) < 256:
        return float("inf")
    first, last = inside[0], inside[-1]
    p = histogram.counts[first : last + 1].copy()
    p[0] += histogram.counts[:first].sum()
    p[-1] += histogram.counts[last + 1 :].sum()
    q = np.zeros_like(p)
    for level in np.array_split(np.arange(len(p)), 256):
        used = level[p[level] > 0]
        if len(used):
            q[used] = p[level].sum() / len(used)
    keep = p > 0
    p, q = p[keep] / p.sum(), q[keep] / q.sum()
    return float(np.sum(p * np.log(p / q)))


def _with_zero(lo: float, hi: float) -> tuple[float, float]:
    return float(min(lo, 0.0)), float(max(hi, 0.0))
