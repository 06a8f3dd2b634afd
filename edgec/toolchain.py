"""Versions of everything that shaped an artifact, for the manifest."""

from __future__ import annotations

import importlib.metadata
import platform

PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "onnx-ir", "onnxscript", "numpy")


def toolchain_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
