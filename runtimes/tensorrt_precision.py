"""What each precision word becomes in TensorRT, and the honest realisation of W4A8.

| asked  | the TensorRT graph                                      | realised |
|--------|---------------------------------------------------------|----------|
| fp32   | the graph as given                                      | fp32     |
| fp16   | every float tensor fp16 (strongly typed)                | fp16     |
| w8a8   | symmetric int8 Q/DQ (activations, weights), float bias, rest fp16 | w8a8 |
| w4a16  | int4 block-wise weight-only DQ on MatMul/Gemm, rest fp16 | w4a16   |
| w4a8   | does not exist on Ampere/Jetson (NVIDIA's W4A8 is int4 weights × FP8 activations, Ada
           or newer, TensorRT-LLM)                                   | w8a8 or w4a16 |

`choose_w4a8` picks W4A16 only where int4 weight-only can cover most of the weights and
weight traffic dominates (MatMul/Gemm weights outweigh the activations they read); vision
models at batch 1 read far more activation than weight, and their convolutions cannot be
int4 in TensorRT, so they get W8A8. `realise` reads the graph: a precision the graph does not
hold (w8a8 asked of a float graph) is an error, never a label.
"""

from __future__ import annotations

import dataclasses

import onnx_ir as ir

from edgec.errors import UserError
from edgec.runtimes.tensorrt_qdq import LAYERS, census, const

PRECISIONS = ("fp32", "fp16", "w8a8", "w4a16", "w4a8")
GPU_PRECISION_NEEDED = {"fp16": "fp16", "w8a8": "int8", "w4a16": "fp16"}


@dataclasses.dataclass(frozen=True)
class Realisation:
    requested: str
    realised: str
    notices: tuple[str, ...] = ()


def gpu_precisions(device) -> tuple[str, ...]:
    """The precisions the device's GPU lists (empty without a profile or GPU)."""
    units = getattr(device, "compute_units", ()) or ()
    return tuple(p for u in units if u.kind == "gpu" for p in u.precisions)


def choose_w4a8(model: ir.Model, device) -> Realisation:
    """W8A8 or W4A16 for a W4A8 request, with the reason (and what FP8 would need)."""
    name = getattr(device, "name", "this target")
    weights = _weight_elements(model)
    int4able, activations = weights["matmul"], weights["matmul_activation"]
    total = weights["matmul"] + weights["conv"]
    share = int4able / total if total else 0.0
    if share >= 0.5 and int4able > activations:
        realised = "w4a16"
        why = (
            f"MatMul/Gemm hold {share:.0%} of the weights and read {activations} activation "
            f"elements against {int4able} weight elements: weight traffic dominates"
        )
    else:
        realised = "w8a8"
        why = (
            f"int4 weight-only would cover {share:.0%} of the weights (TensorRT has no int4 "
            f"convolution) and the activations read ({activations} elements) outweigh those "
            f"weights ({int4able}): int8 activations pay more"
        )
    notices = [
        f"W4A8 as asked (int4 weights × int8 activations) does not exist in TensorRT on {name}; "
        f"realised as {realised.upper()}: {why}"
    ]
    if "fp8" in gpu_precisions(device):
        notices.append(
            f"{name} has FP8: NVIDIA's W4A8 (int4 block weights × FP8 activations, AWQ) needs "
            "TensorRT-LLM or ModelOpt's W4A8_AWQ recipe; edgec does not emit FP8 Q/DQ"
        )
    return Realisation("w4a8", realised, tuple(notices))


def _weight_elements(model: ir.Model) -> dict[str, int]:
    out = {"matmul": 0, "conv": 0, "matmul_activation": 0}
    for node in model.graph:
        if node.op_type not in LAYERS or len(node.inputs) < 2:
            continue
        weight = _weight_size(node.inputs[1])
        if weight is None:
            continue
        if node.op_type in ("MatMul", "Gemm"):
            out["matmul"] += weight
            shape = node.inputs[0].shape
            if shape is not None and all(isinstance(d, int) for d in shape):
                out["matmul_activation"] += int(_prod(shape))
        else:
            out["conv"] += weight
    return out


def _weight_size(value: ir.Value | None) -> int | None:
    array = const(value)
    if array is None and value is not None and value.producer() is not None:
        producer = value.producer()
        if producer.op_type == "DequantizeLinear":
            array = const(producer.inputs[0])
    return None if array is None else int(array.size)


def _prod(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def realise(requested: str, model: ir.Model, device) -> Realisation:
    """Check `requested` against the device and what `model` holds; W4A8 is realised honestly."""
    if requested not in PRECISIONS:
        raise UserError(
            f"TensorRT has no precision {requested!r}", f"choose one of: {', '.join(PRECISIONS)}"
        )
    counts = census(model)
    quantized = counts["w8a8"] + counts["w8a16"] + counts["w4a16"] + counts["w4a8"]
    if requested == "w4a8":
        holds_int4 = counts["w4a16"] + counts["w4a8"] > 0
        result = (
            Realisation(
                "w4a8",
                "w4a16",
                (
                    "W4A8 as asked (int4 weights × int8 activations) does not build in "
                    "TensorRT (no INT4×INT8 GEMM); the graph's int4 weights are kept and "
                    "their activations run in fp16: realised as W4A16",
                ),
            )
            if holds_int4
            else choose_w4a8(model, device)
        )
    else:
        result = Realisation(requested, requested)
    needs_quantized = result.realised in ("w8a8", "w4a16")
    if needs_quantized and not quantized:
        raise UserError(
            f"precision {requested} was asked for TensorRT, but the graph holds no quantized "
            "layers (no int8/int4 DequantizeLinear on Conv/MatMul/Gemm weights)",
            f"run edgec's quantization pipeline for {result.realised} first, or choose fp16",
        )
    if not needs_quantized and quantized:
        raise UserError(
            f"precision {requested} was asked, but the graph holds {quantized} quantized layers",
            "choose w8a8 or w4a16 to match the graph, or give the float graph",
        )
    if result.realised == "w8a8" and counts["w4a16"] + counts["w4a8"]:
        raise UserError(
            "w8a8 was asked, but the graph holds int4 weights", "choose w4a16 (or w4a8)"
        )
    wanted = GPU_PRECISION_NEEDED.get(result.realised)
    have = gpu_precisions(device)
    if wanted and have and wanted not in have:
        raise UserError(
            f"{getattr(device, 'name', 'the target')}'s GPU has no fast {wanted} "
            f"(it lists {', '.join(have)}), so {result.realised} would not run as claimed",
            "choose a precision the target lists (`edgec targets --json`)",
        )
    return result
