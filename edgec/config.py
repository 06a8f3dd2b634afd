"""The options of one compile, filled from CLI flags or a TOML file (`--config build.toml`)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from edgec.errors import UserError
from edgec.options import make_options

PRECISIONS = ("fp32",)


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    """Everything `edgec compile` needs; every field has a CLI flag of the same name."""

    model: str
    target: str = "host"
    arch: str | None = None
    num_classes: int | None = None
    allow_pickle: bool = False
    precision: str = "fp32"
    out: str | None = None
    pipeline: str | None = None
    passes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    verify: bool = False
    dump_ir: str | None = None
    dynamic_batch: bool = False
    ort_format: bool = False
    verify_images: str | None = None
    verify_count: int = 4
    threads: int | None = None
    latency_runs: int = 100
    measure: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserError(
                f"precision {self.precision!r} is not available yet",
                f"use one of: {', '.join(PRECISIONS)}",
            )
        if self.verify_count < 1 or self.latency_runs < 1:
            raise UserError("--verify-count and --latency-runs must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise UserError("--threads must be at least 1")


def load_config(path: Path, overrides: dict[str, Any]) -> CompileConfig:
    """Read a `[compile]` table from TOML; flags given on the command line win."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
    section = data.get("compile", data)
    values = {**section, **{k: v for k, v in overrides.items() if v is not None}}
    if "model" not in values:
        raise UserError(f"config file {path} names no model", 'add `model = "..."`')
    return make_options(CompileConfig, values, "edgec compile")
