"""cleanup::infer_shapes: every value gets the dtype and shape inference can prove."""

from __future__ import annotations

import onnx_ir as ir

PASS = "cleanup::infer_shapes"

BEFORE = """
    <ir_version: 8, opset_import: ["" : 18]>
    shapes (float[N, 3, 8, 8] x) => (y) <int64[3] shape = {0, 3, 64}> {
        t = Transpose <perm = [0, 2, 3, 1]> (x)
        r = Relu(t)
        y = Reshape(x, shape)
    }
"""

EXPECTED = """
    <ir_version: 8, opset_import: ["" : 18]>
    shapes (float[N, 3, 8, 8] x) => (float[N, 3, 64] y) <
        int64[3] shape = {0, 3, 64}, float[N, 8, 8, 3] t, float[N, 8, 8, 3] r
    > {
        t = Transpose <perm = [0, 2, 3, 1]> (x)
        r = Relu(t)
        y = Reshape(x, shape)
    }
"""


def annotations(model: ir.Model) -> dict[str, tuple]:
    return {
        v.name: (v.dtype, None if v.shape is None else tuple(str(d) for d in v.shape))
        for node in model.graph
        for v in node.outputs
    }


def test_golden(helpers):
    model = helpers.parse(BEFORE)
    assert annotations(model)["t"] == (None, None)
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(EXPECTED)
    assert result.modified
    assert helpers.op_types(model) == helpers.op_types(expected)
    assert annotations(model) == annotations(expected)
    assert dict(p.stats) == {"dtypes": 3, "shapes": 3}


def test_idempotent(helpers):
    model = helpers.parse(BEFORE)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = helpers.parse(BEFORE)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


def test_symbolic_dim_becomes_static_but_static_never_changes(helpers):
    model = helpers.parse("""
        <ir_version: 8, opset_import: ["" : 18]>
        g (float[2, 3] x) => (float[M, 3] y) {
            y = Relu(x)
        }
    """)
    result, p = helpers.run_pass(PASS, model)
    assert result.modified and model.graph.outputs[0].shape == ir.Shape([2, 3])
    assert dict(p.stats) == {"shapes": 1}


def test_fully_annotated_model_untouched(helpers):
    model = helpers.parse(EXPECTED)
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not p.stats
    assert helpers.fingerprint(model) == fingerprint
