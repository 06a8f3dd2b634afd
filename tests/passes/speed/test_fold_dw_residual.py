"""speed::fold_dw_residual: `x + dwconv(x)` becomes one conv with the centre tap + 1."""

from __future__ import annotations

import numpy as np
import pytest

PASS = "speed::fold_dw_residual"

RNG = np.random.default_rng(3)
W = RNG.standard_normal((4, 1, 3, 3)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)
W_FOLDED = W.copy()
W_FOLDED[:, 0, 1, 1] += 1


def model_text(
    h,
    *,
    conv_attrs="group = 4, kernel_shape = [3, 3], pads = [1, 1, 1, 1]",
    add_other=False,
    weight_shape=(4, 1, 3, 3),
    extra_output=False,
) -> str:
    w = RNG.standard_normal(weight_shape).astype(np.float32) if weight_shape != W.shape else W
    ws = ", ".join(str(d) for d in weight_shape)
    outs = "float[1, 4, 6, 6] y" + (", float[1, 4, 6, 6] c" if extra_output else "")
    lhs = "z" if add_other else "x"
    inputs = "float[1, 4, 6, 6] x" + (", float[1, 4, 6, 6] z" if add_other else "")
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g ({inputs}) => ({outs}) <
        float[{ws}] w = {h.literal(w)}, float[4] b = {h.literal(B)}
    > {{
        c = Conv <{conv_attrs}> (x, w, b)
        y = Add({lhs}, c)
    }}
    """


def expected_text(h) -> str:
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[1, 4, 6, 6] x) => (float[1, 4, 6, 6] y) <
        float[4, 1, 3, 3] w_plus_identity = {h.literal(W_FOLDED)}, float[4] b = {h.literal(B)}
    > {{
        y = Conv <group = 4, kernel_shape = [3, 3], pads = [1, 1, 1, 1]> (x, w_plus_identity, b)
    }}
    """


def prepared(h, **kw):
    return h.infer_shapes(h.parse(model_text(h, **kw)))


def test_golden(helpers):
    model = prepared(helpers)
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(expected_text(helpers))
    assert result.modified and dict(p.stats) == {"dw_residuals_folded": 1}
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Conv"]
    assert sorted(model.graph.initializers) == sorted(expected.graph.initializers)
    for name, value in expected.graph.initializers.items():
        np.testing.assert_array_equal(
            model.graph.initializers[name].const_value.numpy(), value.const_value.numpy()
        )
    conv = next(iter(model.graph))
    assert {
        k: (list(a.value) if k != "group" else a.value) for k, a in conv.attributes.items()
    } == {"group": 4, "kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    assert model.graph.outputs[0].name == "y"


def test_idempotent(helpers):
    model = prepared(helpers)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = prepared(helpers)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


@pytest.mark.parametrize(
    "kw",
    [
        {"conv_attrs": "group = 4, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]"},
        {"conv_attrs": "group = 4, kernel_shape = [3, 3], pads = [2, 2, 0, 0]"},
        {"conv_attrs": "group = 4, kernel_shape = [3, 3], pads = [2, 2, 2, 2], dilations = [2, 2]"},
        {
            "conv_attrs": "group = 1, kernel_shape = [3, 3], pads = [1, 1, 1, 1]",
            "weight_shape": (4, 4, 3, 3),
        },
        {"add_other": True},
        {"extra_output": True},
    ],
    ids=[
        "strided",
        "asymmetric-pads",
        "dilated",
        "dense-conv",
        "adds-other-tensor",
        "conv-output-read-twice",
    ],
)
def test_look_alikes_untouched(helpers, kw):
    model = prepared(helpers, **kw)
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not any(p.stats.values())
    assert helpers.fingerprint(model) == before
