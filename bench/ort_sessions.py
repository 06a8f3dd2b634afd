"""ONNX Runtime sessions for interleaved timing, opened so that none of them is favoured.

On the project's shared 2-core AMD host (ORT 1.32, 1 thread, EfficientViT-M0), the session
opened last in a process ran 3–6 % faster than sessions of the very same file opened before
it (A/A tests: three sessions of one file timed interleaved, thread CPU time, the last one
0.966× and 0.967× of the first in two runs). Opening one more session after them, never
timed and kept open while they run, removed the difference (0.99–1.01× in two runs). Benches
that open one session per variant in a fixed order otherwise favour the variant opened last
(bench/ort_fp32.py opened edgec's artifact last). `open_sessions` opens that spare session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from edgec.runtimes import ort


@contextlib.contextmanager
def open_sessions(files: dict[str, Path], threads: int) -> Iterator[dict[str, ort.OrtRunner]]:
    """Tag → ORT session of each file, plus an untimed spare session opened after them."""
    sessions = {tag: ort.load(path, threads=threads) for tag, path in files.items()}
    spare = ort.load(next(iter(files.values())), threads=threads)
    try:
        yield sessions
    finally:
        for session in [*sessions.values(), spare]:
            session.close()
