"""speed::window_layout: window partition/reverse around 1×1 convs becomes whole-map conv + 4-D
block transposes."""

from __future__ import annotations

import numpy as np
import pytest

PASS = "speed::window_layout"

RNG = np.random.default_rng(5)
W = RNG.standard_normal((6, 2, 1, 1)).astype(np.float32)
B = RNG.standard_normal(6).astype(np.float32)
W2 = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
B2 = RNG.standard_normal(4).astype(np.float32)
W3 = RNG.standard_normal((6, 2, 3, 3)).astype(np.float32)


def partition_text(h, *, conv="group = 2, kernel_shape = [1, 1]", w=W, extra="") -> str:
    ws = ", ".join(str(d) for d in w.shape)
    outs = "float[4, 4, 6] p" + (", float[1, 2, 2, 2, 2, 4] t6" if extra else "")
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1, 4, 4, 4] x) => ({outs}) <
        float[{ws}] w = {h.literal(w)}, float[6] b = {h.literal(B)},
        int64[6] s6 = {{1, 2, 2, 2, 2, 4}}, int64[4] s4 = {{4, 2, 2, 4}}, int64[3] sp = {{4, 4, 6}}
    > {{
        t0 = Transpose <perm = [0, 2, 3, 1]> (x)
        r6 = Reshape (t0, s6)
        t6 = Transpose <perm = [0, 1, 3, 2, 4, 5]> (r6)
        r4 = Reshape (t6, s4)
        tc = Transpose <perm = [0, 3, 1, 2]> (r4)
        c = Conv <{conv}> (tc, w, b)
        tp = Transpose <perm = [0, 2, 3, 1]> (c)
        p = Reshape (tp, sp)
    }}
    """


PARTITION_EXPECTED = """
<ir_version: 8, opset_import: ["" : 18]>
g (float[1, 4, 4, 4] x) => (float[4, 4, 6] p) <
    int64[4] s1 = {2, 2, 2, 12}, int64[3] sp = {4, 4, 6}
> {
    c = Conv <group = 2, kernel_shape = [1, 1]> (x, w, b)
    t1 = Transpose <perm = [0, 2, 3, 1]> (c)
    r1 = Reshape (t1, s1)
    t2 = Transpose <perm = [0, 2, 1, 3]> (r1)
    p = Reshape (t2, sp)
}
"""


def reverse_text(h, *, conv="kernel_shape = [1, 1]", extra="") -> str:
    outs = "float[1, 4, 4, 4] y" + (", float[4, 4, 2, 2] c" if extra else "")
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[4, 4, 3] z) => ({outs}) <
        float[4, 3, 1, 1] w = {h.literal(W2)}, float[4] b = {h.literal(B2)},
        int64[4] s4 = {{4, 2, 2, 3}}, int64[6] s6 = {{1, 2, 2, 2, 2, 4}},
        int64[4] so = {{1, 4, 4, 4}}
    > {{
        r4 = Reshape (z, s4)
        tc = Transpose <perm = [0, 3, 1, 2]> (r4)
        c = Conv <{conv}> (tc, w, b)
        tb = Transpose <perm = [0, 2, 3, 1]> (c)
        r6 = Reshape (tb, s6)
        t6 = Transpose <perm = [0, 1, 3, 2, 4, 5]> (r6)
        ro = Reshape (t6, so)
        y = Transpose <perm = [0, 3, 1, 2]> (ro)
    }}
    """


REVERSE_EXPECTED = """
<ir_version: 8, opset_import: ["" : 18]>
g (float[4, 4, 3] z) => (float[1, 4, 4, 4] y) <
    int64[4] s1 = {2, 2, 2, 6}, int64[4] s2 = {1, 4, 4, 3}
> {
    r1 = Reshape (z, s1)
    t1 = Transpose <perm = [0, 2, 1, 3]> (r1)
    r2 = Reshape (t1, s2)
    t2 = Transpose <perm = [0, 3, 1, 2]> (r2)
    y = Conv <kernel_shape = [1, 1]> (t2, w, b)
}
"""


def structure(model):
    """Per node: op, attributes, and the constant int64 inputs (reshape targets)."""
    out = []
    for node in model.graph:
        attrs = {
            k: (list(a.value) if isinstance(a.value, (list, tuple)) else a.value)
            for k, a in node.attributes.items()
        }
        consts = [
            v.const_value.numpy().tolist()
            for v in node.inputs[1:]
            if v is not None and v.const_value is not None and v.const_value.dtype.name == "INT64"
        ]
        out.append((node.op_type, attrs, consts))
    return out


def prepared(h, text):
    return h.infer_shapes(h.parse(text))


@pytest.mark.parametrize("which", ["partition", "reverse"])
def test_golden(helpers, which):
    if which == "partition":
        model, expected = prepared(helpers, partition_text(helpers)), PARTITION_EXPECTED
        stats = {"partitions_rewritten": 1}
        w, b = W, B
    else:
        model, expected = prepared(helpers, reverse_text(helpers)), REVERSE_EXPECTED
        stats = {"reverses_rewritten": 1}
        w, b = W2, B2
    result, p = helpers.run_pass(PASS, model)
    assert result.modified and dict(p.stats) == stats
    assert structure(model) == structure(helpers.parse(expected))
    conv = next(n for n in model.graph if n.op_type == "Conv")
    np.testing.assert_array_equal(conv.inputs[1].const_value.numpy(), w)
    np.testing.assert_array_equal(conv.inputs[2].const_value.numpy(), b)
    assert [v.name for v in model.graph.outputs] == [
        v.name for v in helpers.parse(expected).graph.outputs
    ]


@pytest.mark.parametrize("which", ["partition", "reverse"])
def test_idempotent(helpers, which):
    text = partition_text(helpers) if which == "partition" else reverse_text(helpers)
    model = prepared(helpers, text)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


@pytest.mark.parametrize("which", ["partition", "reverse"])
def test_numerically_equal(helpers, which):
    text = partition_text(helpers) if which == "partition" else reverse_text(helpers)
    before = prepared(helpers, text)
    after = helpers.clone(before)
    result, _ = helpers.run_pass(PASS, after)
    assert result.modified
    helpers.assert_same_outputs(before, after)


@pytest.mark.parametrize(
    "make",
    [
        lambda h: partition_text(
            h, conv="group = 2, kernel_shape = [3, 3], pads = [1, 1, 1, 1]", w=W3
        ),
        lambda h: (
            partition_text(h, conv="group = 2, kernel_shape = [1, 1], strides = [2, 2]")
            .replace("float[4, 4, 6] p", "float[1, 1, 6] p")
            .replace("sp = {4, 4, 6}", "sp = {4, 1, 6}")
        ),
        lambda h: partition_text(h, extra=True),
        lambda h: (
            reverse_text(h, conv="kernel_shape = [1, 1], pads = [1, 1, 1, 1]")
            .replace("float[1, 4, 4, 4] y", "float[1, 4, 8, 8] y")
            .replace("s6 = {1, 2, 2, 2, 2, 4}", "s6 = {1, 2, 2, 4, 4, 4}")
            .replace("so = {1, 4, 4, 4}", "so = {1, 8, 8, 4}")
        ),
        lambda h: reverse_text(h, extra=True),
    ],
    ids=[
        "partition-3x3-conv",
        "partition-strided-conv",
        "partition-intermediate-read-twice",
        "reverse-padded-conv",
        "reverse-conv-output-read-twice",
    ],
)
def test_look_alikes_untouched(helpers, make):
    model = prepared(helpers, make(helpers))
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not any(p.stats.values())
    assert helpers.fingerprint(model) == before
