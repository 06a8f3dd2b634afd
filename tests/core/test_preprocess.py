"""Preprocessing: resize + centre crop + normalise, image reading from folders and .npz."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgec.errors import UserError
from edgec.preprocess import Preprocessing, read_images, read_model_inputs, synthetic_images

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


def test_a_capped_read_takes_images_spread_over_the_data_or_a_clip_in_order(tmp_path):
    """A file stored class by class still gives every class; a clip keeps its first frames."""
    stored = np.arange(10, dtype=np.uint8)[:, None, None, None] * np.ones((10, 4, 4, 3), np.uint8)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, image in enumerate(stored):
        Image.fromarray(image).save(folder / f"{i:02d}.png")
    np.savez(tmp_path / "images.npz", images=stored)
    for path in (folder, tmp_path / "images.npz"):
        assert [int(x[0, 0, 0]) for x in read_images(path, limit=4)] == [0, 2, 5, 7]
        got = read_images(path, limit=4, consecutive=True)
        assert [int(x[0, 0, 0]) for x in got] == [0, 1, 2, 3]
    tensors = tmp_path / "tensors.npy"
    np.save(tensors, np.arange(10, dtype=np.float32)[:, None, None, None] * np.ones((10, 3, 2, 2)))
    pre = Preprocessing(input_size=(3, 2, 2))
    assert read_model_inputs(tensors, pre, 4)[:, 0, 0, 0].tolist() == [0, 2, 5, 7]


def test_a_capped_read_of_jpegs_back_to_back_takes_them_spread_over_the_file():
    everything = read_images(SHARED / "data" / "imagenet_samples.npz")
    spread_three = read_images(SHARED / "data" / "imagenet_samples.npz", limit=3)
    for got, index in zip(
        spread_three, [0, len(everything) // 3, 2 * len(everything) // 3], strict=True
    ):
        np.testing.assert_array_equal(got, everything[index])


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


@pytest.mark.parametrize(
    "images",
    [
        np.random.default_rng(0).random((2, 8, 8, 3)),  # float pixels: would be cast to black
        np.zeros((2, 8, 8), np.uint8),  # grey
        np.zeros((2, 8, 8, 4), np.uint8),  # RGBA
    ],
)
def test_images_an_npz_holds_in_another_form_are_refused_not_misread(tmp_path, images):
    np.savez(tmp_path / "x.npz", images=images)
    with pytest.raises(UserError, match=r"N×H×W×3 uint8"):
        read_images(tmp_path / "x.npz")


def test_an_undecodable_jpeg_and_non_finite_tensors_are_user_errors(tmp_path):
    jpeg = np.frombuffer(b"\xff\xd8 this is not a JPEG" * 4, np.uint8)
    np.savez(tmp_path / "jpeg.npz", jpeg=jpeg, offsets=np.array([0, 40, len(jpeg)]))
    with pytest.raises(UserError, match=r"image 0 of .* is not a readable image"):
        read_images(tmp_path / "jpeg.npz")
    np.save(tmp_path / "nan.npy", np.full((2, 3, 4, 4), np.nan, np.float32))
    with pytest.raises(UserError, match="NaN or infinite"):
        read_model_inputs(tmp_path / "nan.npy", Preprocessing(input_size=(3, 4, 4)), 2)
