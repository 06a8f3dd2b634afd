"""edgec.eval_metrics: edgec eval's metrics, accumulated chunk by chunk."""

import numpy as np
import pytest

from edgec.eval_metrics import EvalTally, Overlap


def test_overlap_pools_pixel_counts_over_samples_as_hand_computed():
    pred = np.array([[[0, 0], [1, 1]], [[1, 1], [1, 1]]])
    truth = np.array([[[0, 1], [1, 1]], [[1, 1], [0, 0]]])
    overlap = Overlap(classes=3)  # class 2 is in neither mask: not averaged
    overlap.add(pred, truth)
    # class 0: ∧ 1, ∨ 4, |pred| 2 + |truth| 3; class 1: ∧ 4, ∨ 7, 6 + 5
    assert overlap.result() == pytest.approx(
        {"miou": (1 / 4 + 4 / 7) / 2, "dice": (2 / 5 + 8 / 11) / 2}
    )


def _tally(chunks, got, ref, labels):
    tally = EvalTally()
    for part in np.array_split(np.arange(len(got)), chunks):
        tally.add(got[part], ref[part], labels[part])
    return tally.result()


@pytest.mark.parametrize("shape", [(20, 10), (20, 4, 6, 6), (20, 3, 2, 5, 5)])
def test_chunked_results_equal_the_whole_set_at_once(shape):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(shape).astype(np.float32)
    got = ref + 0.5 * rng.standard_normal(shape).astype(np.float32)
    labels = ref.argmax(1) if len(shape) > 2 else rng.integers(0, shape[1], shape[0])
    whole = _tally(1, got, ref, labels)
    assert _tally(7, got, ref, labels) == whole
    if len(shape) == 2:
        assert whole["top1"] == np.mean(got.argmax(1) == labels)
        assert whole["top1_agreement"] == np.mean(got.argmax(1) == ref.argmax(1))
    else:
        assert whole["vs_reference"] == whole["vs_labels"]  # the labels are the ref's masks
    cos = [
        a @ b / np.linalg.norm(a) / np.linalg.norm(b)
        for a, b in zip(ref.reshape(len(ref), -1), got.reshape(len(got), -1), strict=True)
    ]
    assert whole["cosine_mean"] == pytest.approx(np.mean(cos), rel=1e-5)
