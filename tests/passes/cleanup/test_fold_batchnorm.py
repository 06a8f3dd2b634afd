"""cleanup::fold_batchnorm: BN folds into the linear op beside it; look-alikes keep their BN."""

from __future__ import annotations

import numpy as np
import pytest

PASS = "cleanup::fold_batchnorm"
HEADER = '<ir_version: 8, opset_import: ["" : 18]>'


def arrays(seed: int = 0, **shapes: tuple[int, ...]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}


def bn_params(c: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "gamma": (rng.random(c) + 0.5).astype(np.float32),
        "beta": (rng.standard_normal(c) * 0.1).astype(np.float32),
        "mean": (rng.standard_normal(c) * 0.1).astype(np.float32),
        "var": (rng.random(c) + 0.5).astype(np.float32),
    }


def inits(h, values: dict[str, np.ndarray]) -> str:
    parts = []
    for name, a in values.items():
        dims = ", ".join(str(d) for d in a.shape)
        kind = "float" if a.dtype == np.float32 else "int64"
        parts.append(f"{kind}[{dims}] {name} = {h.literal(a)}")
    return ",\n".join(parts)


BN = "BatchNormalization <epsilon = 1e-3> ({x}, gamma, beta, mean, var)"

# name → (signature, graph body, initializer arrays, expected op types after the pass)
CASES = {
    "conv_grouped": (
        "(float[1, 4, 5, 5] x) => (float[1, 6, 5, 5] y)",
        f"c = Conv <group = 2, pads = [1, 1, 1, 1]> (x, w)\n y = {BN.format(x='c')}",
        {**arrays(w=(6, 2, 3, 3)), **bn_params(6)},
        ["Conv"],
    ),
    "conv_transpose_grouped": (
        "(float[1, 4, 5, 5] x) => (float[1, 6, 6, 6] y)",
        f"c = ConvTranspose <group = 2> (x, w, b)\n y = {BN.format(x='c')}",
        {**arrays(w=(4, 3, 2, 2), b=(6,)), **bn_params(6)},
        ["ConvTranspose"],
    ),
    "bn_then_gemm_head": (  # EfficientViT head: BatchNorm1d → Linear
        "(float[2, 8] x) => (float[2, 5] y)",
        f"n = {BN.format(x='x')}\n y = Gemm <transB = 1> (n, w)",
        {**bn_params(8), **arrays(w=(5, 8))},
        ["Gemm"],
    ),
    "bn_then_gemm_bias_alpha_beta": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"n = {BN.format(x='x')}\n y = Gemm <alpha = 0.5, beta = 2.0> (n, w, b)",
        {**bn_params(8), **arrays(w=(8, 5), b=(5,))},
        ["Gemm"],
    ),
    "bn_then_matmul_add": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"n = {BN.format(x='x')}\n m = MatMul(n, w)\n y = Add(m, b)",
        {**bn_params(8), **arrays(w=(8, 5), b=(5,))},
        ["MatMul", "Add"],
    ),
    "bn_then_matmul": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"n = {BN.format(x='x')}\n y = MatMul(n, w)",
        {**bn_params(8), **arrays(w=(8, 5))},
        ["MatMul", "Add"],
    ),
    "gemm_then_bn": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"g = Gemm <transB = 1, beta = 0.5> (x, w, b)\n y = {BN.format(x='g')}",
        {**arrays(w=(5, 8), b=(5,)), **bn_params(5)},
        ["Gemm"],
    ),
    "matmul_add_then_bn": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"m = MatMul(x, w)\n a = Add(b, m)\n y = {BN.format(x='a')}",
        {**arrays(w=(8, 5), b=(1, 5)), **bn_params(5)},
        ["MatMul", "Add"],
    ),
    "matmul_then_bn": (
        "(float[2, 8] x) => (float[2, 5] y)",
        f"m = MatMul(x, w)\n y = {BN.format(x='m')}",
        {**arrays(w=(8, 5)), **bn_params(5)},
        ["MatMul", "Add"],
    ),
}


def model_for(h, case: str):
    signature, body, values, _ = CASES[case]
    return h.parse(f"{HEADER}\n g {signature} <{inits(h, values)}> {{\n {body}\n }}")


