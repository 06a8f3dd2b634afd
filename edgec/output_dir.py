"""The output directory of a compile: its default name, atomic creation, final files."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgec.artifact import file_entries
from edgec.errors import UserError
from edgec.json_text import json_text


def slug(name: str) -> str:
    """A file-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "model"


def default_out_dir(model: str, target: str) -> Path:
    """`out/<model>.<target>`, the model being a name or a file's stem."""
    return Path("out") / f"{slug(Path(model).stem if Path(model).suffix else model)}.{target}"


@contextlib.contextmanager
def staging(out_dir: Path) -> Iterator[Path]:
    """A hidden folder beside `out_dir`, renamed to it on success and removed on failure."""
    parent = out_dir.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=parent))
    except OSError as exc:
        raise UserError(
            f"cannot write the output directory {out_dir}: {exc.strerror or exc}",
            "choose a writable place with --out DIR",
        ) from None
    try:
        yield stage
        if out_dir.exists():
            old = parent / f".{out_dir.name}.old-{os.getpid()}"
            out_dir.rename(old)
            stage.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            stage.rename(out_dir)
        out_dir.chmod(0o755)  # mkdtemp made the staging folder private
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)


def write_manifest_and_report(stage: Path, manifest: dict[str, Any]) -> None:
    """report.json and charts, report.md, then manifest.json listing every other file with
    its size and sha256."""
    from edgec.report import render_report
    from edgec.report_data import write_report_files

    write_report_files(stage, manifest)
    (stage / "report.md").write_text(render_report(manifest), encoding="utf-8")
    manifest["files"] = file_entries(stage)
    text = json_text(manifest, indent=2)
    (stage / "manifest.json").write_text(text + "\n", encoding="utf-8")
