"""Typed options and the registry: unknown names are user errors that list what exists."""

import dataclasses

import pytest

from edgec.errors import UserError
from edgec.options import make_options
from edgec.registry import Registry


@dataclasses.dataclass(frozen=True)
class _Opts:
    size: int = 3
    scale: float = 1.0
    name: str = "x"


def test_make_options_fills_and_converts():
    opts = make_options(_Opts, {"size": 5, "scale": 2}, "pass demo::x")
    assert opts == _Opts(size=5, scale=2.0, name="x")


def test_unknown_option_names_both_sides():
    with pytest.raises(UserError) as err:
        make_options(_Opts, {"sise": 5}, "pass demo::x")
    assert "sise" in str(err.value) and "size, scale, name" in str(err.value)


def test_wrong_type_is_an_error():
    with pytest.raises(UserError, match="must be int"):
        make_options(_Opts, {"size": "big"}, "pass demo::x")


def test_registry_duplicate_and_lookup():
    reg: Registry[int] = Registry("thing")
    reg.register("a::b")(1)
    with pytest.raises(KeyError):
        reg.register("a::b")(2)
    assert reg.get("a::b") == 1 and list(reg) == ["a::b"]
    with pytest.raises(UserError, match="choose one of: a::b"):
        reg.get("a::c")