def test_golden_efficientvit_head(helpers):
    """BN1d → Linear(no bias) becomes one Gemm with W·diag(s) and bias W·t."""
    values = {**bn_params(8), **arrays(w=(5, 8))}
    model = helpers.parse(f"""{HEADER}
        head (float[1, 8] x) => (float[1, 5] y) <{inits(helpers, values)}> {{
            n = BatchNormalization <epsilon = 1e-5> (x, gamma, beta, mean, var)
            y = Gemm <transB = 1> (n, w)
        }}""")
    s = values["gamma"] / np.sqrt(values["var"].astype(np.float64) + 1e-5)
    t = values["beta"] - values["mean"] * s
    folded = {"w": values["w"] * s[None, :], "bias": values["w"] @ t}
    folded = {k: v.astype(np.float32) for k, v in folded.items()}
    expected = helpers.parse(f"""{HEADER}
        head (float[1, 8] x) => (float[1, 5] y) <{inits(helpers, folded)}> {{
            y = Gemm <transB = 1, beta = 1.0> (x, w, bias)
        }}""")
    result, p = helpers.run_pass(PASS, model)
    assert result.modified and dict(p.stats) == {"folded": 1, "into_gemm": 1}
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Gemm"]
    (gemm,) = model.graph
    (want,) = expected.graph
    assert gemm.inputs[0] is model.graph.inputs[0]
    assert gemm.attributes.get_int("transB") == 1 and gemm.attributes.get_float("beta") == 1.0
    for got_v, want_v in zip(gemm.inputs[1:], want.inputs[1:], strict=True):
        np.testing.assert_allclose(
            got_v.const_value.numpy(), want_v.const_value.numpy(), rtol=1e-6, atol=1e-6
        )
    # W was read only by the Gemm: updated in place; the BN parameters are gone.
    assert sorted(model.graph.initializers) == ["gemm_bias", "w"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_folds(helpers, case):
    model = model_for(helpers, case)
    result, p = helpers.run_pass(PASS, model)
    assert result.modified and p.stats["folded"] == 1 and not p.stats["kept"]
    assert helpers.op_types(model) == CASES[case][3]
    assert model.graph.outputs[0].name == "y"


@pytest.mark.parametrize("case", sorted(CASES))
def test_numerically_equal(helpers, case):
    before = model_for(helpers, case)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


@pytest.mark.parametrize("case", sorted(CASES))
def test_idempotent(helpers, case):
    model = model_for(helpers, case)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


LOOK_ALIKES = {
    # nothing linear to fold into
    "after_relu": (
        "(float[1, 4, 3, 3] x) => (float[1, 4, 3, 3] y)",
        f"r = Relu(x)\n y = {BN.format(x='r')}",
        bn_params(4),
    ),
    # the conv output is also read elsewhere: scaling the conv would change that reader
    "conv_output_shared": (
        "(float[1, 4, 3, 3] x) => (float[1, 4, 3, 3] y, float[1, 4, 3, 3] z)",
        f"c = Conv(x, w)\n y = {BN.format(x='c')}\n z = Relu(c)",
        {**arrays(w=(4, 4, 1, 1)), **bn_params(4)},
    ),
    # the BN output feeds the Gemm and something else
    "bn_output_shared": (
        "(float[2, 8] x) => (float[2, 5] y, float[2, 8] z)",
        f"n = {BN.format(x='x')}\n y = Gemm <transB = 1> (n, w)\n z = Relu(n)",
        {**bn_params(8), **arrays(w=(5, 8))},
    ),
    # 3-D BN: channels are axis 1, but MatMul contracts the last axis
    "bn_3d_then_matmul": (
        "(float[2, 8, 8] x) => (float[2, 8, 5] y)",
        f"n = {BN.format(x='x')}\n y = MatMul(n, w)",
        {**bn_params(8), **arrays(w=(8, 5))},
    ),
    # the linear weight is an activation, not a constant
    "gemm_weight_not_constant": (
        "(float[2, 8] x, float[5, 8] w) => (float[2, 5] y)",
        f"n = {BN.format(x='x')}\n y = Gemm <transB = 1> (n, w)",
        bn_params(8),
    ),
}


@pytest.mark.parametrize("case", sorted(LOOK_ALIKES))
def test_look_alikes_keep_their_bn(helpers, case):
    signature, body, values = LOOK_ALIKES[case]
    model = helpers.parse(f"{HEADER}\n g {signature} <{inits(helpers, values)}> {{\n {body}\n }}")
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and dict(p.stats) == {"kept": 1}
    assert helpers.fingerprint(model) == fingerprint


def test_training_mode_bn_stays(helpers):
    values = {**bn_params(8), **arrays(w=(5, 8))}
    model = helpers.parse(f"""{HEADER}
        g (float[2, 8] x) => (float[2, 5] y) <{inits(helpers, values)}> {{
            n = BatchNormalization <training_mode = 1> (x, gamma, beta, mean, var)
            y = Gemm <transB = 1> (n, w)
        }}""")
    result, _ = helpers.run_pass(PASS, model)
    assert not result.modified and "BatchNormalization" in helpers.op_types(model)
