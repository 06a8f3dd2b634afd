"""Tell model files apart by their content (zip members, magic bytes), not by their suffix.

Kinds: `torch_save` (a `torch.save` zip: state_dict or pickled objects), `torch_legacy`
(pre-1.6 `torch.save`, a bare pickle stream), `torchscript` (zip with `constants.pkl` and
`code/`), `torch_export` (a `torch.export.save` `.pt2` zip), `safetensors`, `onnx`, and the
problems `missing`, `directory`, `empty`, `unknown`.
"""

from __future__ import annotations

import dataclasses
import json
import struct
import zipfile
from pathlib import Path

ZIP_MAGIC = b"PK\x03\x04"
PICKLE_PROTO = 0x80  # pickle protocol ≥ 2 opcode, the first byte of a legacy torch.save file
ONNX_SUFFIXES = {".onnx"}


@dataclasses.dataclass(frozen=True)
class FileKind:
    """What a file holds: `kind` plus the zip members (if a zip) that decided it."""

    kind: str
    members: tuple[str, ...] = ()
    detail: str = ""


def sniff(path: Path) -> FileKind:
    """Classify `path` by content; the `.onnx` suffix only helps with ONNX (no magic bytes)."""
    path = Path(path)
    if not path.exists():
        return FileKind("missing")
    if path.is_dir():
        return FileKind("directory")
    size = path.stat().st_size
    if size == 0:
        return FileKind("empty")
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(ZIP_MAGIC):
        return _sniff_zip(path)
    if head[0] == PICKLE_PROTO:
        return FileKind("torch_legacy")
    if _is_safetensors(path, head, size):
        return FileKind("safetensors")
    if path.suffix.lower() in ONNX_SUFFIXES or head[0] == 0x08:  # ModelProto field 1 (ir_version)
        return FileKind("onnx")
    return FileKind("unknown", detail=f"starts with bytes {head[:8].hex(' ')}")


def _sniff_zip(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as z:
            names = tuple(z.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        return FileKind("unknown", detail=f"damaged zip archive ({exc})")
    tails = {n.split("/", 1)[1] if "/" in n else n for n in names}
    if (
        any(t.startswith("models/") and t.endswith(".json") for t in tails)
        or "archive_format" in tails
    ):
        return FileKind("torch_export", names)
    if "constants.pkl" in tails or any(t.startswith("code/") for t in tails):
        return FileKind("torchscript", names)
    if "data.pkl" in tails:
        return FileKind("torch_save", names)
    return FileKind("unknown", names, detail="a zip archive that is no PyTorch format")


def _is_safetensors(path: Path, head: bytes, size: int) -> bool:
    if len(head) < 10:
        return False
    (header_len,) = struct.unpack("<Q", head[:8])
    if head[8:9] != b"{" or header_len > size - 8:
        return False
    with path.open("rb") as f:
        f.seek(8)
        try:
            json.loads(f.read(header_len))
        except (ValueError, UnicodeDecodeError):
            return False
    return True
