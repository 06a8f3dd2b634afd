"""Quantization passes (docs/quantization.md): calibration, weights, activations, realisations."""

from edgec.passes.quant import (
    activations,
    calibrate,
    fp16,
    ort_float_attention,
    ort_fold_weights,
    ort_gemm_split_bias,
    ort_idle_pairs,
    ort_index_tables,
    ort_slow_int8,
    ort_unsigned_activations,
    ort_widen_int4,
    sensitivity,
    weights,
)

__all__ = [
    "activations",
    "calibrate",
    "fp16",
    "ort_float_attention",
    "ort_fold_weights",
    "ort_gemm_split_bias",
    "ort_idle_pairs",
    "ort_index_tables",
    "ort_slow_int8",
    "ort_unsigned_activations",
    "ort_widen_int4",
    "sensitivity",
    "weights",
]
