"""Which samples of a data file a compile or an evaluation uses when it may take only some.

`--calib-count`, `--verify-count` and `edgec eval --count` take samples spread evenly over the
whole file, not its first N: data sets are often stored class by class (CIFAR-10's test set,
an ImageNet folder per class), and the first 128 samples of such a file are one class.

    spread(10, 4)  →  [0, 2, 5, 7]        spread(3, 8)  →  [0, 1, 2]
"""

from __future__ import annotations

import numpy as np


def spread(total: int, count: int | None) -> np.ndarray:
    """Indices of `count` of `total` samples, evenly spaced and in order (all when `count`
    is None or at least `total`). Deterministic: the same file gives the same samples."""
    if count is None or count >= total:
        return np.arange(total)
    return np.arange(count) * total // count
