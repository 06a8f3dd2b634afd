"""attention::split_heads: multi-head attention becomes one 4-D channels-first chain per head."""

from __future__ import annotations

import numpy as np
import pytest
from mha_graphs import attention_op, max_rank, mha

PASS = "attention::split_heads"


def prepared(helpers, *args, **kw):
    return helpers.infer_shapes(mha(*args, **kw))


# Golden "after" of the timm layout, 2 heads, per-head bias: one transpose + reshape of the
# projection to [B,3C,1,N], one Split into 3·H channel blocks, then per head
# Mul(scale)·Transpose(q) · Reshape(k) → MatMul → Add(bias_h) → Softmax → MatMul(Transpose(v))
# → Transpose back to [B,d,1,N]; Concat on channels and one Reshape+Transpose to [B,N,C].
HEAD = [
    "Mul",
    "Transpose",
    "Reshape",
    "MatMul",
    "Add",
    "Softmax",
    "Transpose",
    "MatMul",
    "Transpose",
]
EXPECTED_TOKENS = [
    "MatMul",
    "Transpose",
    "Reshape",
    "Split",
    *HEAD,
    *HEAD,
    "Concat",
    "Reshape",
    "Transpose",
    "MatMul",
]


def test_golden_tokens(helpers):
    model = prepared(helpers, "tokens", bias="per_head")
    result, p = helpers.run_pass(PASS, model)
    assert result.modified
    assert dict(p.stats) == {"attentions_split": 1, "heads_split": 2}
    assert helpers.op_types(model) == EXPECTED_TOKENS
    assert max_rank(model) == 4
    split = next(n for n in model.graph if n.op_type == "Split")
    assert split.inputs[1].const_value.numpy().tolist() == [4] * 6  # q0 q1 k0 k1 v0 v1
    assert split.attributes["axis"].value == 1
    assert "bias" not in model.graph.initializers  # replaced by one constant per head
    assert model.graph.outputs[0].name == "y"


def test_golden_map_has_no_transpose_of_the_source(helpers):
    model = prepared(helpers, "map", n=9, h=3)
    _, p = helpers.run_pass(PASS, model)
    assert dict(p.stats) == {"attentions_split": 1, "heads_split": 3}
    ops = helpers.op_types(model)
    # Conv → Reshape[B,3C,1,N] → Split: LowFormer's [q|k|v] per head blocks tile the channels
    assert ops[:3] == ["Conv", "Reshape", "Split"]
    assert ops[-2:] == ["Concat", "Reshape"]
    assert max_rank(model) == 4


@pytest.mark.parametrize("layout", ["tokens", "map"])
@pytest.mark.parametrize("bias", [None, "per_head", "shared"])
def test_numerically_equal_and_idempotent(helpers, layout, bias):
    before = prepared(helpers, layout, n=9, h=3, bias=bias)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)
    helpers.assert_idempotent(PASS, after)


def test_property_random_shapes_split_then_merge_is_identity(helpers):
    """On random batch/heads/width/tokens/layouts the rewritten graph computes the same."""
    rng = np.random.default_rng(7)
    for seed in range(8):
        layout = ["tokens", "map"][seed % 2]
        side = int(rng.integers(2, 5))
        kw = {
            "b": int(rng.integers(1, 3)),
            "h": int(rng.integers(2, 5)),
            "d": int(rng.choice([1, 2, 3, 8])),
            "n": side * side if layout == "map" else int(rng.integers(2, 12)),
            "bias": [None, "per_head", "shared"][int(rng.integers(0, 3))],
            "seed": seed,
        }
        before = prepared(helpers, layout, **kw)
        after = helpers.clone(before)
        _, p = helpers.run_pass(PASS, after)
        assert p.stats["heads_split"] == kw["h"], kw
        assert max_rank(after) <= 4, kw
        helpers.assert_same_outputs(before, after)


@pytest.mark.parametrize(
    ("build", "kw", "reason"),
    [
        (mha, {"layout": "strided"}, "not contiguous channel blocks"),
        (mha, {"softmax_axis": 2}, "not over the last axis"),
        (attention_op, {"is_causal": 1}, "causal attention"),
        (attention_op, {"softcap": 5.0}, "soft-capped"),
        (attention_op, {"mask": "bool"}, "not an additive float bias"),
    ],
    ids=[
        "heads-strided-in-channels",
        "softmax-not-over-keys",
        "attention-op-causal",
        "attention-op-softcap",
        "attention-op-boolean-mask",
    ],
)
def test_look_alikes_untouched_and_explained(helpers, build, kw, reason):
    model = helpers.infer_shapes(build(**kw))
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept_unmatched": 1}
    assert len(p.explanations) == 1 and reason in p.explanations[0]
    assert helpers.fingerprint(model) == before


