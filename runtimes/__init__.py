"""Runtime backends: one module per runtime, each with the same contract.

A backend module has `NAME`, `PRECISIONS`, `available() -> (ok, why)`, `check(model)`,
`ensure_supported(model, device)` and `emit(model, out_dir, *, name, precision, device, **opts)
-> Artifact`; backends that can run here also have `load`, `profile_ops` and
`session_options_used` (see `ort.py`, the reference backend). A backend that builds only for
fixed input shapes says `DYNAMIC_SHAPES = False` (Core ML): multi-graph compiles then export
each graph at its example size (`edgec.compile_graphs`, which also passes `emit` the graph's
`example_inputs` and `split_heads` when its signature names them).

`backend_for(runtime)` imports the module for a device profile's `runtime` name.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from edgec.errors import UserError

# Device-profile runtime name → module under edgec.runtimes. Runtimes a profile may name but
# that edgec cannot emit yet are absent here, and compiling for them is a clear error.
BACKENDS = {"onnxruntime": "ort", "tensorrt": "tensorrt", "coreml": "coreml"}


def backend_for(
    runtime: str, device_name: str = "", alternatives: tuple[str, ...] = ()
) -> ModuleType:
    """The backend module for `runtime`, checked usable here; a `UserError` if it is not (its
    hint names the `alternatives` — the device's other runtimes — that edgec emits)."""
    if runtime not in BACKENDS:
        target = f"target {device_name} wants runtime {runtime}" if device_name else runtime
        emitted = [r for r in alternatives if r in BACKENDS]
        hint = (
            f"the device also runs {', '.join(emitted)}: add --runtime {emitted[0]}"
            if emitted
            else f"runtimes edgec emits: {', '.join(sorted(BACKENDS))}; use --target host"
        )
        raise UserError(f"{target}, which edgec cannot emit yet", hint)
    backend = importlib.import_module(f"edgec.runtimes.{BACKENDS[runtime]}")
    ok, reason = backend.available()
    if not ok:
        raise UserError(f"{backend.NAME} is not usable here: {reason}")
    return backend
