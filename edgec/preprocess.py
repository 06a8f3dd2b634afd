"""Image preprocessing as recorded in a model: resize, centre crop, scale, normalise.

The same recipe is stored in the ONNX metadata (`edgec.preprocessing`), used to turn user
images into model-ready tensors (verification, calibration), and documented for app code.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgec.errors import UserError
from edgec.sample_choice import spread

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How an RGB uint8 image becomes the model's NCHW float32 input.

    `input_size` is (C, H, W) for image models and (C, D, H, W) for volumetric ones, whose
    inputs come already normalised (mean 0, std 1, scale 1: `apply` is for images only).
    """

    input_size: tuple[int, ...] = (3, 224, 224)
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    interpolation: str = "bicubic"
    crop_pct: float = 0.875
    layout: str = "NCHW"
    color: str = "RGB"
    scale: float = 1.0 / 255.0

    @property
    def volumetric(self) -> bool:
        """True for C×D×H×W (3-D) inputs."""
        return len(self.input_size) == 4

    def synthetic_inputs(self, count: int, seed: int = 0) -> np.ndarray:
        """`count` deterministic model-ready inputs: synthetic images or volumes (see below)."""
        if self.volumetric:
            return synthetic_volumes(count, self.input_size, seed)
        _, height, width = self.input_size
        return self.apply(synthetic_images(count, height, width, seed))

    def to_dict(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Preprocessing:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
        return cls(**values)

    def apply(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """H×W×3 uint8 RGB images → N×C×H×W float32: resize, centre crop, normalise."""
        from PIL import Image

        if self.volumetric:
            raise UserError(
                f"a volumetric model (input {list(self.input_size)}) takes model-ready volumes, "
                "not images",
                "give an .npy/.npz of float32 N×C×D×H×W tensors",
            )
        _, height, width = self.input_size
        resample = {"bilinear": Image.BILINEAR, "nearest": Image.NEAREST}.get(
            self.interpolation, Image.BICUBIC
        )
        out = np.empty((len(images), 3, height, width), np.float32)
        mean = np.asarray(self.mean, np.float32).reshape(3, 1, 1)
        std = np.asarray(self.std, np.float32).reshape(3, 1, 1)
        for i, array in enumerate(images):
            image = Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8))
            short = min(height, width) / self.crop_pct
            ratio = short / min(image.size)
            size = (
                max(width, round(image.width * ratio)),
                max(height, round(image.height * ratio)),
            )
            image = image.resize(size, resample)
            left, top = (image.width - width) // 2, (image.height - height) // 2
            image = image.crop((left, top, left + width, top + height))
            pixels = np.asarray(image, np.float32).transpose(2, 0, 1) * self.scale
            out[i] = (pixels - mean) / std
        return out


def read_images(
    path: Path, limit: int | None = None, consecutive: bool = False
) -> list[np.ndarray]:
    """Read RGB images (H×W×3 uint8, any size) from a folder of image files or an `.npz`.

    The `.npz` may hold `images` (N×H×W×3 uint8) or JPEGs back to back (`jpeg` + `offsets`).
    `limit` images are taken spread over the whole file (`edgec.sample_choice.spread`), or
    the first `limit` in order when `consecutive` (a video clip's frames).
    """
    return [load() for load in _pick(_image_loaders(Path(path)), limit, consecutive)]


def _image_loaders(path: Path) -> list[Callable[[], np.ndarray]]:
    """One loader per image `path` stores, in stored order; nothing is decoded yet."""
    if not path.exists():
        raise UserError(f"image data {path} does not exist", "give a folder of images or an .npz")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise UserError(
                f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {path}",
                "point at a folder that holds image files",
            )
        return [
            functools.partial(_decode, file, f"image {file}", "remove or fix that file")
            for file in files
        ]
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path} is not a readable .npz/.npy: {exc}", "use np.savez") from exc
    if "images" in data:
        images = _checked_images(data["images"], path)
        return [functools.partial(images.__getitem__, i) for i in range(len(images))]
    if "jpeg" in data and "offsets" in data:
        jpeg, offsets = data["jpeg"], data["offsets"]
        return [
            functools.partial(
                _decode,
                jpeg[offsets[i] : offsets[i + 1]],
                f"image {i} of {path} (bytes {offsets[i]}–{offsets[i + 1]} of `jpeg`)",
                "store each encoded file whole, with `offsets[i]` where image i starts",
            )
            for i in range(len(offsets) - 1)
        ]
    raise UserError(
        f"{path} holds neither `images` nor `jpeg`+`offsets`",
        "store N×H×W×3 uint8 RGB images under the key `images`",
    )


