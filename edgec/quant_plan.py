"""How `edgec compile --precision fp16|w8a8|w4a8|int-only` runs: the passes, options, checks.

The pipeline (edgec/pipeline.py) runs the device's passes, then `quant_passes(...)` with
`quant_options(...)`, verifies the result against PyTorch with `QUANT_BOUNDS` (cosine
similarity, never the fp32 bound), and records `quantization_manifest(...)`: what every layer
holds and which ONNX Runtime kernel runs it, plus `fidelity(...)` of the quantized graph
against the float graph on the calibration samples.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import onnx_ir as ir

from edgec.config import QUANTIZED, CompileConfig
from edgec.device_profile import DeviceProfile, host_facts

# Shape inference first: the quant passes need every value's dtype (passes before may have
# created values without one).
_COMMON = ["cleanup::infer_shapes", "quant::calibrate", "quant::weights", "quant::activations"]
# The runtime's realisation of the common form (docs/quantization.md, "realisation"):
# ort_idle_pairs and ort_fold_weights after every pass that shapes ORT's QDQ groups.
_ORT = ["quant::ort_unsigned_activations", "quant::ort_gemm_split_bias"]
_ORT_END = ["quant::ort_idle_pairs", "quant::ort_fold_weights", "quant::ort_index_tables"]
_REALISATION = {
    ("w8a8", "onnxruntime"): [*_ORT, *_ORT_END],
    ("w4a8", "onnxruntime"): [*_ORT, "quant::ort_widen_int4", *_ORT_END],
}
# Quantized graphs are judged by cosine similarity (ARCHITECTURE.md, verification policy);
# this catches a collapse on the verification images, the task metric is `fidelity`.
QUANT_BOUNDS = {"bound": None, "min_cosine": 0.9}


def quant_passes(precision: str, runtime: str, slow_int8: bool = False) -> list[str]:
    """The quant pass ids for `precision` on `runtime` ([] for fp32).

    `slow_int8`: ORT on x86 (with or without VNNI), where `quant::ort_slow_int8` and
    `quant::ort_float_attention` give float activations to the layers whose int8 kernels are
    slower than float (before calibration: it changes what is quantized). On every ORT target
    `quant::ort_idle_pairs` removes the pairs no integer kernel uses and
    `quant::ort_fold_weights` lets ORT fold the quantized weights of the layers it runs in
    float (those, and any whose QDQ group ORT cannot fuse) to float at load.
    """
    if precision == "fp16":
        return ["quant::fp16"]
    if precision == "int-only":  # from the float graph: it needs ranges W8A8 does not measure
        return ["cleanup::infer_shapes", "integer::int_only"]
    if precision not in QUANTIZED:
        return []
    realisation = _REALISATION.get((precision, runtime), [])
    passes = [*_COMMON, *realisation]
    if slow_int8 and realisation:
        at = passes.index("quant::calibrate")
        passes[at:at] = ["quant::ort_slow_int8", "quant::ort_float_attention"]
    return passes


def _with_sensitivity(passes: list[str]) -> list[str]:
    """The sensitivity analysis goes between calibration and the weights."""
    at = passes.index("quant::calibrate") + 1
    return [*passes[:at], "quant::sensitivity", *passes[at:]]


def quant_options(config: CompileConfig, device: DeviceProfile) -> dict[str, dict[str, Any]]:
    """Options of the quant passes for this compile (user `--pass-option`s win)."""
    if config.precision == "int-only":
        given = config.passes.get("integer::int_only", {})
        return {"integer::int_only": {"data": config.calib, "count": config.calib_count, **given}}
    if config.precision not in QUANTIZED:
        return {}
    options = {
        "quant::calibrate": {"data": config.calib, "count": config.calib_count},
        "quant::weights": {
            "bits": 4 if config.precision == "w4a8" else 8,
            "reduce_range": _needs_reduce_range(device),
        },
    }
    if _int8_stem_pays(device):
        options["quant::ort_slow_int8"] = {"min_channels": 0}
    for pass_id, given in config.passes.items():
        options.setdefault(pass_id, {}).update(given)
    if config.accuracy_budget is not None:  # it must quantize as the passes after it will
        weights, activations = options["quant::weights"], options.get("quant::activations", {})
        mirrored = {k: weights[k] for k in ("bits", "block_size", "reduce_range") if k in weights}
        if "symmetric" in activations:
            mirrored["symmetric"] = activations["symmetric"]
        given = options.get("quant::sensitivity", {})
        options["quant::sensitivity"] = {
            "data": config.calib,
            "budget": config.accuracy_budget,
            **mirrored,
            **given,
        }
    return options


def _ort_on_x86(device: DeviceProfile) -> bool:
    """The target is this machine, ONNX Runtime, on an x86 CPU."""
    if device.runtime != "onnxruntime" or device.latency != "measured":
        return False
    return host_facts()["machine"] in ("x86_64", "AMD64", "i686")


# ISA extensions whose u8×s8 dot product (vpdpbusd) sums in int32: AVX-512 VNNI and the
# VEX-coded AVX-VNNI of CPUs without AVX-512 (Alder Lake and later); ORT's MLAS uses both
_VNNI = ("avx512_vnni", "avx_vnni")


def _has_vnni() -> bool:
    return any(f in host_facts()["isa"] for f in _VNNI)


def _needs_reduce_range(device: DeviceProfile) -> bool:
    """ORT on an x86 host without VNNI: u8×s8 products are summed in saturating int16."""
    return _ort_on_x86(device) and not _has_vnni()


def _int8_stem_pays(device: DeviceProfile) -> bool:
    """ORT on an x86 host with VNNI: int8 beats float on the few-channel stem convolutions.

    Measured on EfficientViT-M0's W8A8 at 1 thread (docs/quantization.md): the int8 stem made
    the model 7 % faster on AMD Zen 4 (AVX-512 VNNI); on an Intel Xeon (AVX-512 VNNI, AMX)
    0–2 % faster with today's passes (11 % slower there before the attention core ran float);
    without VNNI (AVX2) the stem convs took 1.6× their float time.
    """
    return _ort_on_x86(device) and _has_vnni()


def quantization_manifest(model: ir.Model, runtime: str) -> dict[str, Any]:
    """The per-layer record of `model`, with ORT's kernels when the runtime is ORT."""
    from edgec.passes.quant.record import quantization_record

    kernels = None
    if runtime == "onnxruntime":
        from edgec.runtimes.ort_kernels import kernels_by_output

        kernels = kernels_by_output(model)
    return quantization_record(model, kernels)


