"""What the official-comparison scripts share: arguments, official imports, weights, diffs.

Each script (`segformer3d.py`, `segmenter.py`, `efficienttam.py`) builds the official model
from the official code and configs, fills it with seeded non-trivial weights
(`seeded_state_dict`), loads the SAME state_dict strictly into `edgec.models.create(...)`, runs
both call by call and records max |Δ| per call (`Comparison`). The official code is imported
from a checkout given on the command line; nothing of it is copied into edgec.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS = REPO_ROOT / "bench" / "results"
# Relative tolerance: max |Δ| ≤ RTOL · max(1, max |official|) passes.
RTOL = 1e-4


def parser(description: str, family: str) -> argparse.ArgumentParser:
    """Arguments every script takes: the official checkout, the JSON path, the tolerance."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--official-repo",
        type=Path,
        required=True,
        help="working tree of the official repository (e.g. from `git archive HEAD | tar -x`)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=RESULTS / f"official_compare_{family}.json",
        help="where to write the JSON of results",
    )
    p.add_argument("--rtol", type=float, default=RTOL, help="max |Δ| / max(1, max |ref|) allowed")
    p.add_argument("--seed", type=int, default=0, help="seed of weights and inputs")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    return p


def require(path: Path, inside: str) -> Path:
    """`path` resolved, after checking it holds `inside` (the official package or file)."""
    path = path.expanduser().resolve()
    if not (path / inside).exists():
        sys.exit(f"error: {path} has no {inside}: give the official repository's working tree")
    return path


@contextlib.contextmanager
def on_path(path: Path) -> Iterator[None]:
    """Put `path` first on sys.path while importing the official code."""
    sys.path.insert(0, str(path))
    try:
        yield
    finally:
        sys.path.remove(str(path))


def git_commit(path: Path) -> str | None:
    """The commit of the checkout, when it is a git work tree (archives have none)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def seeded_state_dict(reference: Mapping[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Seeded non-trivial tensors with the keys, shapes and dtypes of `reference`.

    Every float tensor gets random values of a magnitude that keeps activations O(1) and makes
    each part matter: matrices/kernels N(0, 1/fan_in); norm scales 1 + 0.2·N; BatchNorm
    variances in [0.5, 1.5); layer scales (`gamma`, init 1e-6 officially) 0.5 + 0.2·N, so the
    residual branches they gate count; every other vector or embedding 0.5·N (so position
    embeddings, tokens and biases are as large as the features). Integer buffers keep their
    values.
    """
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, ref in reference.items():
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        shape = ref.shape
        name = key.rsplit(".", 1)[-1]
        if key.endswith("running_var"):
            value = torch.rand(shape, generator=g) + 0.5
        elif name == "gamma":
            value = 0.5 + 0.2 * torch.randn(shape, generator=g)
        elif name == "weight" and ref.ndim == 1:
            value = 1 + 0.2 * torch.randn(shape, generator=g)
        elif name == "weight" and ref.ndim >= 2:
            value = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        else:
            value = 0.5 * torch.randn(shape, generator=g)
        out[key] = value.to(ref.dtype)
    return out


def leaves(name: str, value) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor in a nested tuple/list/dict output."""
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from leaves(f"{name}.{k}", v)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from leaves(f"{name}[{i}]", v)


class Comparison:
    """Records official-vs-edgec differences call by call; prints and writes them."""

    def __init__(self, family: str, rtol: float):
        self.family = family
        self.rtol = rtol
        self.rows: list[dict] = []
        self.notes: list[str] = []
        self.sources: dict[str, dict] = {}

    def source(self, label: str, path: Path, **facts) -> None:
        self.sources[label] = {"path": str(path), "commit": git_commit(path), **facts}

    def note(self, text: str) -> None:
        print(f"note: {text}")
        self.notes.append(text)

    def compare(self, call: str, official, ours, expect_equal: bool = True) -> None:
        """One row per output tensor of `call` (same nesting on both sides required).

        `expect_equal=False` is a control: a call known to differ (e.g. the other attention
        scaling), which passes only if the difference is above the tolerance — it shows the
        comparison can see a real difference.
        """
        ref, got = list(leaves(call, official)), list(leaves(call, ours))
        if [n for n, _ in ref] != [n for n, _ in got]:
            self._add(call, None, None, f"outputs differ: {len(ref)} vs {len(got)} tensors")
            return
        for (name, a), (_, b) in zip(ref, got, strict=True):
            if a.shape != b.shape:
                self._add(name, a, None, f"shape {tuple(a.shape)} vs {tuple(b.shape)}")
                continue
            self._add(name, a, b, None, expect_equal)

    def _add(self, name: str, a, b, error: str | None, expect_equal: bool = True) -> None:
        row: dict = {"call": name}
        if error is None:
            a64, b64 = a.detach().double(), b.detach().double()
            ref_max = float(a64.abs().max()) if a64.numel() else 0.0
            diff = float((a64 - b64).abs().max()) if a64.numel() else 0.0
            within = diff <= self.rtol * max(1.0, ref_max)
            row |= {
                "shape": list(a.shape),
                "max_abs_diff": diff,
                "max_abs_official": ref_max,
                "ok": within if expect_equal else not within,
            }
            if not expect_equal:
                row["control"] = "expected to differ"
            kind = "" if expect_equal else "  [control: must differ]"
            print(
                f"{name:<58} {list(a.shape)!s:<22} max|Δ| {diff:.3e}  (max|ref| {ref_max:.3g})"
                + kind
            )
        else:
            row |= {"error": error, "ok": False}
            print(f"{name:<58} MISMATCH: {error}")
        self.rows.append(row)

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r["ok"] for r in self.rows)

    def write(self, path: Path, started: float, settings: dict) -> int:
        """Write the JSON, print the verdict; the process exit code (0 iff every call agrees)."""
        failed = [r["call"] for r in self.rows if not r["ok"]]
        result = {
            "family": self.family,
            "date": datetime.date.today().isoformat(),
            "host": {"python": platform.python_version(), "torch": torch.__version__},
            "official": self.sources,
            "settings": settings,
            "tolerance": f"max|Δ| ≤ {self.rtol:g}·max(1, max|official|)",
            "calls": self.rows,
            "worst_abs_diff": max(
                (r.get("max_abs_diff", math.inf) for r in self.rows if "control" not in r),
                default=0,
            ),
            "failed": failed,
            "notes": self.notes,
            "seconds": round(time.perf_counter() - started, 1),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        verdict = "all calls agree" if not failed else f"{len(failed)} call(s) differ"
        print(f"{self.family}: {len(self.rows)} outputs compared, {verdict}; wrote {path}")
        return 0 if not failed else 1
