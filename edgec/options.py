"""Typed, frozen option dataclasses filled from flags or TOML; unknown options are errors."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from edgec.errors import UserError

OptionsT = TypeVar("OptionsT")


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """The options of a pass that takes none."""


def make_options(cls: type[OptionsT], values: dict[str, Any] | None, owner: str) -> OptionsT:
    """Build `cls` from `values`, naming `owner` and the valid fields when something is wrong."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        valid = ", ".join(fields) or "none"
        raise UserError(
            f"{owner} does not support option(s) {', '.join(unknown)}",
            f"options of {owner}: {valid}",
        )
    hints = typing.get_type_hints(cls)
    for name, value in values.items():
        allowed = _accepted_types(hints[name])
        if not allowed or isinstance(value, allowed):
            continue
        if float in allowed and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
            continue
        if tuple in allowed and isinstance(value, list):  # TOML and JSON have lists only
            values[name] = tuple(value)
            continue
        wanted = " or ".join(t.__name__ for t in allowed)
        raise UserError(
            f"option {name!r} of {owner} must be {wanted}, got {value!r}",
            f"pass a {wanted} for {name}",
        )
    return cls(**values)


def as_dict(options: Any) -> dict[str, Any]:
    return dataclasses.asdict(options) if dataclasses.is_dataclass(options) else {}


def _accepted_types(hint: Any) -> tuple[type, ...]:
    """The runtime types a field hint accepts (`int | None` → (int, NoneType)); () = any."""
    args = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    accepted = []
    for arg in args:
        origin = typing.get_origin(arg) or arg
        if not isinstance(origin, type):
            return ()
        accepted.append(origin)
    return tuple(accepted)
