"""Device profiles: TOML data shipped in `edgec.devices`, loaded into frozen dataclasses.

One file per profile (`devices/<name>.toml`, the file stem is the profile name). Every number
in a profile is a `Figure`, `Peak` or `Cache` that carries its `source` (a document named in the
reference notes) and a `trust` tag (the legend of shared/reference/latency.md: V verbatim
primary source, F read off a figure, D derived from a ratio in an abstract, S secondary
source, M from memory / datasheet not re-fetched, "derived" computed from other quoted specs).
Unknown numbers are left out, never guessed. Keys the loader does not know are errors naming
the file and the key, so typos in the data are caught when edgec starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import os
import platform
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

from edgec.errors import UserError

UNIT_KINDS = ("cpu", "gpu", "npu", "dla")
RUNTIMES = ("onnxruntime", "coreml", "tflite", "qnn", "tensorrt")
LATENCY_KINDS = ("measured", "estimated")
TRUST_TAGS = ("V", "F", "D", "S", "M", "derived")
PEAK_UNITS = ("TFLOPS", "TOPS", "GFLOPS", "GOPS")
SIZE_UNITS = ("KB", "MB", "GB")
BANDWIDTH_UNITS = ("GB/s",)
PEAK_PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4", "unstated")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Figure:
    """One published number with its unit, where it comes from and how far to trust it."""

    value: float
    unit: str
    source: str
    trust: str
    note: str = ""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Peak(Figure):
    """Peak throughput of a compute unit at one precision (vendor peak, dense unless sparse)."""

    precision: str
    sparse: bool = False  # True: the 2:4 structured-sparsity figure (twice the dense one)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Cache(Figure):
    """One cache level, e.g. "L2 per core" or "system-level cache"."""

    name: str


@dataclasses.dataclass(frozen=True)
class ComputeUnit:
    """A CPU cluster, GPU, NPU or DLA; `name` describes it in words (core counts, clocks)."""

    kind: str
    name: str
    source: str
    trust: str = ""
    precisions: tuple[str, ...] = ()
    peaks: tuple[Peak, ...] = ()
    note: str = ""
    ops: tuple[str, ...] = ()  # ONNX op types the unit runs, where a source lists them
    ops_source: str = ""


@dataclasses.dataclass(frozen=True)
class Memory:
    """Main memory: kind in words, peak bandwidth and capacities where known."""

    kind: str
    source: str
    bandwidth: Figure | None = None
    capacity: tuple[Figure, ...] = ()
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Fallback:
    """Ops or shapes known to leave the accelerator (or not to convert at all) on this target."""

    what: str
    effect: str  # e.g. "runs on CPU", "no speed-up", "conversion fails"
    source: str
    ops: tuple[str, ...] = ()  # ONNX op types involved, where the source names them
    precisions: tuple[str, ...] = ()  # edgec precisions it happens at (empty: any precision)


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """What a target is, which runtime and precisions it wants, and how latency is obtained."""

    name: str
    description: str
    runtime: str
    precisions: tuple[str, ...]
    pipeline: str
    latency: str  # "measured" here, or "estimated" by the cost model
    threads: int = 1  # a benchmark setting, not a published figure
    aliases: tuple[str, ...] = ()
    soc: str = ""
    alt_runtimes: tuple[str, ...] = ()
    compute_units: tuple[ComputeUnit, ...] = ()
    memory: Memory | None = None
    caches: tuple[Cache, ...] = ()
    fallbacks: tuple[Fallback, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: plain dicts, lists, strings, numbers and booleans only."""
        data = _plain(dataclasses.asdict(self))
        if self.name == "host":
            data["detected"] = host_facts()
        return data


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


# --- loading ---------------------------------------------------------------------------------


def _error(where: str, problem: str, hint: str) -> UserError:
    return UserError(f"device profile {where}: {problem}", hint)


def _record(cls: type, data: Any, where: str, nested: dict[str, Any] | None = None) -> Any:
    """Build dataclass `cls` from a TOML table: unknown keys, missing keys and wrong types fail."""
    if not isinstance(data, dict):
        raise _error(where, f"expected a table, got {type(data).__name__}", "see devices/*.toml")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _error(
                where,
                f"unknown key {key!r}",
                f"{hint}known keys here: {', '.join(fields)}",
            )
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [name for name in required if name not in data]
    if missing:
        raise _error(where, f"missing key {missing[0]!r}", f"required keys: {', '.join(required)}")
    kwargs = {}
    for key, value in data.items():
        at = f"{where}: {key}"
        if nested and key in nested:
            kwargs[key] = nested[key](value, at)
        else:
            kwargs[key] = _typed(fields[key].type, value, at)
    return cls(**kwargs)


def _typed(annotation: str, value: Any, where: str) -> Any:
    """Check a scalar or a list of strings against the field's annotation."""
    if annotation == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise _error(where, "expected a list of strings", 'e.g. ["fp16", "w8a8"]')
        return tuple(value)
    expected = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,)}[annotation]
    if (isinstance(value, bool) and annotation != "bool") or not isinstance(value, expected):
        raise _error(where, f"expected {annotation}, got {value!r}", "fix the value in the file")
    return float(value) if annotation == "float" else value


def _one_of(value: str, allowed: tuple[str, ...], where: str) -> None:
    if value not in allowed:
        raise _error(where, f"{value!r} is not one of {', '.join(allowed)}", "fix the value")


