"""Preprocessing: resize + centre crop + normalise, image reading from folders and .npz."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgec.errors import UserError
from edgec.preprocess import Preprocessing, read_images, synthetic_images

SHARED = Path(__file__).resolve().parents[2].parent / "shared"


def test_apply_matches_hand_computation_on_a_flat_image():
    pre = Preprocessing(input_size=(3, 8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    image = np.full((10, 12, 3), 191, np.uint8)
    out = pre.apply([image])
    assert out.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(out, (191 / 255 - 0.5) / 0.25, rtol=1e-5)


def test_round_trip_through_json():
    pre = Preprocessing(input_size=(3, 256, 256), crop_pct=0.95)
    assert Preprocessing.from_dict(pre.to_dict()) == pre


def test_synthetic_images_are_deterministic_and_image_like():
    a, b = synthetic_images(2, 32, 32), synthetic_images(2, 32, 32)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].dtype == np.uint8 and 40 < a[0].mean() < 215


def test_read_images_from_folder_and_npz(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), i * 50, np.uint8)).save(tmp_path / f"{i}.png")
    images = read_images(tmp_path)
    assert len(images) == 3 and images[2].shape == (20, 30, 3)
    np.savez(tmp_path / "x.npz", images=np.zeros((5, 8, 8, 3), np.uint8))
    assert len(read_images(tmp_path / "x.npz", limit=2)) == 2


@pytest.mark.skipif(not (SHARED / "data").exists(), reason="../shared/data is not present")
def test_read_jpeg_npz_of_the_shared_imagenet_samples():
    images = read_images(SHARED / "data" / "imagenet_samples.npz", limit=3)
    assert len(images) == 3 and images[0].shape == (224, 224, 3)


def test_bad_image_inputs_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_images(tmp_path / "missing")
    with pytest.raises(UserError, match="no images"):
        read_images(tmp_path)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(UserError, match="not a readable"):
        read_images(tmp_path / "bad.npz")
