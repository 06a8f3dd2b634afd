"""JSON text that every parser reads: what edgec writes to manifests, reports and --json.

Python's `json` writes NaN and Infinity, which are not JSON: an app or CI script reading the
manifest with a strict parser (Swift's JSONDecoder, JavaScript's JSON.parse) fails on them. A
non-finite float is written as null (e.g. the cosine of an output holding -inf).

    json_text({"cosine": float("nan"), "ms": 1.5})  →  '{"cosine": null, "ms": 1.5}'
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_text(data: Any, **options: Any) -> str:
    """`json.dumps(data, **options)` with non-finite floats as null (`default=str` as usual)."""
    return json.dumps(_finite(data), allow_nan=False, default=str, **options)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
