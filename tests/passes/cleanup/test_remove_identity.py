"""cleanup::remove_identity: no-op nodes go, look-alikes stay."""

from __future__ import annotations

import numpy as np
import pytest

PASS = "cleanup::remove_identity"


def before_text(h) -> str:
    zeros = h.literal(np.zeros((7, 7), np.float32))
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    noops (float[1, 64, 7, 7] x) => (float[1, 64, 7, 7] y) <
        int64[4] shape = {{1, -1, 7, 7}}, float[7, 7] zeros = {zeros}, float one = {{1.0}},
        int64[1] starts = {{0}}, int64[1] ends = {{9223372036854775807}}, int64[1] axes = {{1}},
        int64[8] pads = {{0, 0, 0, 0, 0, 0, 0, 0}}, int64[4] same = {{1, 64, 7, 7}}
    > {{
        a = Identity(x)
        b = Reshape(a, shape)
        c = Transpose <perm = [0, 1, 2, 3]> (b)
        d = Add(c, zeros)
        e = Cast <to = 1> (d)
        f = Dropout(e)
        g = Slice(f, starts, ends, axes)
        k = Mul(one, g)
        m = Pad(k, pads)
        n = Concat <axis = 1> (m)
        o = Expand(n, same)
        r = Relu(o)
        y = Identity(r)
    }}
    """


EXPECTED = """
    <ir_version: 8, opset_import: ["" : 18]>
    noops (float[1, 64, 7, 7] x) => (float[1, 64, 7, 7] y) {
        y = Relu(x)
    }
"""


def test_golden_every_rule_fires(helpers):
    model = helpers.parse(before_text(helpers))
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(EXPECTED)
    assert result.modified
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Relu"]
    (relu,) = model.graph
    assert relu.inputs[0] is model.graph.inputs[0]
    # The graph output keeps its name: Relu's output took it over from the last Identity.
    assert relu.outputs[0] is model.graph.outputs[0] and relu.outputs[0].name == "y"
    assert p.stats["removed"] == 12
    assert not model.graph.initializers  # the constants only the no-ops read go with them
    assert {k: p.stats[k] for k in ("identity", "reshape", "neutral_arith", "expand")} == {
        "identity": 2,
        "reshape": 1,
        "neutral_arith": 2,
        "expand": 1,
    }


def test_idempotent(helpers):
    model = helpers.parse(before_text(helpers))
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = helpers.parse(before_text(helpers))
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


def test_symbolic_batch_reshape_and_open_slice(helpers):
    model = helpers.parse("""
        <ir_version: 8, opset_import: ["" : 18]>
        dyn (float[N, 64] x) => (float[N, 64] y) <
            int64[2] shape = {-1, 64}, int64[2] starts = {0, 0},
            int64[2] ends = {9223372036854775807, 64}
        > {
            a = Reshape(x, shape)
            b = Slice(a, starts, ends)
            y = Relu(b)
        }
    """)
    before = helpers.clone(model)
    result, _ = helpers.run_pass(PASS, model)
    assert result.modified and helpers.op_types(model) == ["Relu"]
    helpers.assert_same_outputs(before, model)


LOOK_ALIKES = """
    <ir_version: 8, opset_import: ["" : 18]>
    keep (float[1, 8] x, float[1, 8] z) => (float[4, 8] y1, float[1, 8] y2, float[8, 1] y3,
                                           float[1, 7] y4, float16[1, 8] y5, float[1, 8] y6,
                                           float[1, 8] y7, float[1, 10] y8, float[1, 8] y9) <
        float[4, 8] zeros = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                             0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                             0.0, 0.0, 0.0, 0.0},
        float[1] almost_one = {1.0001}, int64[2] transposed = {8, 1},
        int64[1] starts = {1}, int64[1] ends = {8}, int64[1] axes = {1},
        float zero = {0.0}, int64[4] pads = {0, 1, 0, 1}
    > {
        y1 = Add(x, zeros)
        y2 = Mul(x, almost_one)
        y3 = Reshape(x, transposed)
        y4 = Slice(x, starts, ends, axes)
        y5 = Cast <to = 10> (x)
        y6 = Sub(zero, x)
        y7 = Identity(x)
        y8 = Pad(x, pads)
        y9 = Transpose <perm = [0, 1]> (z)
    }
"""


def test_look_alikes_untouched(helpers):
    model = helpers.parse(LOOK_ALIKES)
    types_before = helpers.op_types(model)
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    # Only the identity Transpose of z goes; z is a graph input copied to an output, so even
    # that one must stay: nothing in this graph may change.
    assert not result.modified and not p.stats
    assert helpers.op_types(model) == types_before
    assert helpers.fingerprint(model) == fingerprint


@pytest.mark.parametrize("training", ["1", "0"])
def test_dropout_only_in_inference(helpers, training):
    model = helpers.parse(f"""
        <ir_version: 8, opset_import: ["" : 18]>
        drop (float[2, 4] x) => (float[2, 4] y) <float ratio = {{0.5}}, bool t = {{{training}}}> {{
            d = Dropout(x, ratio, t)
            y = Relu(d)
        }}
    """)
    result, _ = helpers.run_pass(PASS, model)
    assert result.modified == (training == "0")
    assert helpers.op_types(model) == (["Relu"] if training == "0" else ["Dropout", "Relu"])
