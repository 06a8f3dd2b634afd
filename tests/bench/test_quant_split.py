"""bench/quant.py's data splits: calibration and evaluation never share an image, and the
`fifth` split evaluates on the images bench/train_cifar_reference.py never trains on."""

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import quant  # noqa: E402


def test_m0_split_holds_the_calibration_images_apart():
    calib, evaluation = quant.split(np.zeros(10_000), None, "m0")
    assert len(calib) == 250 and len(evaluation) == 9_750
    assert not set(calib) & set(evaluation)


def test_fifth_split_evaluates_on_the_held_out_fifth_and_calibrates_on_training_images():
    calib, evaluation = quant.split(np.zeros(10_000), None, "fifth")
    assert len(evaluation) == 2_000 and all(i % 5 == 0 for i in evaluation)
    assert len(calib) == 250 and all(i % 5 != 0 for i in calib)
