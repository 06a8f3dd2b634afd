"""State-dict handling: unwrap containers, read the head size, load strictly.

Containers: a plain state_dict, or a dict holding it under `model`, `state_dict` or
`model_ema` (first found wins; nested containers are unwrapped too). A `module.` prefix
(DistributedDataParallel) on every key is removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from edgec.errors import CheckpointMismatchError, ModelLoadError

CONTAINER_KEYS = ("model", "state_dict", "model_ema")


def unwrap(obj: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The state_dict inside a checkpoint object, plus notes on what was unwrapped."""
    notes: list[str] = []
    if isinstance(obj, torch.nn.Module):
        notes.append(f"file holds a whole {type(obj).__name__} module; its state_dict is used")
        obj = obj.state_dict()
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        key = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            others = [k for k, v in obj.items() if not isinstance(v, torch.Tensor)][:8]
            raise ModelLoadError(
                "checkpoint is a dict but not a state_dict: entries "
                f"{', '.join(map(repr, others))} are not tensors",
                "save model.state_dict() (or a dict with it under 'model' / 'state_dict' / "
                "'model_ema')",
            )
        rest = [k for k in CONTAINER_KEYS if k != key and k in obj]
        also = f" (also holds {', '.join(map(repr, rest))}, not used)" if rest else ""
        notes.append(f"state_dict taken from the checkpoint's {key!r} entry{also}")
        obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ModelLoadError(
            f"checkpoint holds a {type(obj).__name__}, not a state_dict",
            "save model.state_dict() with torch.save",
        )
    sd = dict(obj)
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
        notes.append("'module.' prefix (DistributedDataParallel) removed from every key")
    return sd, notes


def _is_state_dict(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def classifier_key(arch: str) -> str | None:
    """The timm name of `arch`'s classifier weight (`head.linear.weight`, `fc.weight`, ...)."""
    from timm.models import get_pretrained_cfg

    cfg = get_pretrained_cfg(arch) or get_pretrained_cfg(arch.split(".", 1)[0])
    classifier = getattr(cfg, "classifier", None) if cfg is not None else None
    if isinstance(classifier, (tuple, list)):
        classifier = classifier[0] if classifier else None
    return f"{classifier}.weight" if classifier else None


def head_classes(state_dict: Mapping[str, torch.Tensor], arch: str) -> tuple[int, str] | None:
    """(number of classes, key) read from the checkpoint's classifier weight, if present."""
    key = classifier_key(arch)
    if key is None or key not in state_dict or state_dict[key].ndim < 1:
        return None
    return int(state_dict[key].shape[0]), key


def load_strict(
    model: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    arch: str,
    remapped_from: str | None = None,
) -> None:
    """Load every key exactly; any missing, unexpected or mis-shaped key raises, naming them,
    and so does a tensor holding NaN.

    `remapped_from="official"` says the keys were converted from the official layout, so the
    error says that the names it lists are timm's.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        (k, tuple(v.shape), tuple(own[k].shape))
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        hint = _mismatch_hint(arch, state_dict, mismatched)
        if remapped_from == "official":
            hint += (
                "; the key names above are timm's: the official-layout checkpoint was remapped "
                "to them before loading (e.g. EfficientViT-M's official head.l.* is timm's "
                "head.linear.*)"
            )
        raise CheckpointMismatchError(arch, missing, unexpected, mismatched, hint)
    broken = [k for k, v in state_dict.items() if v.is_floating_point() and v.isnan().any()]
    if broken:
        shown = ", ".join(broken[:5]) + (f" and {len(broken) - 5} more" if len(broken) > 5 else "")
        raise ModelLoadError(
            f"the checkpoint holds NaN values in {len(broken)} tensor(s): {shown}",
            "the weights are broken (e.g. a diverged training run): give a checkpoint saved "
            "before the NaNs appeared",
        )
    model.load_state_dict(state_dict, strict=True)


def _mismatch_hint(arch: str, state_dict: Mapping, mismatched: list) -> str:
    from edgec.models.layouts import guess_family

    key = classifier_key(arch)
    if mismatched and key and {k for k, *_ in mismatched} <= {key, key[: -len("weight")] + "bias"}:
        n = state_dict[key].shape[0]
        return f"the checkpoint's head has {n} classes: pass --num-classes {n} (or leave it out)"
    family = guess_family(state_dict)
    looks = f"; its keys look like {family}" if family else ""
    return f"check --arch (and --num-classes for a fine-tuned head) against the checkpoint{looks}"
