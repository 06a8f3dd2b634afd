"""edgec.sample_choice.spread: which samples a capped read takes."""

import numpy as np
import pytest

from edgec.sample_choice import spread


@pytest.mark.parametrize("total", [1, 2, 7, 10, 128, 500, 10_000])
@pytest.mark.parametrize("count", [1, 2, 3, 4, 64, 127, 128, 512])
def test_spread_takes_distinct_ordered_indices_over_the_whole_range(total, count):
    got = spread(total, count)
    assert len(got) == min(total, count)
    assert np.all(np.diff(got) > 0) and got[0] == 0 and got[-1] < total
    if count < total:  # evenly spaced: every gap is the floor or the ceiling of total/count
        gaps = set(np.diff(np.append(got, total)).tolist())
        assert gaps <= {total // count, -(-total // count)}


def test_spread_of_a_class_sorted_file_reaches_every_class():
    labels = np.repeat(np.arange(10), 1000)  # CIFAR-10's test set: class by class
    assert labels[:128].tolist() == [0] * 128
    assert np.bincount(labels[spread(len(labels), 128)]).tolist() == [13, 13, 13, 13, 12] * 2


def test_spread_without_a_cap_or_with_a_large_one_takes_everything_in_order():
    assert spread(5, None).tolist() == spread(5, 9).tolist() == [0, 1, 2, 3, 4]
    assert spread(10, 4).tolist() == [0, 2, 5, 7]
