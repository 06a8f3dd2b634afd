"""cleanup::fold_bias_gather: constant attention-bias gathers become constants."""

from __future__ import annotations

import numpy as np

PASS = "cleanup::fold_bias_gather"

TABLE = np.arange(10, dtype=np.float32).reshape(2, 5) / 10 - 0.3  # heads × offsets
IDX = np.array([[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]], np.int64)


def before_text(h) -> str:
    # timm EfficientViT: attention_biases[:, attention_bias_idxs], then [head] per head.
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    bias (float[4, 4] a0, float[1, 4, 4] a1) => (float[4, 4] s0, float[1, 4, 4] s1) <
        float[2, 5] table = {h.literal(TABLE)}, int64[4, 4] idx = {h.literal(IDX)},
        int64 h0 = {{0}}, int64 h1 = {{1}}, int64[1] axes = {{0}}
    > {{
        full = Gather <axis = 1> (table, idx)
        b0 = Gather <axis = 0> (full, h0)
        b1 = Gather <axis = 0> (full, h1)
        u1 = Unsqueeze(b1, axes)
        s0 = Add(a0, b0)
        s1 = Add(a1, u1)
    }}
    """


def expected_text(h) -> str:
    full = TABLE[:, IDX]
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    bias (float[4, 4] a0, float[1, 4, 4] a1) => (float[4, 4] s0, float[1, 4, 4] s1) <
        float[4, 4] b0 = {h.literal(full[0])}, float[1, 4, 4] u1 = {h.literal(full[1][None])}
    > {{
        s0 = Add(a0, b0)
        s1 = Add(a1, u1)
    }}
    """


def test_golden(helpers):
    model = helpers.parse(before_text(helpers))
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(expected_text(helpers))
    assert result.modified
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Add", "Add"]
    assert sorted(model.graph.initializers) == sorted(expected.graph.initializers)
    for name, value in expected.graph.initializers.items():
        np.testing.assert_array_equal(
            model.graph.initializers[name].const_value.numpy(), value.const_value.numpy()
        )
    assert dict(p.stats) == {"gathers": 3, "chain_ops": 1, "elements": 64, "tables_removed": 2}


def test_idempotent(helpers):
    model = helpers.parse(before_text(helpers))
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = helpers.parse(before_text(helpers))
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


def test_size_cap(helpers):
    model = helpers.parse(before_text(helpers))
    result, _ = helpers.run_pass(PASS, model, max_elements=16)
    # `full` (32 elements) is too big; the per-head gathers read a non-constant: nothing folds.
    assert not result.modified and helpers.op_types(model)[0] == "Gather"


def test_look_alikes_untouched(helpers):
    # An embedding lookup (indices from the input) and a gather from an activation stay.
    model = helpers.parse(f"""
        <ir_version: 8, opset_import: ["" : 18]>
        lookups (int64[3] ids, float[2, 5] act) => (float[3, 5] e, float[2, 4, 4] g) <
            float[4, 5] table = {helpers.literal(np.ones((4, 5), np.float32))},
            int64[4, 4] idx = {helpers.literal(IDX)}
        > {{
            e = Gather <axis = 0> (table, ids)
            g = Gather <axis = 1> (act, idx)
        }}
    """)
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not p.stats
    assert helpers.fingerprint(model) == fingerprint