def fidelity(float_model: ir.Model, quant_model: ir.Model, samples) -> dict:
    """Quantized vs float graph on `samples` (`_observe.Samples`): top-1 agreement and output
    cosine similarity, per sample."""
    from edgec.eval_metrics import cosines
    from edgec.passes.quant._observe import outputs

    ref, got = outputs(float_model, samples), outputs(quant_model, samples)
    cos = cosines(ref, got)
    result = {"samples": len(samples), "where": "calibration samples (in-sample)"}
    result["cosine_mean"] = round(float(cos.mean()), 6)
    result["cosine_min"] = round(float(cos.min()), 6)
    if ref.ndim == 2:  # logits: classification agreement
        result["top1_agreement"] = round(float((ref.argmax(1) == got.argmax(1)).mean()), 4)
    return result


def quantize(model: ir.Model, device: DeviceProfile, config: CompileConfig, on_pass=None):
    """Run the quant passes on `model` in place: (pass records, the manifest's quantization)."""
    import edgec.passes  # noqa: F401  (registers every pass)
    from edgec.pass_manager import run_passes
    from edgec.passes.quant.calibrate import read_samples

    float_model = ir.serde.deserialize_model(ir.serde.serialize_model(model))
    options = quant_options(config, device)
    passes = quant_passes(config.precision, device.runtime, _ort_on_x86(device))
    if config.accuracy_budget is not None:
        passes = _with_sensitivity(passes)
    records = run_passes(model, passes, options, on_pass=on_pass)
    if config.precision == "fp16":
        record: dict[str, Any] = {"float16_fallbacks": _float16_fallbacks(model, device)}
    elif config.precision == "int-only":
        record = _int_only_record(model, options)
    else:
        record = quantization_manifest(model, device.runtime)
        record["weights"] = options["quant::weights"]
        record["calibration"] = options["quant::calibrate"]
    if config.calib:
        samples = read_samples(Path(config.calib), float_model, config.calib_count, "--calib")
        record["fidelity_vs_float"] = fidelity(float_model, model, samples)
    return records, record


def _int_only_record(model: ir.Model, options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The checker's proof that the graph is integer-only, with the ops ONNX Runtime runs."""
    from edgec.passes.integer.checker import check_int_only

    report = check_int_only(model)
    if not report.int_only:  # the pass must never hand back a graph with float inside
        raise AssertionError(f"integer::int_only left float work inside the region: {report}")
    return {"int_only": report.to_dict(), "calibration": options["integer::int_only"]}


def _float16_fallbacks(model: ir.Model, device: DeviceProfile) -> dict[str, list[str]] | None:
    """Float16 nodes ORT's CPU EP runs in float32 between Casts (None for other runtimes)."""
    if device.runtime != "onnxruntime":
        return None
    from edgec.runtimes.ort import float16_fallbacks

    return float16_fallbacks(model)
