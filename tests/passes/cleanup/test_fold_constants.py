"""cleanup::fold_constants: constant subgraphs become initializers, within the size caps."""

from __future__ import annotations

import numpy as np

PASS = "cleanup::fold_constants"

BEFORE = """
    <ir_version: 8, opset_import: ["" : 18]>
    fold (float[3, 2] x) => (float[3, 2] y) <
        float[2] scale = {2.0, 4.0}, int64[1] axes = {0}
    > {
        s = Unsqueeze(scale, axes)
        r = Reciprocal(s)
        c = Constant <value = float[1] {3.0}> ()
        rc = Mul(r, c)
        y = Mul(x, rc)
    }
"""

EXPECTED = """
    <ir_version: 8, opset_import: ["" : 18]>
    fold (float[3, 2] x) => (float[3, 2] y) <float[1, 2] rc = {1.5, 0.75}> {
        y = Mul(x, rc)
    }
"""


def test_golden(helpers):
    model = helpers.parse(BEFORE)
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(EXPECTED)
    assert result.modified
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Mul"]
    (mul,) = model.graph
    folded = mul.inputs[1]
    assert folded.is_initializer() and folded.name == "rc"
    np.testing.assert_array_equal(
        folded.const_value.numpy(), expected.graph.initializers["rc"].const_value.numpy()
    )
    assert p.stats["folded"] == 4  # Unsqueeze, Reciprocal, Constant (into Mul), Mul
    assert "scale" not in model.graph.initializers  # inputs nobody reads any more are gone


def test_idempotent(helpers):
    model = helpers.parse(BEFORE)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = helpers.parse(BEFORE)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


def test_deterministic(helpers):
    a, b = helpers.parse(BEFORE), helpers.parse(BEFORE)
    helpers.run_pass(PASS, a)
    helpers.run_pass(PASS, b)
    assert helpers.fingerprint(a) == helpers.fingerprint(b)


def test_size_cap_keeps_model_small(helpers):
    # Tile would turn 4 elements into 4096: above output_size_limit, so it must stay.
    text = """
        <ir_version: 8, opset_import: ["" : 18]>
        big (float[64, 64] x) => (float[64, 64] y) <
            float[2, 2] t = {1.0, 2.0, 3.0, 4.0}, int64[2] reps = {32, 32}, float[64, 64] tiled
        > {
            tiled = Tile(t, reps)
            y = Add(x, tiled)
        }
    """
    model = helpers.parse(text)
    result, _ = helpers.run_pass(PASS, model, output_size_limit=1024)
    assert not result.modified and helpers.op_types(model) == ["Tile", "Add"]
    result, p = helpers.run_pass(PASS, model, output_size_limit=4096)
    assert result.modified and helpers.op_types(model) == ["Add"]
    assert p.stats["elements_added"] == 4096


def test_look_alike_with_graph_input_untouched(helpers):
    # Same shape of graph, but the scale is a graph input: nothing is constant. (Values are
    # annotated, so the folder's shape inference has nothing to add either.)
    model = helpers.parse("""
        <ir_version: 8, opset_import: ["" : 18]>
        live (float[3, 2] x, float[2] scale) => (float[3, 2] y) <
            int64[1] axes = {0}, float[1, 2] s, float[1, 2] r
        > {
            s = Unsqueeze(scale, axes)
            r = Reciprocal(s)
            y = Mul(x, r)
        }
    """)
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not p.stats
    assert helpers.fingerprint(model) == fingerprint


def test_constants_that_cannot_fold_become_initializers(helpers):
    model = helpers.parse("""
        <ir_version: 8, opset_import: ["" : 18]>
        lift (float[2] x) => (float[2] y) {
            c = Constant <value_floats = [0.5, 2.0]> ()
            y = Mul(x, c)
        }
    """)
    before = helpers.clone(model)
    result, p = helpers.run_pass(PASS, model)
    assert result.modified and helpers.op_types(model) == ["Mul"]
    assert dict(p.stats) == {"lifted": 1, "initializers_added": 1, "elements_added": 2}
    np.testing.assert_array_equal(model.graph.initializers["c"].const_value.numpy(), [0.5, 2.0])
    helpers.assert_same_outputs(before, model)
    helpers.assert_idempotent(PASS, model)
    kept = helpers.clone(before)
    helpers.run_pass(PASS, kept, lift_constants=False)
    assert helpers.op_types(kept) == ["Constant", "Mul"]