def test_no_attention_no_counts(helpers):
    """A graph without attention: nothing matched, nothing counted (0 everywhere)."""
    model = helpers.infer_shapes(
        helpers.parse(
            """
            <ir_version: 8, opset_import: ["" : 18]>
            g (float[1, 4, 4] x, float[1, 4, 4] w) => (float[1, 4, 4] y) {
                m = MatMul(x, w)
                y = Softmax <axis = -1> (m)
            }
            """
        )
    )
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept_unmatched": 1}


# ---- the ONNX Attention op (opset 23) -------------------------------------------------------

# Golden "after" of the 4-D Attention op, 2 heads, no mask: each of q, k, v [B,N,C] is
# transposed and reshaped once to [B,C,1,N] and split into its heads; per head the same chain
# as above (the scale 1/√d on q); no Attention, no 5-D tensor is left.
ATTENTION_OP_HEAD = [h for h in HEAD if h != "Add"]
EXPECTED_ATTENTION_OP = [
    *["MatMul"] * 3,
    *["Transpose", "Reshape", "Split"] * 3,
    *ATTENTION_OP_HEAD,
    *ATTENTION_OP_HEAD,
    "Concat",
    "Reshape",
    "Transpose",
    "MatMul",
]


def test_golden_attention_op(helpers):
    model = helpers.infer_shapes(attention_op("4d"))
    result, p = helpers.run_pass(PASS, model)
    assert result.modified
    assert dict(p.stats) == {"attentions_split": 1, "heads_split": 2}
    assert helpers.op_types(model) == EXPECTED_ATTENTION_OP
    assert max_rank(model) == 4
    scale = next(n for n in model.graph if n.op_type == "Mul").inputs[1].const_value.numpy()
    assert scale == np.float32(4**-0.5)


@pytest.mark.parametrize("form", ["4d", "3d"])
@pytest.mark.parametrize(
    ("kv_h", "mask", "attributes"),
    [
        (None, None, {}),
        (None, "per_head", {"scale": 0.3}),
        (1, "shared", {}),  # grouped queries: both q heads read the one k/v head
    ],
    ids=["plain", "per-head-mask-scale", "grouped-queries"],
)
def test_attention_op_numerically_equal_and_idempotent(helpers, form, kv_h, mask, attributes):
    before = helpers.infer_shapes(attention_op(form, kv_h=kv_h, mask=mask, n=9, **attributes))
    after = helpers.clone(before)
    _, p = helpers.run_pass(PASS, after)
    assert dict(p.stats) == {"attentions_split": 1, "heads_split": 2}
    assert "Attention" not in helpers.op_types(after) and max_rank(after) <= 4
    helpers.assert_same_outputs(before, after)
    helpers.assert_idempotent(PASS, after)


def test_single_head_attention_op_is_kept_and_counted(helpers):
    model = helpers.infer_shapes(attention_op("4d", h=1))
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept_single_head": 1}


# ---- real exports of the zoo families (tests/passes/attention/conftest.py) -----------------


def _check_against_torch_and_pre_pass(helpers, block, after):
    out = helpers.run_ort(after, block.feeds())[0]
    ref = helpers.run_ort(block.model, block.feeds())[0]
    for reference in (block.expected, ref):
        excess = np.abs(out - reference) - 5e-5 * np.maximum(1.0, np.abs(reference))
        assert excess.max() <= 0, f"max |Δ| {np.abs(out - reference).max()}"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "heads"),
    [("vit_block", 4), ("vit_block_opset23", 4), ("lowformer_block", 2)],
    ids=["vit", "vit-attention-op", "lowformer"],
)
def test_real_multi_head_exports_are_split(helpers, request, fixture, heads):
    block = request.getfixturevalue(fixture)
    assert max_rank(block.model) >= 4
    after = block.clone()
    result, p = helpers.run_pass(PASS, after)
    assert result.modified and p.stats["attentions_split"] == 1
    assert p.stats["heads_split"] == heads
    assert "kept_unmatched" not in p.stats
    assert max_rank(after) <= 4
    assert helpers.op_types(after).count("Softmax") == p.stats["heads_split"]
    helpers.assert_same_outputs(block.model, after, block.feeds())
    _check_against_torch_and_pre_pass(helpers, block, after)
    helpers.assert_idempotent(PASS, after)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "single"),
    [("shvit_block", 1), ("cga_timm_block", 4)],
    ids=["shvit", "efficientvit"],
)
def test_real_single_head_exports_are_kept_and_counted(helpers, request, fixture, single):
    """SHViT's one head, and each EfficientViT-M cascade head (already its own chain)."""
    block = request.getfixturevalue(fixture)
    model = block.clone()
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept_single_head": single}
    assert helpers.fingerprint(model) == before
