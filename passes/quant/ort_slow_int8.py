"""`quant::ort_slow_int8`: keep float the layers whose ORT int8 kernel is slower than float.

    before: x ─ Conv 3×3 (3 → 8, stride 2) ─ Relu ─ Conv 3×3 (8 → 16) ─ …   (no marks)
    after:  the same graph; each such Conv carries edgec.quant.float_activations = "int8
            kernel slower than float on this CPU (ORT on x86 without VNNI)"

Without VNNI (AVX2), ONNX Runtime's `QLinearConv` for a dense k×k convolution (k > 1) over
few input channels (the high-resolution stem of EfficientViT and similar ViT hybrids) packs an
im2col buffer for a narrow u8×s8 GEMM and loses to the float NCHWc kernel: on EfficientViT-M0
at 1 thread the four stem convolutions took 1.6× as long as int8 as in float
(docs/quantization.md). Such a layer, with fewer than `min_channels` input channels per group,
is marked (`_policy.FLOAT_ACTIVATIONS_KEY`): `quant::activations` leaves its input and output
float, `quant::weights` still stores its weight in 8 (or 4) bits, `quant::ort_fold_weights`
lets ORT turn that into a float weight at load, and the manifest's layer record
(`w8a32`/`w4a32`) gives the reason. The pipeline adds this pass before calibration only for
ORT on an x86 CPU, and with VNNI it sets `min_channels` to 0 (edgec/quant_plan.py): there the
int8 stem is the faster one (7 % of the whole W8A8 model on AMD Zen 4, 14 % on SHViT-S1). A
second run finds the marks and changes nothing.

A ConvTranspose is marked too (`NO_INTEGER_KERNEL`): ORT has no integer ConvTranspose, so a
pair on its input only adds a QuantizeLinear and a DequantizeLinear around a float kernel (the
pair stays where the producer is quantized for its own sake), and with a float input
`quant::ort_fold_weights` can fold its weight (LowFormer's attention upsampling).
"""

from __future__ import annotations

import dataclasses

import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array
from edgec.passes.quant import _policy

REASON = "int8 kernel slower than float on this CPU (ORT on x86 without VNNI)"
NO_INTEGER_KERNEL = "ORT has no integer ConvTranspose kernel: float activations"


@register_pass
class OrtSlowInt8(EdgecPass):
    id = "quant::ort_slow_int8"

    @dataclasses.dataclass(frozen=True)
    class Options:
        min_channels: int = 64

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        for node in model.graph:
            marks = node.metadata_props
            if _policy.KEEP_FLOAT_KEY in marks or _policy.FLOAT_ACTIVATIONS_KEY in marks:
                continue
            if node.op_type == "ConvTranspose":
                marks[_policy.FLOAT_ACTIVATIONS_KEY] = NO_INTEGER_KERNEL
                self.stats["conv_transposes_kept_float"] += 1
            elif self._slow(node):
                marks[_policy.FLOAT_ACTIVATIONS_KEY] = REASON
                self.stats["convs_kept_float"] += 1
        return ir.passes.PassResult(model, modified=bool(self.stats.total()))

    def _slow(self, node: ir.Node) -> bool:
        """A dense (not depthwise) k×k Conv, k > 1, with few input channels per group."""
        if node.op_type != "Conv" or len(node.inputs) < 2:
            return False
        weight = const_array(node.inputs[1])
        if weight is None or weight.ndim != 4 or weight.shape[2] * weight.shape[3] == 1:
            return False
        channels_per_group = weight.shape[1]
        depthwise = channels_per_group == 1
        return not depthwise and channels_per_group < self.options.min_channels
