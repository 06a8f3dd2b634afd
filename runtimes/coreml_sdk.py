"""What every `coreml_*` module shares: the runtime's name, deployment targets, the lazy import.

coremltools is imported on first use (`import_ct()`), never when a module is imported, so
`import edgec.runtimes.coreml` costs nothing where coremltools is absent or unused (importing
it takes seconds: it imports torch when torch is installed). Its import-time chatter (the
"untested torch version" warning, "Failed to load _MLModelProxy" on Linux, where the Core ML
framework does not exist) and its conversion progress bars are silenced (`quiet()`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

NAME = "coreml"
# edgec's --min-ios word → coremltools' deployment target name. iOS17 is the first with int8
# activation quantize/dequantize in MIL; iOS18 the first with int4 and per-block weights.
MIN_IOS = {"ios17": "iOS17", "ios18": "iOS18"}
DEFAULT_MIN_IOS = "ios17"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow coremltools' warnings, log lines and tqdm progress bars (stderr) for a while."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def import_ct():
    """The `coremltools` module, imported (quietly) on first use."""
    with quiet(), contextlib.redirect_stdout(io.StringIO()):
        import coremltools

    return coremltools


def deployment_target(min_ios: str):
    """coremltools' `ct.target.*` for an edgec `--min-ios` word (`ios17`, `ios18`)."""
    from edgec.errors import UserError

    key = min_ios.lower().replace(" ", "")
    if key not in MIN_IOS:
        raise UserError(
            f"unknown --min-ios {min_ios!r}", f"choose one of: {', '.join(sorted(MIN_IOS))}"
        )
    return getattr(import_ct().target, MIN_IOS[key])
