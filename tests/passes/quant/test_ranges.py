"""Activation ranges (min-max, percentile, MSE, entropy) and their uint8/int8 parameters."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.passes.quant.ranges import Histogram, activation_qparams, choose_range


def _histogram(values: np.ndarray, bins: int = 2048) -> Histogram:
    h = Histogram.empty(float(values.min()), float(values.max()), bins)
    h.add(values)
    return h


def test_qparams_by_hand():
    # uint8: scale = (hi - lo) / 255, zero point = round(-lo / scale)
    scale, zp = activation_qparams(-1.0, 3.0, symmetric=False)
    assert scale == pytest.approx(4.0 / 255) and zp == round(255 / 4)
    # int8 symmetric: scale = max|range| / 127, zero point 0
    assert activation_qparams(-1.0, 3.0, symmetric=True) == (pytest.approx(3.0 / 127), 0)
    # ranges always contain 0 (ReLU outputs, padding): [2, 5] behaves as [0, 5]
    assert activation_qparams(2.0, 5.0, symmetric=False) == (pytest.approx(5 / 255), 0)


def test_minmax_is_the_observed_range():
    assert choose_range("minmax", -0.5, 2.0, None, 99.9) == (-0.5, 2.0)


def test_percentile_drops_outliers():
    values = np.concatenate([np.linspace(0, 1, 100_000), [50.0]])
    lo, hi = choose_range("percentile", 0.0, 50.0, _histogram(values), 99.9)
    assert lo == 0.0 and 0.97 < hi < 1.05


@pytest.mark.parametrize("method", ["mse", "entropy"])
def test_search_methods_clip_rare_outliers_but_not_a_uniform_range(method):
    rng = np.random.default_rng(0)
    outliers = np.concatenate([rng.standard_normal(200_000), [-30.0, 40.0]])
    lo, hi = choose_range(method, -30.0, 40.0, _histogram(outliers), 99.99)
    assert hi < 0.8 * 40 and lo > 0.8 * -30
    uniform = rng.uniform(-1, 1, 200_000)
    lo, hi = choose_range(method, -1.0, 1.0, _histogram(uniform), 99.99)
    assert hi > 0.9 and lo < -0.9


def test_histogram_of_a_range_a_few_ulps_wide():
    """SHViT-S4 / LowFormer-E3 / M5 have such tensors; float32 bins would not fit in them."""
    h = Histogram.empty(float(np.float32(1.0)), float(np.float32(1.0000002)), 2048)
    h.add(np.full(100, 1.0000001, np.float32))
    assert h.counts.sum() == 100
