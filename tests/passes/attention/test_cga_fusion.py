"""attention::cga_fusion: cascaded group attention becomes one grouped projection and a
token-major Gemm chain per head."""

from __future__ import annotations

import numpy as np
import pytest

PASS = "attention::cga_fusion"

H, CH, KD, D, R = 2, 4, 2, 4, 3  # heads, channels per head, key dim, value dim, window side
C, N, COUT = H * CH, R * R, 2 * KD + D


def cga_text(
    h, *, batch=1, seed=0, bias_from_input=False, dense_q_conv=False, leak_logits=False
) -> str:
    """One timm-style CGA block as the dynamo exporter writes it (after cleanup), + ReLU."""
    rng = np.random.default_rng(seed)
    inits, nodes = [], []
    inputs = [f"float[{batch}, {C}, {R}, {R}] x"]
    outputs = [f"float[{batch}, {C}, {R}, {R}] y"]

    def init(name, arr, dtype="float"):
        arr = np.asarray(arr)
        dims = f"[{', '.join(map(str, arr.shape))}]" if arr.ndim else ""
        inits.append(f"{dtype}{dims} {name} = {h.literal(arr)}")

    init("sizes", np.array([KD, KD, D], np.int64), "int64")
    init("shape_qk", np.array([batch, KD, N], np.int64), "int64")
    init("shape_v", np.array([batch, D, N], np.int64), "int64")
    init("shape_o", np.array([batch, D, R, R], np.int64), "int64")
    init("scale", np.array(0.5, np.float32))
    nodes.append(
        ", ".join(f"x{i}" for i in range(H)) + f" = Split <axis = 1, num_outputs = {H}> (x)"
    )
    for i in range(H):
        init(f"w{i}", rng.standard_normal((COUT, CH, 1, 1)).astype(np.float32) * 0.5)
        init(f"b{i}", rng.standard_normal(COUT).astype(np.float32) * 0.1)
        if dense_q_conv:
            init(f"dw{i}", rng.standard_normal((KD, KD, 3, 3)).astype(np.float32) * 0.3)
            qconv = "group = 1"
        else:
            init(f"dw{i}", rng.standard_normal((KD, 1, 3, 3)).astype(np.float32) * 0.3)
            qconv = f"group = {KD}"
        init(f"dwb{i}", rng.standard_normal(KD).astype(np.float32) * 0.1)
        if bias_from_input:
            inputs.append(f"float[{N}, {N}] ab{i}")
        else:
            init(f"ab{i}", rng.standard_normal((N, N)).astype(np.float32))
        feat = "x0" if i == 0 else f"f{i}"
        if i > 0:
            nodes.append(f"f{i} = Add(o{i - 1}, x{i})")
        nodes += [
            f"p{i} = Conv <kernel_shape = [1, 1]> ({feat}, w{i}, b{i})",
            f"q{i}, k{i}, v{i} = Split <axis = 1> (p{i}, sizes)",
            f"qd{i} = Conv <{qconv}, kernel_shape = [3, 3], pads = [1, 1, 1, 1]>"
            f" (q{i}, dw{i}, dwb{i})",
            f"qf{i} = Reshape(qd{i}, shape_qk)",
            f"kf{i} = Reshape(k{i}, shape_qk)",
            f"vf{i} = Reshape(v{i}, shape_v)",
            f"qs{i} = Mul(qf{i}, scale)",
            f"qt{i} = Transpose <perm = [0, 2, 1]> (qs{i})",
            f"l{i} = MatMul(qt{i}, kf{i})",
            f"lb{i} = Add(l{i}, ab{i})",
            f"s{i} = Softmax <axis = -1> (lb{i})",
            f"st{i} = Transpose <perm = [0, 2, 1]> (s{i})",
            f"om{i} = MatMul(vf{i}, st{i})",
            f"o{i} = Reshape(om{i}, shape_o)",
        ]
    if leak_logits:
        outputs.append(f"float[{batch}, {N}, {N}] l0")
    nodes.append("cat = Concat <axis = 1> (" + ", ".join(f"o{i}" for i in range(H)) + ")")
    nodes.append("y = Relu(cat)")
    body = "\n        ".join(nodes)
    return f"""
    <ir_version: 8, opset_import: ["" : 18]>
    cga ({", ".join(inputs)}) => ({", ".join(outputs)}) <
        {", ".join(inits)}
    > {{
        {body}
    }}
    """


def prepared(h, **kw):
    return h.infer_shapes(h.parse(cga_text(h, **kw)))


# Golden "after" (B = 1): one grouped conv for every head's x-projection, then per head
# [Gemm(cascade) ·] Split · q dw-conv in NHWC↔NCHW transposes · Gemm(+bias) · Softmax · MatMul.
HEAD0 = [
    "Split",
    "Reshape",
    "Transpose",
    "Conv",
    "Transpose",
    "Reshape",
    "Gemm",
    "Softmax",
    "MatMul",
]
EXPECTED_B1 = [
    "Conv",
    "Transpose",
    "Reshape",
    "Split",
    *HEAD0,
    "Gemm",
    *HEAD0,
    "Concat",
    "Relu",
    "Reshape",
    "Transpose",
]
HEAD0_BN = [
    "Split",
    "Reshape",
    "Transpose",
    "Conv",
    "Transpose",
    "Reshape",
    "Transpose",
    "MatMul",
    "Add",
    "Softmax",
    "MatMul",
]
EXPECTED_B4 = [
    "Conv",
    "Transpose",
    "Reshape",
    "Split",
    *HEAD0_BN,
    "MatMul",
    "Add",
    *HEAD0_BN,
    "Concat",
    "Relu",
    "Reshape",
    "Transpose",
]


