"""Comparison, selection and index ops (EfficientTAM's decoder and memory encoder) through
Core ML: an int64 label input becomes an Int32 array, and the saved package — evaluated by
edgec's MIL evaluator on the graph's own example inputs — matches ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from support.onnx_build import model, value_info

pytest.importorskip("coremltools", reason="coremltools is not installed")

from edgec.runtimes import coreml


def _node(op, inputs, outputs, **attrs):
    return helper.make_node(op, inputs, outputs, name=f"{op}_{outputs[0]}", **attrs)


def _prompt_like():
    """Point embedding picked by label (Equal → Where), a binarised mask (Greater → Cast),
    the best row by ArgMax → GatherND, and a sine/cosine encoding."""
    nodes = [
        _node("Sin", ["x"], ["s"]),
        _node("Cos", ["x"], ["c"]),
        _node("Concat", ["s", "c"], ["sc"], axis=-1),
        _node("Unsqueeze", ["labels", "last"], ["lab"]),
        _node("Equal", ["lab", "one"], ["is_one"]),
        _node("Where", ["is_one", "sc", "fill"], ["w"]),
        _node("Greater", ["w", "zero_f"], ["pos"]),
        _node("Cast", ["pos"], ["mask"], to=TensorProto.FLOAT),
        _node("ReduceSum", ["w", "last"], ["score"], keepdims=0),
        _node("ArgMax", ["score"], ["best"], axis=1, keepdims=1),
        _node("Concat", ["batch0", "best"], ["index"], axis=-1),
        _node("GatherND", ["w", "index"], ["picked"]),
    ]
    inits = [
        numpy_helper.from_array(np.asarray([-1], np.int64), "last"),
        numpy_helper.from_array(np.asarray(1, np.int64), "one"),
        numpy_helper.from_array(np.full((1, 4, 8), -0.5, np.float32), "fill"),
        numpy_helper.from_array(np.asarray(0.0, np.float32), "zero_f"),
        numpy_helper.from_array(np.zeros((1, 1), np.int64), "batch0"),
    ]
    inputs = [value_info("x", [1, 4, 4]), value_info("labels", [1, 4], TensorProto.INT64)]
    outputs = [value_info("mask", [1, 4, 8]), value_info("picked", [1, 8])]
    return model(nodes, inputs, outputs, inits)


def test_index_ops_match_onnx_runtime_on_the_example_inputs(tmp_path):
    feeds = {
        "x": np.random.default_rng(0).standard_normal((1, 4, 4)).astype(np.float32),
        "labels": np.asarray([[1, 0, 1, -1]], np.int64),
    }
    art = coreml.emit(
        _prompt_like(), tmp_path, name="prompt", precision="fp32", example_inputs=feeds
    )
    check = art.details["reference_check"]
    assert check["passed"] and check["input"].startswith("the graph's example inputs")
    assert [o["name"] for o in check["outputs"]] == ["mask", "picked"]
    inputs = {i["name"]: i for i in art.details["package"]["inputs"]}
    assert inputs["labels"]["dtype"] == "int32" and inputs["x"]["dtype"] == "fp32"
    ops = art.details["package"]["ops"]
    assert {"equal", "select", "greater", "cast", "reduce_argmax", "gather_nd"} <= set(ops)
    swift = art.details["usage"]["code"]
    assert "labels: labels" in swift and "x: x" in swift and "dataType: .int32" in swift
