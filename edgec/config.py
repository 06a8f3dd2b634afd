"""The options of one compile, filled from CLI flags or a TOML file (`--config build.toml`)."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from edgec.errors import UserError
from edgec.options import make_options

PRECISIONS = ("fp32", "fp16", "w8a8", "w4a8", "int-only")
QUANTIZED = ("w8a8", "w4a8")  # quant:: passes (docs/quantization.md)
CALIBRATED = (*QUANTIZED, "int-only")  # need calibration data (int-only: docs/integer.md)


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    """Everything `edgec compile` needs; every field has a CLI flag of the same name."""

    model: str
    target: str = "host"
    runtime: str | None = None  # None: the target's (edgec.runtime_choice)
    arch: str | None = None
    num_classes: int | None = None
    allow_pickle: bool = False
    precision: str | None = None  # None: the target's default (`default_precision`)
    input_size: tuple[int, ...] | None = None
    preprocessing: str | dict[str, Any] | None = None  # JSON file or TOML table of overrides
    out: str | None = None
    pipeline: str | None = None
    passes: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    verify: bool = False
    explain: tuple[str, ...] = ()
    dump_ir: str | None = None
    dynamic_batch: bool = False
    ort_format: bool = False
    min_ios: str | None = None  # Core ML deployment target (ios17, ios18)
    verify_images: str | None = None
    verify_count: int = 4
    threads: int | None = None
    latency_runs: int = 100
    measure: bool = True
    calib: str | None = None
    calib_count: int = 128
    accuracy_budget: float | None = None

    def __post_init__(self) -> None:
        if self.precision is not None and self.precision not in PRECISIONS:
            raise UserError(
                f"precision {self.precision!r} is not available yet",
                f"use one of: {', '.join(PRECISIONS)}",
            )
        if self.precision in CALIBRATED and not self.calib:
            raise UserError(
                f"--precision {self.precision} quantizes activations statically and needs "
                "calibration data",
                "add --calib PATH: a folder of images, an .npz of uint8 images, or an "
                ".npz/.npy of model-ready float32 tensors (about 128 training-like samples)",
            )
        if self.calib_count < 1:
            raise UserError("--calib-count must be at least 1")
        if self.accuracy_budget is not None and (
            self.precision not in QUANTIZED or not 0 <= self.accuracy_budget <= 100
        ):
            raise UserError(
                "--accuracy-budget takes percentage points (0–100) and applies to w8a8/w4a8",
                "e.g. --precision w4a8 --calib DATA --accuracy-budget 1",
            )
        if self.verify_count < 1 or self.latency_runs < 1:
            raise UserError("--verify-count and --latency-runs must be at least 1")
        if self.threads is not None and self.threads < 1:
            raise UserError("--threads must be at least 1")


def default_precision(target_precisions: tuple[str, ...]) -> str:
    """The first precision a target prefers that edgec emits without calibration data.

    An iPhone gets fp16, a Jetson fp16, the host fp32; a target that prefers w8a8 (e.g. an
    NPU) gets its first float precision, because quantizing needs `--calib`.
    """
    for precision in target_precisions:
        if precision in PRECISIONS and precision not in CALIBRATED:
            return precision
    return "fp32"


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
