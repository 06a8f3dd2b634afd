"""Create a model by name (built-in zoo or any timm model), optionally with a checkpoint.

Models edgec implements itself (`zoo.NATIVE`: SegFormer3D, Segmenter, EfficientTAM) are
built by edgec, in their official checkpoint layout (no remap); all others are built by timm
with `pretrained=False`.
Both are built under `torch.manual_seed(0)` (the caller's RNG state is left untouched), so
the same name always gives the same weights. A checkpoint is
read safely, unwrapped, converted from the official layout when it is one, and loaded strictly.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from edgec.errors import UserError
from edgec.models.checkpoint_io import read_weights
from edgec.models.layouts import layout_for, to_timm_layout
from edgec.models.seeded_init import randomise_constant_inits
from edgec.models.state_dict import head_classes, load_strict, unwrap
from edgec.models.zoo import BUILTIN_NAMES, INIT_SEED, NATIVE, RANDOM_INIT_NOTE, display_aliases


@dataclasses.dataclass
class ModelInfo:
    """How a model was made: name, weights, class count (and where it came from), notes."""

    name: str
    builtin: bool
    family: str | None
    weights: str
    num_classes: int | None
    num_classes_source: str
    checkpoint_layout: str | None = None
    notes: list[str] = dataclasses.field(default_factory=list)


def resolve_name(name: str) -> str:
    """The timm name for `name` (exact timm name, built-in, or a display spelling).

    Raises UserError naming close matches when nothing fits.
    """
    import timm

    raw = name.strip()
    if raw in BUILTIN_NAMES or timm.is_model(raw) or _is_tagged_timm_name(raw):
        return raw
    key = raw.lower().replace("-", "_")
    aliases = display_aliases()
    for candidate in (key, key.replace("_", "")):
        if candidate in aliases:
            return aliases[candidate]
    if timm.is_model(key):
        return key
    names = sorted({*BUILTIN_NAMES, *timm.list_models()})
    close = difflib.get_close_matches(key, names, n=5, cutoff=0.6)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(
        f"unknown model {name!r}: not a built-in model nor a timm model name",
        f"{hint}`edgec zoo` lists the built-in models; any timm.list_models() name works",
    )


def _is_tagged_timm_name(name: str) -> bool:
    import timm

    base, _, tag = name.partition(".")
    return bool(tag) and timm.is_model(base)


def create_with_info(
    name: str,
    checkpoint: str | Path | Mapping[str, Any] | None = None,
    num_classes: int | None = None,
    *,
    allow_pickle: bool = False,
    **config: Any,
) -> tuple[torch.nn.Module, ModelInfo]:
    """Like `create`, and also returns the `ModelInfo` record (also set as `model.edgec_info`)."""
    if num_classes is not None and num_classes < 0:
        raise UserError(
            f"--num-classes {num_classes}: a model has at least 1 class",
            "give the number of classes of the fine-tuned head (0: no classifier, as in timm)",
        )
    arch = resolve_name(name)
    native = arch in NATIVE
    layout = None if native else layout_for(arch)
    info = ModelInfo(
        name=arch,
        builtin=arch in BUILTIN_NAMES,
        family=NATIVE[arch].family if native else (layout.family if layout else None),
        weights=RANDOM_INIT_NOTE,
        num_classes=num_classes,
        num_classes_source="given" if num_classes is not None else "default",
    )
    state_dict = None
    if checkpoint is not None:
        state_dict = _prepare(checkpoint, arch, allow_pickle, info)
        found = _native_head(state_dict, arch) if native else head_classes(state_dict, arch)
        if num_classes is None and found is not None:
            info.num_classes, info.num_classes_source = found[0], "checkpoint"
            info.notes.append(
                f"num_classes={found[0]} inferred from the checkpoint's {found[1]} "
                f"{list(state_dict[found[1]].shape)}"
            )
    model = _seeded_create(arch, info.num_classes, config)
    if state_dict is not None:
        remapped = None if native else info.checkpoint_layout
        load_strict(model, state_dict, arch, remapped_from=remapped)
        source = checkpoint if isinstance(checkpoint, (str, Path)) else "the given state_dict"
        info.weights = f"checkpoint {source}"
    else:
        info.notes.insert(0, RANDOM_INIT_NOTE)
    info.num_classes = getattr(model, "num_classes", info.num_classes)
    _record_img_size(model, config.get("img_size"))
    model.eval()
    model.edgec_info = info
    return model, info


def create(
    name: str,
    checkpoint: str | Path | Mapping[str, Any] | None = None,
    num_classes: int | None = None,
    *,
    allow_pickle: bool = False,
    **config: Any,
) -> torch.nn.Module:
    """Build model `name` in eval mode: seeded random init, or the weights in `checkpoint`.

    `checkpoint` is a file (torch.save state_dict / container, or .safetensors) or a state_dict
    mapping, in timm's layout or the family's official one (detected from the keys) and loaded
    strictly. `num_classes` sizes the head; when None and a checkpoint is given it is read from
    the checkpoint's classifier weight. `config` goes to `timm.create_model` (e.g. `img_size`).
    The returned module carries a `ModelInfo` as `model.edgec_info`.
    """
    return create_with_info(name, checkpoint, num_classes, allow_pickle=allow_pickle, **config)[0]


def _prepare(checkpoint, arch: str, allow_pickle: bool, info: ModelInfo) -> dict:
    if isinstance(checkpoint, (str, Path)):
        obj, notes = read_weights(Path(checkpoint), allow_pickle=allow_pickle)
        info.notes.extend(notes)
    else:
        obj = checkpoint
    state_dict, notes = unwrap(obj)
    info.notes.extend(notes)
    dtypes = sorted({str(v.dtype).removeprefix("torch.") for v in state_dict.values()})
    if "float16" in dtypes or "bfloat16" in dtypes:
        info.notes.append(f"checkpoint tensors stored as {'/'.join(dtypes)}; loaded into float32")
    if arch in NATIVE:  # edgec's module uses the official key names: nothing to remap
        info.checkpoint_layout = "official"
        return state_dict
    state_dict, info.checkpoint_layout, notes = to_timm_layout(state_dict, arch)
    info.notes.extend(notes)
    return state_dict


def _native_head(state_dict: Mapping[str, torch.Tensor], arch: str) -> tuple[int, str] | None:
    """(number of classes, key) from a native model's classifier weight, if present."""
    from edgec.models import efficienttam, segformer3d, segmenter

    if arch in segmenter.VARIANTS:
        return segmenter.classes_in_checkpoint(state_dict)
    if arch in efficienttam.VARIANTS:  # no classifier: masks
        return None
    key = {"segformer3d": segformer3d.CLASSIFIER_KEY}[arch]
    value = state_dict.get(key)
    return (int(value.shape[0]), key) if value is not None and value.ndim >= 1 else None