@pytest.mark.parametrize(("batch", "expected"), [(1, EXPECTED_B1), (4, EXPECTED_B4)])
def test_golden(helpers, batch, expected):
    model = prepared(helpers, batch=batch)
    result, p = helpers.run_pass(PASS, model)
    cascade = (H - 1) * CH * (2 * KD + D)  # W_iᵀ of heads 1…H-1: [CH, 2·KD + D] each
    assert result.modified and dict(p.stats) == {
        "blocks_rewritten": 1,
        "heads_rewritten": H,
        "weights_added": cascade,
        "macs_added": batch * R * R * cascade,
    }
    assert helpers.op_types(model) == expected
    nodes = list(model.graph)
    grouped = nodes[0]
    assert grouped.attributes["group"].value == H
    assert grouped.inputs[1].const_value.numpy().shape == (H * COUT, CH, 1, 1)
    # scale 0.5 went into the q depthwise weights; no Mul left
    assert "Mul" not in helpers.op_types(model)
    assert model.graph.outputs[0].name == "y"
    # the old per-head weights are gone
    assert not any(name.startswith(("w0", "w1", "dw0", "dw1")) for name in model.graph.initializers)


@pytest.mark.parametrize("batch", [1, 4])
def test_idempotent(helpers, batch):
    model = prepared(helpers, batch=batch)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


@pytest.mark.parametrize("batch", [1, 4])
def test_numerically_equal(helpers, batch):
    before = prepared(helpers, batch=batch)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"bias_from_input": True}, "head 0: the attention bias is not a constant"),
        ({"dense_q_conv": True}, "head 0: q's conv is not a stride-1 'same' depthwise conv"),
        ({"leak_logits": True}, "head 0: the logits are read outside the head"),
    ],
    ids=["bias-not-constant", "q-conv-not-depthwise", "logits-read-outside-head"],
)
def test_look_alikes_untouched_and_explained(helpers, kw, reason):
    model = prepared(helpers, **kw)
    before = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept_unmatched": 1}
    assert len(p.explanations) == 1 and p.explanations[0].startswith(f"Concat 'cat': {reason}")
    assert helpers.fingerprint(model) == before


def test_not_a_candidate_is_not_counted(helpers):
    """Concats that do not end attention heads are not candidates: 0 rewritten, 0 kept."""
    model = helpers.infer_shapes(
        helpers.parse(
            """
            <ir_version: 8, opset_import: ["" : 18]>
            g (float[1, 2, 3, 3] a, float[1, 2, 3, 3] b) => (float[1, 4, 3, 3] y) {
                y = Concat <axis = 1> (a, b)
            }
            """
        )
    )
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not any(p.stats.values()) and p.explanations == []


# ---- real exports: timm's module and the official microsoft/Cream layout ------------------


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["cga_timm_block", "cga_official_block"])
def test_real_exports_fused_and_equal(helpers, request, fixture):
    block = request.getfixturevalue(fixture)
    after = block.clone()
    result, p = helpers.run_pass(PASS, after)
    assert result.modified
    assert (p.stats["blocks_rewritten"], p.stats["heads_rewritten"]) == (1, 4)
    assert p.stats["weights_added"] > 0 and p.stats["macs_added"] > 0
    ops = helpers.op_types(after)
    assert ops.count("Softmax") == 4 and "Mul" not in ops  # the scale went into q's conv
    assert next(n.attributes["group"].value for n in after.graph if n.op_type == "Conv") == 4
    helpers.assert_same_outputs(block.model, after, block.feeds())
    out = helpers.run_ort(after, block.feeds())[0]
    excess = np.abs(out - block.expected) - 5e-5 * np.maximum(1.0, np.abs(block.expected))
    assert excess.max() <= 0, f"max |Δ| vs PyTorch {np.abs(out - block.expected).max()}"
    helpers.assert_idempotent(PASS, after)


@pytest.mark.slow
def test_new_nodes_keep_the_blocks_provenance(helpers, cga_timm_block):
    """The nodes that replace a block carry the exporter's name scopes of the block (profiles
    attribute time to modules through them, e.g. bench/attention.py)."""
    after = cga_timm_block.clone()
    concat = next(n for n in after.graph if n.op_type == "Concat")
    scopes = concat.metadata_props["pkg.torch.onnx.name_scopes"]
    before = {id(n) for n in after.graph}
    helpers.run_pass(PASS, after)
    new = [n for n in after.graph if id(n) not in before]
    assert new and all(n.metadata_props["pkg.torch.onnx.name_scopes"] == scopes for n in new)


@pytest.mark.slow
def test_multi_head_vit_is_not_cga(helpers, vit_block):
    """A look-alike from another family (ViT attention: no cascade, no channel Concat)."""
    model = vit_block.clone()
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not any(p.stats.values())
