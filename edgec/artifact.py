"""What a runtime's `emit` returns, and file hashing shared by manifests and inputs."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Artifact:
    """A file (or package) a runtime can load, with what precision it really holds."""

    path: Path
    runtime: str
    precision: str
    extra_files: list[Path] = dataclasses.field(default_factory=list)
    details: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def files(self) -> list[Path]:
        return [self.path, *self.extra_files]

    def record(self) -> dict[str, Any]:
        """The manifest's `artifact` entry: runtime, file name and the backend's details."""
        return {"runtime": self.runtime, "path": self.path.name, **self.details}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entries(root: Path) -> list[dict[str, Any]]:
    """Every file under `root` (sorted, relative paths) with its size and sha256."""
    entries = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        entries.append(
            {
                "path": path.relative_to(root).as_posix(),
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
            }
        )
    return entries
