"""Which TensorRT is importable here, imported lazily: full TensorRT, TensorRT-RTX, or none.

    sdk = find_sdk()        # Sdk | None
    sdk.flavour             # "tensorrt" (builds engines for the target) | "tensorrt_rtx" (gate)

Full TensorRT (`import tensorrt`) builds the engine a Jetson or data-centre GPU runs, but only
where a GPU is present; its PyPI packages are placeholders that download from NVIDIA's own
index, so it is rarely installable off-device. TensorRT-RTX (`pip install tensorrt-rtx-cu13`,
the `tensorrt` extra) has TensorRT's ONNX parser and an ahead-of-time builder that run without
a GPU; its engines are for RTX GPUs (compiled further at load), so edgec uses it only as a
gate: the graph it hands to TensorRT parses and builds.
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

NAME = "tensorrt"
INSTALL_HINT = "pip install 'edgec[tensorrt]' (TensorRT-RTX, a parse-and-build gate without a GPU)"


@dataclasses.dataclass(frozen=True)
class Sdk:
    """An importable TensorRT Python module and what it can do here."""

    module: ModuleType
    flavour: str  # "tensorrt" or "tensorrt_rtx"
    version: str

    @property
    def builds_target_engines(self) -> bool:
        """True for full TensorRT: its engine is the artifact the target loads."""
        return self.flavour == "tensorrt"

    def describe(self) -> str:
        what = "engine builder" if self.builds_target_engines else "parse-and-build gate"
        return f"{self.flavour} {self.version} ({what})"


def find_sdk() -> Sdk | None:
    """Full TensorRT when it imports and can create a builder (needs a GPU), else TensorRT-RTX,
    else None."""
    full = _import("tensorrt")
    if full is not None and _can_build(full):
        return Sdk(full, "tensorrt", full.__version__)
    rtx = _import("tensorrt_rtx")
    if rtx is not None:
        return Sdk(rtx, "tensorrt_rtx", rtx.__version__)
    return None


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _can_build(trt: ModuleType) -> bool:
    """Full TensorRT creates a Builder only where CUDA finds a GPU."""
    try:
        return trt.Builder(trt.Logger(trt.Logger.ERROR)) is not None
    except (RuntimeError, TypeError, AttributeError):
        return False