def _native_build(arch: str, **kwargs: Any) -> torch.nn.Module:
    """Build a model edgec implements itself, and give it its catalogue input recipe."""
    from edgec.models import efficienttam, segmenter
    from edgec.models.segformer3d import SegFormer3D

    if arch in segmenter.VARIANTS:
        model = segmenter.build(arch, **kwargs)
    elif arch in efficienttam.VARIANTS:
        model = efficienttam.build(arch, **kwargs)
    else:
        model = {"segformer3d": SegFormer3D}[arch](**kwargs)
    entry = NATIVE[arch]
    model.pretrained_cfg = {
        "input_size": getattr(model, "input_size", entry.input_size),  # a size given at build
        "mean": entry.mean,
        "std": entry.std,
        "interpolation": entry.interpolation,
        "crop_pct": entry.crop_pct,
        "crop_mode": entry.crop_mode,
        "num_classes": getattr(model, "num_classes", entry.num_classes),
    }
    return model


def _record_img_size(model: torch.nn.Module, img_size: Any) -> None:
    """timm keeps the default input_size in pretrained_cfg; record a size given at build time."""
    cfg = getattr(model, "pretrained_cfg", None)
    if img_size is None or not isinstance(cfg, dict):
        return
    h, w = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    channels = cfg.get("input_size", (3,))[0]
    model.pretrained_cfg = {**cfg, "input_size": (channels, int(h), int(w))}
    if isinstance(getattr(model, "default_cfg", None), dict):
        model.default_cfg = model.pretrained_cfg


def _seeded_create(arch: str, num_classes: int | None, config: dict) -> torch.nn.Module:
    import timm

    kwargs = dict(config)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(INIT_SEED)
        try:
            if arch in NATIVE:
                model = _native_build(arch, **kwargs)
            else:
                model = timm.create_model(arch, pretrained=False, **kwargs)
        except TypeError as exc:
            where = "edgec.models.zoo()" if arch in NATIVE else "timm's documentation"
            raise UserError(
                f"model {arch!r} does not accept option(s) {sorted(config)}: {exc}",
                f"drop the option, or check {where} for this model",
            ) from exc
    randomise_constant_inits(model, INIT_SEED)
    return model
