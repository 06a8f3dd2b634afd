"""Shared helpers for the speed pass tests (fixture `helpers`).

Same conventions as the cleanup tests: ONNX text in, one pass run, idempotence, and ONNX
Runtime on CPU with graph optimizations disabled, bound |after − before| ≤ 5e-5·max(1, |before|).
"""

from __future__ import annotations

import types

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime as ort
import pytest

import edgec.passes
import edgec.passes.speed  # noqa: F401  (registers the speed passes)
from edgec.pass_manager import create_pass

BOUND = 5e-5


def parse(text: str) -> ir.Model:
    return ir.from_onnx_text(text)


def literal(array: np.ndarray) -> str:
    return "{" + ", ".join(repr(v) for v in np.asarray(array).reshape(-1).tolist()) + "}"


def clone(model: ir.Model) -> ir.Model:
    return ir.serde.deserialize_model(ir.serde.serialize_model(model))


def op_types(model: ir.Model) -> list[str]:
    return [node.op_type for node in model.graph]


def fingerprint(model: ir.Model) -> bytes:
    return ir.serde.serialize_model(model).SerializeToString(deterministic=True)


def run_pass(pass_id: str, model: ir.Model, **options):
    p = create_pass(pass_id, options)
    result = p(model)
    assert result.model is model
    return result, p


def infer_shapes(model: ir.Model) -> ir.Model:
    create_pass("cleanup::infer_shapes")(model)
    return model


def run_ort(model: ir.Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(
        ir.to_proto(model).SerializeToString(), so, providers=["CPUExecutionProvider"]
    )
    return sess.run(None, feeds)


def random_feeds(model: ir.Model, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        v.name: rng.standard_normal([int(d) for d in v.shape]).astype(np.float32)
        for v in model.graph.inputs
    }


def assert_same_outputs(before: ir.Model, after: ir.Model) -> None:
    onnx.checker.check_model(ir.to_proto(after), full_check=True)
    feeds = random_feeds(before)
    expected, got = run_ort(before, feeds), run_ort(after, feeds)
    assert len(expected) == len(got)
    for ref, out in zip(expected, got, strict=True):
        assert ref.shape == out.shape and ref.dtype == out.dtype
        excess = np.abs(out.astype(np.float64) - ref) - BOUND * np.maximum(1.0, np.abs(ref))
        assert excess.max(initial=-1.0) <= 0, f"max |Δ| {np.abs(out - ref).max()}"


def assert_idempotent(pass_id: str, model: ir.Model) -> None:
    before = fingerprint(model)
    result, p = run_pass(pass_id, model)
    assert not result.modified
    assert not any(p.stats.values()), dict(p.stats)
    assert fingerprint(model) == before


@pytest.fixture
def helpers() -> types.SimpleNamespace:
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
