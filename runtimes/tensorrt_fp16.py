"""fp16 graphs for TensorRT's strongly typed mode, where the ONNX types are the precision.

    before:  x:f32 → Conv(W:f32) → Relu → … → y:f32
    after:   x:f32 → Cast(f16) → Conv(W:f16) → Relu → … → Cast(f32) → y:f32

Every float32 tensor becomes float16 (weights, activations, Q/DQ scales, Constant and Cast
targets) by ONNX Runtime's own converter (`onnxruntime.transformers.float16`, the one Olive
uses), with the graph inputs and outputs kept float32 behind Casts so callers feed what they
fed before. Ops whose schemas have no float16 form stay float32 between Casts (the converter's
block list). Q/DQ with float16 scales need opset 19 (int4 needs 21), so `raise_opset` lifts
the opset import first; the ops these graphs hold mean the same from 18 to 21.
"""

from __future__ import annotations

import onnx
import onnx_ir as ir

from edgec.runtimes.tensorrt_qdq import FOUR_BIT

QDQ = ("QuantizeLinear", "DequantizeLinear")
OPSET_FP16_SCALES = 19
OPSET_INT4 = 21


def needed_opset(model: ir.Model) -> int:
    """The lowest default-domain opset the TensorRT graph of `model` needs."""
    opset = model.opset_imports.get("", 1)
    for node in model.graph:
        if node.op_type in QDQ and node.domain == "":
            opset = max(opset, OPSET_FP16_SCALES)
            if any(v is not None and v.dtype in FOUR_BIT for v in (*node.inputs, *node.outputs)):
                return max(opset, OPSET_INT4)
    return opset


def raise_opset(model: ir.Model, opset: int) -> None:
    """Declare `opset` for the default domain (IR version 10 at least, which opset 21 needs)."""
    if opset > model.opset_imports.get("", 1):
        model.opset_imports[""] = opset
        model.graph.opset_imports[""] = opset
        model.ir_version = max(model.ir_version or 0, 10)


def to_float16(model: ir.Model) -> ir.Model:
    """A float16 copy of `model` (float32 I/O kept), shapes inferred."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    proto = ir.to_proto(model)
    proto = onnx.shape_inference.infer_shapes(proto, data_prop=True)
    converted = convert_float_to_float16(proto, keep_io_types=True, disable_shape_infer=True)
    result = ir.from_proto(converted)
    result.graph.sort()  # the converter appends its input Casts at the end
    return result
