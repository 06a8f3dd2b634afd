"""Shared helpers for every pass test (fixture `helpers`): parse ONNX text, run a pass,
check idempotence, compare before/after in ONNX Runtime.

Numerical comparisons run ONNX Runtime on CPU with graph optimizations disabled (so ORT's own
fusions cannot hide a wrong rewrite), seeded random inputs, and the float-pass bound of
ARCHITECTURE.md: |after − before| ≤ 5e-5·max(1, |before|) element by element.
"""

from __future__ import annotations

import types

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

import edgec.passes  # noqa: F401  (registers the passes)
from edgec.pass_manager import create_pass

BOUND = 5e-5


def parse(text: str) -> ir.Model:
    return ir.from_onnx_text(text)


def literal(array: np.ndarray) -> str:
    """An ONNX-text tensor literal body, e.g. `{1.5, -2}` (exact for float32)."""
    return "{" + ", ".join(repr(v) for v in np.asarray(array).reshape(-1).tolist()) + "}"


def clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def op_types(model: ir.Model) -> list[str]:
    return [node.op_type for node in model.graph]


def fingerprint(model: ir.Model) -> bytes:
    return ir.serde.serialize_model(model).SerializeToString(deterministic=True)


def run_pass(pass_id: str, model: ir.Model, **options):
    """Run a fresh instance of `pass_id` on `model` in place; returns (result, pass)."""
    p = create_pass(pass_id, options)
    result = p(model)
    assert result.model is model
    return result, p


def infer_shapes(model: ir.Model) -> ir.Model:
    """Annotate `model` with inferred shapes (what the passes after infer_shapes see)."""
    create_pass("cleanup::infer_shapes")(model)
    return model


def _session(model: ir.Model) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    return ort.InferenceSession(
        ir.to_proto(model).SerializeToString(), so, providers=["CPUExecutionProvider"]
    )


def run_ort(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run `model` in ONNX Runtime (CPU, graph optimizations disabled)."""
    return _session(model).run(None, feeds)


def random_feeds(model: ir.Model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for value in model.graph.inputs:
        if value.is_initializer():
            continue
        shape = [d if isinstance(d, int) else 2 for d in (value.shape or [])]
        dtype = value.dtype.numpy()
        if np.issubdtype(dtype, np.floating):
            feeds[value.name] = rng.standard_normal(shape).astype(dtype)
        else:
            feeds[value.name] = rng.integers(0, 2, shape).astype(dtype)
    return feeds


def assert_same_outputs(
    before: ir.Model, after: ir.Model, feeds: dict[str, np.ndarray] | None = None
) -> None:
    """Check `after` and run both in ORT; every output within the float-pass bound."""
    onnx.checker.check_model(ir.to_proto(after), full_check=True)
    feeds = feeds if feeds is not None else random_feeds(before)
    expected = run_ort(before, feeds)
    got = run_ort(after, feeds)
    assert len(expected) == len(got)
    for ref, out in zip(expected, got, strict=True):
        assert ref.shape == out.shape and ref.dtype == out.dtype
        excess = np.abs(out.astype(np.float64) - ref) - BOUND * np.maximum(1.0, np.abs(ref))
        assert excess.max(initial=-1.0) <= 0, f"max |Δ| {np.abs(out - ref).max()}"


def assert_idempotent(pass_id: str, model: ir.Model, **options) -> None:
    """A second run reports modified=False, counts nothing but what it kept, and leaves the
    graph as it was."""
    before = fingerprint(model)
    result, p = run_pass(pass_id, model, **options)
    assert not result.modified
    # only counts of what the pass looked at and left alone (`kept`, `kept_single_head`…)
    assert all(key.startswith("kept") for key, n in p.stats.items() if n), dict(p.stats)
    assert fingerprint(model) == before


@pytest.fixture
def helpers() -> types.SimpleNamespace:
    """The helpers above, for the tests of this folder (`helpers.parse(...)`, …)."""
    return types.SimpleNamespace(
        parse=parse,
        literal=literal,
        clone=clone,
        op_types=op_types,
        fingerprint=fingerprint,
        run_pass=run_pass,
        infer_shapes=infer_shapes,
        run_ort=run_ort,
        random_feeds=random_feeds,
        assert_same_outputs=assert_same_outputs,
        assert_idempotent=assert_idempotent,
    )
