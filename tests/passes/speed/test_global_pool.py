"""speed::global_pool: spatial ReduceMean (keepdims) on a 4-D map becomes GlobalAveragePool."""

from __future__ import annotations

import pytest

PASS = "speed::global_pool"


def model_text(*, axes="2, 3", keepdims=1, shape="1, 4, 5, 6", out="1, 4, 1, 1") -> str:
    n_axes = len(axes.split(","))
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    g (float[{shape}] x) => (float[{out}] y) <int64[{n_axes}] axes = {{{axes}}}> {{
        y = ReduceMean <keepdims = {keepdims}> (x, axes)
    }}
    """


EXPECTED = """
<ir_version: 8, opset_import: ["" : 18]>
g (float[1, 4, 5, 6] x) => (float[1, 4, 1, 1] y) {
    y = GlobalAveragePool (x)
}
"""


def prepared(h, **kw):
    return h.infer_shapes(h.parse(model_text(**kw)))


@pytest.mark.parametrize("axes", ["2, 3", "-1, -2"])
def test_golden(helpers, axes):
    model = prepared(helpers, axes=axes)
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(EXPECTED)
    assert result.modified and dict(p.stats) == {"means_rewritten": 1}
    assert helpers.op_types(model) == helpers.op_types(expected) == ["GlobalAveragePool"]
    assert not model.graph.initializers
    assert model.graph.outputs[0].name == "y"
    assert model.graph.outputs[0].shape == expected.graph.outputs[0].shape


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
        {"axes": "1, 2", "out": "1, 1, 1, 6"},
        {"axes": "3", "out": "1, 4, 5, 1"},
        {"keepdims": 0, "out": "1, 4"},
        {"axes": "1, 2", "shape": "1, 5, 6", "out": "1, 1, 1"},
    ],
    ids=["channel-axes", "one-axis", "no-keepdims", "rank-3"],
)
def test_look_alikes_untouched(helpers, kw):
    model = prepared(helpers, **kw)
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not any(p.stats.values())
    assert helpers.fingerprint(model) == before
