"""Progress lines on stderr for steps that take seconds (silent under --json or in tests)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator


class Progress:
    """Prints `[step] name … done in 1.2 s` to stderr; records step times into a dict."""

    def __init__(self, enabled: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stderr

    @contextlib.contextmanager
    def step(self, title: str, timings: dict[str, float], key: str) -> Iterator[None]:
        self._print(f"• {title} …")
        start = time.perf_counter()
        yield
        timings[key] = time.perf_counter() - start
        self._print(f"  done in {timings[key]:.1f} s")

    def detail(self, text: str) -> None:
        self._print(f"    {text}")

    def _print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)
