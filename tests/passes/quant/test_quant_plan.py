"""Which quant passes a precision runs, with which options (edgec/quant_plan.py)."""

from __future__ import annotations

import pytest

from edgec.config import CompileConfig
from edgec.device_profile import host_facts, load_device
from edgec.errors import UserError
from edgec.quant_plan import quant_options, quant_passes


def test_passes_per_precision_and_runtime():
    assert quant_passes("fp32", "onnxruntime") == []
    assert quant_passes("fp16", "onnxruntime") == ["quant::fp16"]
    common = ["cleanup::infer_shapes", "quant::calibrate", "quant::weights", "quant::activations"]
    assert quant_passes("w8a8", "tensorrt") == common  # other backends lower the common form
    assert quant_passes("w4a8", "onnxruntime") == [
        *common, "quant::ort_unsigned_activations", "quant::ort_gemm_split_bias",
        "quant::ort_widen_int4", "quant::ort_idle_pairs", "quant::ort_fold_weights",
        "quant::ort_index_tables",
    ]  # fmt: skip
    # ORT on x86: the slow-int8 layers are marked before calibration, on ORT only
    assert quant_passes("w8a8", "onnxruntime", slow_int8=True) == [
        "cleanup::infer_shapes", "quant::ort_slow_int8", "quant::ort_float_attention", *common[1:],
        "quant::ort_unsigned_activations", "quant::ort_gemm_split_bias",
        "quant::ort_idle_pairs", "quant::ort_fold_weights", "quant::ort_index_tables",
    ]  # fmt: skip
    assert quant_passes("w8a8", "tensorrt", slow_int8=True) == common


def test_options_follow_the_precision_the_host_and_the_user():
    config = CompileConfig(
        model="m.onnx",
        precision="w4a8",
        calib="c.npy",
        calib_count=32,
        accuracy_budget=0.5,
        passes={"quant::weights": {"block_size": 64}},
    )
    options = quant_options(config, load_device("host"))
    isa = host_facts()["isa"]
    no_vnni = host_facts()["machine"] == "x86_64" and not {"avx512_vnni", "avx_vnni"} & set(isa)
    assert options["quant::calibrate"] == {"data": "c.npy", "count": 32}
    assert options["quant::weights"] == {"bits": 4, "reduce_range": no_vnni, "block_size": 64}
    sensitivity = options["quant::sensitivity"]
    assert (sensitivity["bits"], sensitivity["block_size"], sensitivity["budget"]) == (4, 64, 0.5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"precision": "w8a8"}, "needs calibration data"),
        ({"precision": "w8a8", "calib": "c", "calib_count": 0}, "at least 1"),
        ({"precision": "fp16", "accuracy_budget": 1.0}, "--accuracy-budget"),
        ({"precision": "w4a8", "calib": "c", "accuracy_budget": 150.0}, "--accuracy-budget"),
    ],
)
def test_config_errors(values, message):
    with pytest.raises(UserError, match=message):
        CompileConfig(model="m.onnx", **values)


@pytest.mark.parametrize(("isa", "seven_bit"), [(["avx2"], True), (["avx2", "avx_vnni"], False)])
def test_weights_are_seven_bit_only_on_an_x86_host_without_vnni(monkeypatch, isa, seven_bit):
    """AVX-VNNI (no AVX-512) sums u8×s8 products in int32 like AVX-512 VNNI: full-range weights."""
    import edgec.quant_plan as plan

    facts = {**host_facts(), "machine": "x86_64", "isa": isa}
    monkeypatch.setattr(plan, "host_facts", lambda: facts)
    config = CompileConfig(model="m.onnx", precision="w8a8", calib="c.npy")
    assert quant_options(config, load_device("host"))["quant::weights"]["reduce_range"] is seven_bit


@pytest.mark.parametrize(
    ("isa", "stem_float"), [(["avx2"], True), (["avx2", "avx512f", "avx512_vnni"], False)]
)
def test_the_stem_stays_float_only_on_an_x86_host_without_vnni(monkeypatch, isa, stem_float):
    """With VNNI ORT's int8 kernel beats float on the stem: ort_slow_int8 marks no dense conv."""
    import edgec.quant_plan as plan

    facts = {**host_facts(), "machine": "x86_64", "isa": isa}
    monkeypatch.setattr(plan, "host_facts", lambda: facts)
    config = CompileConfig(model="m.onnx", precision="w8a8", calib="c.npy")
    options = quant_options(config, load_device("host"))
    assert ("quant::ort_slow_int8" not in options) is stem_float
    given = CompileConfig(
        **{**vars(config), "passes": {"quant::ort_slow_int8": {"min_channels": 9}}}
    )
    assert quant_options(given, load_device("host"))["quant::ort_slow_int8"] == {"min_channels": 9}
