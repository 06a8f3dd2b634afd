"""`--preprocessing`: the user's word on how their checkpoint's inputs were prepared.

A checkpoint file holds weights, not the recipe its training used: with `--arch NAME` edgec
assumes that model family's published preprocessing (timm's ImageNet mean/std, resize and
centre crop). A model fine-tuned on other data (CIFAR statistics, no crop, another
interpolation) needs its own, or images given to `--calib`, `--verify-images` and
`edgec eval` are prepared wrongly — silently. `--preprocessing FILE.json` (in a `--config`
TOML, also a `preprocessing = {...}` table) names the fields that differ:

    {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2470, 0.2435, 0.2616],
     "interpolation": "bilinear", "crop_pct": 1.0}

Every field is checked before the model is loaded; the result is what the artifact records
(metadata `edgec.preprocessing`) and what every later step uses. The input size stays
`--input-size`'s.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgec.errors import UserError

INTERPOLATIONS = ("bicubic", "bilinear", "nearest")
FIELDS = {
    "mean": "per-channel mean subtracted after scaling, e.g. [0.485, 0.456, 0.406]",
    "std": "per-channel std divided by, e.g. [0.229, 0.224, 0.225] (all > 0)",
    "interpolation": f"resize filter: {', '.join(INTERPOLATIONS)}",
    "crop_pct": "centre-crop fraction in (0, 1]; 1.0 resizes straight to the input size",
    "scale": "factor from uint8 pixels to floats before mean/std, e.g. 1/255 (> 0)",
}
_HINT = "fields: " + "; ".join(f"{k}: {v}" for k, v in FIELDS.items())


def read_overrides(spec: str | Mapping[str, Any]) -> dict[str, Any]:
    """Checked preprocessing fields from a JSON file path or a mapping (a TOML table)."""
    label = "--preprocessing"
    if isinstance(spec, Mapping):
        data: Any = dict(spec)
    else:
        path = Path(spec).expanduser()
        label = f"--preprocessing {path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"{label}: no such file", "give a JSON file; " + _HINT) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{label} is not readable JSON: {exc}", _HINT) from None
    if not isinstance(data, dict) or not data:
        raise UserError(f"{label} must be a non-empty JSON object", _HINT)
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise UserError(f"{label}: unknown field(s) {', '.join(unknown)}", _HINT)
    return {key: _checked(label, key, value) for key, value in data.items()}


def apply_overrides(
    preprocessing: dict[str, Any], overrides: Mapping[str, Any], channels: int
) -> str:
    """Write `overrides` into `preprocessing` (in place); returns a note for the manifest."""
    for key in ("mean", "std"):
        if key in overrides and len(overrides[key]) != channels:
            raise UserError(
                f"--preprocessing: {key} has {len(overrides[key])} values, the model's input "
                f"has {channels} channels",
                f"give one {key} per input channel",
            )
    preprocessing.update(overrides)
    return "preprocessing from --preprocessing: " + ", ".join(
        f"{k}={v}" for k, v in sorted(overrides.items())
    )


def _checked(label: str, key: str, value: Any) -> Any:
    def bad(why: str) -> UserError:
        return UserError(f"{label}: {key}={value!r} {why}", f"{key}: {FIELDS[key]}")

    if key in ("mean", "std"):
        if not isinstance(value, list) or not value or not all(_is_number(v) for v in value):
            raise bad("is not a list of numbers")
        if key == "std" and min(value) <= 0:
            raise bad("has a value ≤ 0")
        return [float(v) for v in value]
    if key == "interpolation":
        if value not in INTERPOLATIONS:
            raise bad("is not a known filter")
        return value
    if not _is_number(value):
        raise bad("is not a number")
    if key == "crop_pct" and not 0 < value <= 1:
        raise bad("is not in (0, 1]")
    if key == "scale" and value <= 0:
        raise bad("is not > 0")
    return float(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