def _sourced(item: Any, units: tuple[str, ...], where: str) -> Any:
    if not item.source.strip():
        raise _error(where, "empty source", "every number needs the document it comes from")
    _one_of(item.trust, TRUST_TAGS, f"{where}: trust")
    _one_of(item.unit, units, f"{where}: unit")
    if item.value <= 0:
        raise _error(where, f"value {item.value} must be positive", "omit unknown numbers")
    return item


def _list(build, units: tuple[str, ...] = ()):
    def parse(value: Any, where: str) -> tuple:
        if not isinstance(value, list):
            raise _error(where, "expected an array of tables", "use [[...]] tables")
        return tuple(build(v, f"{where}[{i}]") for i, v in enumerate(value))

    return parse


def _figure(units: tuple[str, ...]):
    return lambda v, w: _sourced(_record(Figure, v, w), units, w)


def _peak(value: Any, where: str) -> Peak:
    peak = _sourced(_record(Peak, value, where), PEAK_UNITS, where)
    _one_of(peak.precision, PEAK_PRECISIONS, f"{where}: precision")
    return peak


def _cache(value: Any, where: str) -> Cache:
    return _sourced(_record(Cache, value, where), SIZE_UNITS, where)


def _compute_unit(value: Any, where: str) -> ComputeUnit:
    unit = _record(ComputeUnit, value, where, {"peaks": _list(_peak)})
    _one_of(unit.kind, UNIT_KINDS, f"{where}: kind")
    if unit.trust:
        _one_of(unit.trust, TRUST_TAGS, f"{where}: trust")
    if not unit.source.strip():
        raise _error(where, "empty source", "say where the description comes from")
    if unit.ops and not unit.ops_source.strip():
        raise _error(where, "ops without ops_source", "name the document that lists the ops")
    return unit


def _memory(value: Any, where: str) -> Memory:
    return _record(
        Memory,
        value,
        where,
        {"bandwidth": _figure(BANDWIDTH_UNITS), "capacity": _list(_figure(SIZE_UNITS))},
    )


def _fallback(value: Any, where: str) -> Fallback:
    fallback = _record(Fallback, value, where)
    if not fallback.source.strip():
        raise _error(where, "empty source", "name the issue or document that reports it")
    return fallback


def _profile(data: dict[str, Any], where: str) -> DeviceProfile:
    from edgec.pipelines import PIPELINES

    profile = _record(
        DeviceProfile,
        data,
        where,
        {
            "compute_units": _list(_compute_unit),
            "memory": _memory,
            "caches": _list(_cache),
            "fallbacks": _list(_fallback),
        },
    )
    _one_of(profile.latency, LATENCY_KINDS, f"{where}: latency")
    _one_of(profile.runtime, RUNTIMES, f"{where}: runtime")
    for runtime in profile.alt_runtimes:
        _one_of(runtime, RUNTIMES, f"{where}: alt_runtimes")
    _one_of(profile.pipeline, tuple(PIPELINES), f"{where}: pipeline")
    if not profile.precisions:
        raise _error(where, "precisions is empty", "list the precisions the target runs natively")
    return profile


def load_profiles(directory: Path | Any) -> dict[str, DeviceProfile]:
    """Every `*.toml` profile in `directory` (a path or an importlib Traversable), host first.

    A malformed file, an unknown key, a name that differs from the file name, or an alias
    claimed twice is a UserError naming the file.
    """
    entries = sorted(
        (e for e in _as_dir(directory).iterdir() if e.name.endswith(".toml")),
        key=lambda e: e.name,
    )
    profiles: dict[str, DeviceProfile] = {}
    for entry in entries:
        where = entry.name
        try:
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise _error(where, f"not valid TOML: {e}", "fix the syntax") from None
        profile = _profile(data, where)
        stem = where.removesuffix(".toml")
        if profile.name != stem:
            raise _error(
                where, f"name {profile.name!r} differs from the file name", f"use {stem!r}"
            )
        profiles[profile.name] = profile
    owner: dict[str, str] = {}
    for profile in profiles.values():
        for alias in profile.aliases:
            if alias in profiles:
                raise _error(
                    f"{profile.name}.toml",
                    f"alias {alias!r} is the name of another profile",
                    "remove the alias",
                )
            if alias in owner:
                raise _error(
                    f"{profile.name}.toml",
                    f"alias {alias!r} is also claimed by {owner[alias]}.toml",
                    "an alias must name exactly one profile; keep it in one file",
                )
            owner[alias] = profile.name
    return dict(sorted(profiles.items(), key=lambda item: (item[0] != "host", item[0])))


def _as_dir(directory: Path | Any) -> Any:
    return Path(directory) if isinstance(directory, str | os.PathLike) else directory


@cache
def all_profiles() -> dict[str, DeviceProfile]:
    """The profiles shipped with edgec (package `edgec.devices`), host first, then by name."""
    return load_profiles(importlib.resources.files("edgec.devices"))


def load_device(name: str) -> DeviceProfile:
    """A profile by name or alias; an unknown name is a UserError listing the known ones."""
    profiles = all_profiles()
    for profile in profiles.values():
        if name == profile.name or name in profile.aliases:
            return profile
    names = sorted([*profiles, *(a for p in profiles.values() for a in p.aliases)])
    close = difflib.get_close_matches(name, names, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UserError(
        f"unknown target {name!r}", f"{hint}`edgec targets` lists them: {', '.join(names)}"
    )


def host_facts() -> dict[str, Any]:
    """The CPU edgec runs on, as far as the OS tells."""
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    known = ("avx2", "avx_vnni", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    isa = [f for f in known if f in flags]
    return {
        "cpu": model,
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "isa": isa,
        "os": platform.platform(terse=True),
    }