def _decode(source: Path | np.ndarray, what: str, hint: str) -> np.ndarray:
    """An encoded image (a file, or its bytes as a uint8 array) as H×W×3 uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, np.ndarray):
        source = io.BytesIO(source.tobytes())
    try:
        return np.asarray(Image.open(source).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise UserError(f"{what} is not a readable image: {exc}", hint) from exc


def _checked_images(images: np.ndarray, path: Path) -> np.ndarray:
    """`images` of an .npz as they are when N×H×W×3 uint8; anything else would be read wrong
    (float pixels cast to uint8 become black, grey or RGBA arrays mis-broadcast)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise UserError(
            f"`images` in {path} is {images.dtype} of shape {list(images.shape)}; edgec reads "
            "N×H×W×3 uint8 RGB images there",
            "store RGB pixels 0–255 as np.uint8 (grey: repeat the channel 3 times; RGBA: drop "
            "alpha), or model-ready float32 tensors under the key `inputs`",
        )
    return images


def _pick(items: list, limit: int | None, consecutive: bool) -> list:
    """`limit` of `items`: the first ones when `consecutive`, else spread over all of them."""
    if consecutive:
        return items[:limit]
    return [items[i] for i in spread(len(items), limit)]


@dataclasses.dataclass(frozen=True)
class ModelInputs:
    """Model-ready samples of a data file, prepared a chunk at a time: evaluating 10,000
    images holds one chunk of float tensors, not 10,000 (6 GB at 3×224×224)."""

    indices: np.ndarray  # which of the file's samples, in order (`edgec.sample_choice.spread`)
    stored: int  # how many samples the file holds
    prepare: Callable[[int, int], np.ndarray]  # (start, stop) → those samples, float32

    @property
    def count(self) -> int:
        return len(self.indices)

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index of the first sample, up to `size` samples) until all are given."""
        for start in range(0, self.count, size):
            yield start, self.prepare(start, min(start + size, self.count))


def read_model_inputs(
    path: Path, preprocessing: Preprocessing, count: int, purpose: str = "input data"
) -> np.ndarray:
    """Up to `count` model-ready samples (N×C×H×W or N×C×D×H×W float32) from `path`, spread
    evenly over it (`edgec.sample_choice`); `open_model_inputs` says which files it reads."""
    inputs = open_model_inputs(path, preprocessing, count, purpose)
    return inputs.prepare(0, inputs.count)


def open_model_inputs(
    path: Path, preprocessing: Preprocessing, count: int, purpose: str = "input data"
) -> ModelInputs:
    """Up to `count` samples of `path`, spread evenly over it, to prepare chunk by chunk.

    `path` is a folder of images or an `.npz` of uint8 images (`images`, or `jpeg` +
    `offsets`), prepared with `preprocessing`; or an `.npz` (key `inputs`, or its only array)
    or `.npy` of float32 tensors that are already model-ready and used as they are (the only
    form volumetric models take). `purpose` names the data in error messages.
    """
    path = Path(path)
    if count < 1:
        raise UserError(f"the number of {purpose} samples must be at least 1, got {count}")
    if not path.exists():
        raise UserError(
            f"{purpose} {path} does not exist",
            "give a folder of images, an .npz of uint8 images, or an .npz/.npy of float32 tensors",
        )
    tensors = _float_tensors(path, purpose)
    if tensors is None:
        stored = _image_loaders(path)
        indices = spread(len(stored), count)
        if not len(indices):
            raise UserError(f"{purpose} {path} holds no images")
        loaders = [stored[i] for i in indices]
        return ModelInputs(
            indices,
            len(stored),
            lambda a, b: preprocessing.apply([load() for load in loaders[a:b]]),
        )
    stored, indices = len(tensors), spread(len(tensors), count)
    tensors = tensors[indices]
    want = tuple(preprocessing.input_size)
    if tensors.shape[1:] != want or not len(tensors):
        raise UserError(
            f"{purpose} tensors in {path} have shape {list(tensors.shape)}; the model takes "
            f"N×{'×'.join(map(str, want))}",
            "store model-ready float32 inputs of that shape, or give uint8 images instead",
        )
    if not np.all(np.isfinite(tensors)):
        raise UserError(
            f"{purpose} tensors in {path} hold NaN or infinite values",
            "store finite model-ready float32 inputs",
        )
    return ModelInputs(
        indices, stored, lambda a, b: np.ascontiguousarray(tensors[a:b], dtype=np.float32)
    )


def _float_tensors(path: Path, purpose: str) -> np.ndarray | None:
    """The float array of an .npy / .npz, or None when `path` holds images instead."""
    if path.is_dir():
        return None
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserError(f"{path} is not a readable .npz/.npy: {exc}", "use np.save(z)") from exc
    if isinstance(data, np.ndarray):
        array = data
    elif "inputs" in data:
        array = data["inputs"]
    elif "images" in data or "jpeg" in data:
        return None
    elif len(data.files) == 1:
        array = data[data.files[0]]
    else:
        raise UserError(
            f"{path} holds {data.files}: none is `inputs`, `images` or `jpeg`+`offsets`",
            "store model-ready float32 tensors under `inputs` or uint8 images under `images`",
        )
    if array.dtype == np.uint8 and array.ndim == 4 and array.shape[-1] == 3:
        raise UserError(
            f"{path} holds uint8 images in an unnamed array",
            "store them under the key `images` so edgec applies the model's preprocessing",
        )
    if not np.issubdtype(array.dtype, np.floating):
        raise UserError(
            f"{purpose} array in {path} is {array.dtype}, not float32 model inputs",
            "store float32 model-ready tensors, or uint8 images under the key `images`",
        )
    return array


def synthetic_images(count: int, height: int, width: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic image-like RGB uint8 pictures (smooth colour fields, edges and texture).

    Used to verify a compile when the user gives no images: unlike N(0, 1) noise they have the
    value ranges and spatial correlation of photos once the model's preprocessing is applied.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    images = []
    for _ in range(count):
        picture = np.zeros((height, width, 3), np.float32)
        for channel in range(3):
            for _ in range(4):
                fy, fx = rng.uniform(0.5, 6.0, size=2) * 2 * np.pi / np.array([height, width])
                phase, amplitude = rng.uniform(0, 2 * np.pi), rng.uniform(20, 60)
                picture[..., channel] += amplitude * np.sin(fy * yy + fx * xx + phase)
        box = rng.integers(0, [height // 2, width // 2, height // 2, width // 2])
        picture[box[0] : box[0] + box[2], box[1] : box[1] + box[3]] += rng.uniform(-80, 80, 3)
        picture += rng.normal(0, 8, picture.shape)
        images.append(np.clip(picture + 128, 0, 255).astype(np.uint8))
    return images


def synthetic_volumes(count: int, size: Sequence[int], seed: int = 0) -> np.ndarray:
    """Deterministic N×C×D×H×W float32 volumes shaped like z-scored scans.

    Each channel is a smooth random field (a few low-frequency 3-D waves) with a brighter
    ellipsoid (a "lesion") and fine noise, normalised to mean 0 and std 1 per channel, the way
    MRI pipelines normalise each modality before a volumetric segmenter sees it.
    """
    channels, depth, height, width = size
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*(np.linspace(0, 1, n) for n in size[1:]), indexing="ij"))
    out = np.empty((count, *size), np.float32)
    for n in range(count):
        centre, radius = rng.uniform(0.3, 0.7, 3), rng.uniform(0.1, 0.25, 3)
        blob = (((grid - centre[:, None, None, None]) / radius[:, None, None, None]) ** 2).sum(0)
        for c in range(channels):
            field = np.zeros((depth, height, width), np.float32)
            for _ in range(3):
                freq = rng.uniform(0.5, 3.0, 3) * 2 * np.pi
                field += np.sin(np.tensordot(freq, grid, 1) + rng.uniform(0, 2 * np.pi))
            field += rng.uniform(1.0, 3.0) * (blob < 1) + rng.normal(0, 0.1, field.shape)
            out[n, c] = (field - field.mean()) / (field.std() + 1e-6)
    return out
