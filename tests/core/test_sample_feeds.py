"""edgec.sample_feeds: per-sample named feeds of a multi-input graph in one .npz."""

from __future__ import annotations

import numpy as np
import pytest

from edgec.errors import UserError
from edgec.sample_feeds import is_feeds_file, load_feeds, save_feeds


def test_feeds_round_trip_in_order_with_shapes_that_vary(tmp_path):
    samples = [
        {"features": np.full((1, 4), i, np.float32), "bank": np.zeros((i + 1, 2), np.float32)}
        for i in range(12)  # ≥ 10: index order, not text order
    ]
    path = tmp_path / "feeds.npz"
    save_feeds(path, samples)
    assert is_feeds_file(path)
    loaded = load_feeds(path, ["features", "bank"], count=12, purpose="calibration data")
    assert len(loaded) == 12
    for want, got in zip(samples, loaded, strict=True):
        assert list(got) == ["features", "bank"]
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_a_capped_load_takes_samples_spread_over_the_file(tmp_path):
    path = tmp_path / "feeds.npz"
    save_feeds(path, [{"x": np.full(1, i, np.float32)} for i in range(12)])
    loaded = load_feeds(path, ["x"], count=4, purpose="--calib")
    assert [float(feeds["x"][0]) for feeds in loaded] == [0, 3, 6, 9]


def test_other_files_are_not_feeds_and_a_missing_input_is_named(tmp_path):
    batch = tmp_path / "batch.npz"
    np.savez(batch, inputs=np.zeros((2, 3), np.float32))
    assert not is_feeds_file(batch) and not is_feeds_file(tmp_path)
    path = tmp_path / "feeds.npz"
    save_feeds(path, [{"a": np.zeros(1, np.float32)}])
    with pytest.raises(UserError, match=r"sample 0 has no feed for input\(s\) \['b'\]"):
        load_feeds(path, ["a", "b"], count=4, purpose="--calib")
