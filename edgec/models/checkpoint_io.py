"""Read a weights file safely: torch.load(weights_only=True) or safetensors; pickle on opt-in.

A pickled whole `nn.Module` (or a checkpoint that stores other Python objects, such as the
training `args`) cannot be read with `weights_only=True`; unpickling it runs code from the
file, so edgec refuses unless the caller passes `allow_pickle=True` (`--allow-pickle`).
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from edgec.errors import ModelLoadError
from edgec.models.file_kind import FileKind, sniff

PICKLE_HINT = (
    "loading a pickled object runs code stored in the file: pass --allow-pickle only if you "
    "trust where the file came from; better, re-save just the weights with "
    "torch.save(model.state_dict(), 'weights.pt') and give --arch"
)
_UNSAFE_MARKERS = ("Unsupported global", "Unsupported class", "not an allowed global")


def problem_for_kind(path: Path, kind: FileKind) -> ModelLoadError | None:
    """The error for a path that is missing, a directory, empty or not a model file."""
    if kind.kind == "missing":
        return ModelLoadError(
            f"model file {path} does not exist",
            "check the path (relative to the current directory)",
        )
    if kind.kind == "directory":
        return ModelLoadError(
            f"{path} is a directory, not a model file",
            "give the model file itself (.pt/.pth/.bin/.safetensors/.pt2/.onnx)",
        )
    if kind.kind == "empty":
        return ModelLoadError(f"model file {path} is empty (0 bytes)", "re-download or re-save it")
    if kind.kind == "unknown" and kind.detail.startswith("damaged"):
        return ModelLoadError(
            f"{path} is a {kind.detail}",
            "the file is truncated or damaged: re-download or re-save it",
        )
    if kind.kind == "unknown":
        detail = f" ({kind.detail})" if kind.detail else ""
        return ModelLoadError(
            f"{path} is not a model file edgec can read{detail}",
            "give a torch.save state_dict (.pt/.pth/.bin), .safetensors, a TorchScript file, "
            "a torch.export .pt2 or an .onnx file; if it should be one of these, it is "
            "damaged (re-download or re-save it)",
        )
    return None


def read_weights(path: Path, allow_pickle: bool = False) -> tuple[Any, list[str]]:
    """Load a `torch.save` / safetensors file; returns the object and notes about how.

    Raises ModelLoadError for missing/empty/corrupt files, for TorchScript / .pt2 / ONNX files
    (they are whole models, not weights), and for pickled objects without `allow_pickle`.
    """
    path = Path(path)
    kind = sniff(path)
    problem = problem_for_kind(path, kind)
    if problem is not None:
        raise problem
    if kind.kind == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path)), ["read with safetensors"]
    if kind.kind not in ("torch_save", "torch_legacy"):
        raise ModelLoadError(
            f"{path} is a {kind.kind.replace('_', ' ')} file, a whole model rather than weights",
            "give it as the MODEL argument without --arch (it carries its own architecture)",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True), [
            "read with torch.load(weights_only=True)"
        ]
    except pickle.UnpicklingError as exc:
        unsafe = _unsafe_global(str(exc))
        if unsafe is None:
            raise _corrupt(path, exc) from exc
        if not allow_pickle:
            raise ModelLoadError(
                f"{path} holds pickled Python objects, not only tensors ({unsafe}): "
                "it is a pickled nn.Module or a checkpoint with other objects in it",
                PICKLE_HINT,
            ) from None
    except (RuntimeError, EOFError, ValueError, KeyError, OSError) as exc:
        raise _corrupt(path, exc) from exc
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise ModelLoadError(
            f"unpickling {path} failed: {type(exc).__name__}: {exc}",
            "the file needs Python classes that are not importable here (install the code "
            "that defined the model), or save a state_dict instead",
        ) from exc
    return obj, ["read with torch.load(weights_only=False) because --allow-pickle was given"]


def _unsafe_global(message: str) -> str | None:
    if not any(marker in message for marker in _UNSAFE_MARKERS):
        return None
    match = re.search(r"(?:GLOBAL|global|class)\s+([\w.]+)", message)
    return f"needs {match.group(1)}" if match else "needs non-tensor Python objects"


def _corrupt(path: Path, exc: BaseException) -> ModelLoadError:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelLoadError(
        f"{path} looks like a torch.save file but cannot be read: {first[:200]}",
        "the file is truncated or damaged: re-download or re-save it",
    )
