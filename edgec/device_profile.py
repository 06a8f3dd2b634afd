"""Device profiles: TOML data shipped in `edgec.devices`, loaded into frozen dataclasses."""

from __future__ import annotations

import dataclasses
import difflib
import importlib.resources
import os
import platform
import tomllib
from functools import cache
from typing import Any

from edgec.errors import UserError


@dataclasses.dataclass(frozen=True)
class DeviceProfile:
    """What a target is, which runtime and precisions it wants, and how latency is obtained."""

    name: str
    description: str
    runtime: str
    precisions: tuple[str, ...]
    pipeline: str
    latency: str  # "measured" here, or "estimated" by the cost model
    threads: int = 1
    aliases: tuple[str, ...] = ()
    compute_units: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        if self.name == "host":
            data["detected"] = host_facts()
        return data


@cache
def all_profiles() -> dict[str, DeviceProfile]:
    profiles = {}
    for entry in sorted(importlib.resources.files("edgec.devices").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            data["precisions"] = tuple(data.get("precisions", ()))
            data["aliases"] = tuple(data.get("aliases", ()))
            data["compute_units"] = tuple(data.get("compute_units", ()))
            profiles[data["name"]] = DeviceProfile(**data)
    return profiles


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
    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]
    return {
        "cpu": model,
        "machine": platform.machine(),
        "logical_cpus": os.cpu_count(),
        "isa": isa,
        "os": platform.platform(terse=True),
    }
