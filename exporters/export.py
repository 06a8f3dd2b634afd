"""torch → ONNX: export a loaded model to an `onnx_ir.Model` with named I/O and metadata.

Exporter choice (see docs/exporter.md): `torch.onnx.export(..., dynamo=True)` at opset 18.
It gives ~3× smaller graphs than the TorchScript exporter on these families (no Shape/
Constant plumbing), maps nodes back to modules, and is the exporter PyTorch maintains. It
cannot emit opset 17, so edgec asks for 18 and checks what it got. TorchScript files
(`torch.jit.load`) cannot go through dynamo; they use the TorchScript exporter at the same
opset.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import onnx_ir as ir
import torch

from edgec.errors import UserError

OPSET = 18
INPUT_NAME = "input"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's progress prints and warnings (edgec reports its own progress)."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
        ):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def output_names(count: int) -> list[str]:
    return ["output"] if count == 1 else [f"output_{i}" for i in range(count)]


def torch_outputs(module: torch.nn.Module, batch: np.ndarray) -> list[np.ndarray]:
    """Run the PyTorch reference in fp32 on `batch`; returns every output as numpy."""
    with torch.inference_mode():
        result = module(torch.from_numpy(batch))
    flat = result if isinstance(result, (tuple, list)) else [result]
    if isinstance(result, dict):
        flat = list(result.values())
    return [t.detach().float().numpy() for t in flat]


def export_onnx(
    module: torch.nn.Module,
    input_shape: tuple[int, int, int],
    *,
    dynamic_batch: bool = False,
    metadata: dict[str, str] | None = None,
) -> ir.Model:
    """Export `module` for N×C×H×W float32 input; returns an onnx_ir model with metadata."""
    # A batch of 2 when the batch is dynamic: torch.export specialises a dimension of size 1.
    example = torch.zeros((2 if dynamic_batch else 1, *input_shape), dtype=torch.float32)
    count = len(torch_outputs(module, example.numpy()))
    names = output_names(count)
    scripted = isinstance(module, torch.jit.ScriptModule)
    kwargs: dict[str, Any] = {
        "input_names": [INPUT_NAME],
        "output_names": names,
        "opset_version": OPSET,
        "dynamo": not scripted,
    }
    if dynamic_batch:
        if scripted:
            kwargs["dynamic_axes"] = {INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}}
        else:
            kwargs["dynamic_shapes"] = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    try:
        with _quiet(), torch.inference_mode(False):
            if scripted:
                buffer = io.BytesIO()
                torch.onnx.export(module, (example,), buffer, **kwargs)
                model = ir.from_proto(_load_proto(buffer.getvalue()))
            else:
                model = torch.onnx.export(module, (example,), **kwargs).model
    except Exception as exc:  # the exporter's own message is the most useful thing to show
        own = _user_error_in(exc)
        if own is not None:  # the model rejected its input (e.g. a size it cannot take)
            raise own from exc
        raise UserError(
            f"torch.onnx.export failed for this model: {type(exc).__name__}: {_first_line(exc)}",
            "export it yourself to .onnx and give that file to edgec, or report the model",
        ) from exc
    got = model.opset_imports.get("", None)
    if got != OPSET:
        raise UserError(f"exporter produced opset {got}, edgec asked for {OPSET}")
    model.producer_name, model.producer_version = "edgec", _edgec_version()
    for key, value in sorted((metadata or {}).items()):
        model.metadata_props[key] = value
    return model


def _load_proto(data: bytes):
    import onnx

    return onnx.load_from_string(data)


def _user_error_in(exc: BaseException) -> UserError | None:
    """A `UserError` the model raised while the exporter traced it, however deeply wrapped."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, UserError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _edgec_version() -> str:
    from edgec import __version__

    return __version__
