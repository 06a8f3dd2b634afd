"""Which ops a runtime runs inside the kernel before them: one rule set per kind of runtime.

`kernels.group_kernels` asks a `FusionRules` whether an op joins the kernel that produced its
latest input (an *epilogue*), whether MatMul(Q,Kᵀ) → Softmax → MatMul(·,V) is one attention
kernel, and whether a Transpose is folded into the MatMul that reads it.

ACCELERATOR — TensorRT: any elementwise op fuses into a conv, matmul, attention, norm or
elementwise kernel; attention is one FlashAttention-style kernel (TensorRT's fused MHA).

NPU_LAYERWISE — Core ML (Neural Engine) and TFLite/QNN (Hexagon): the same epilogues, but
attention runs layer by layer: Q·Kᵀ (with its scale) and P·V are kernels of their own and the
score matrix goes to memory and back through Softmax (neither converter emits a fused attention
op for these graphs; Apple's ANE guidance is to split heads precisely because of that traffic).
TORCHSCRIPT_GPU — a traced TorchScript model on a CUDA GPU (how EfficientViT-M, SHViT and
MobileViT papers time GPU throughput, BN folded): convolutions and matmuls are cuDNN/cuBLAS
calls that take no epilogue, the fuser joins chains of pointwise ops into one kernel, and
attention is MatMul, Softmax, MatMul. edgec emits no TorchScript; the rules exist so that the
calibration (`bench/estimator.py`) reads such a published measurement as the kernels it ran,
and the constants it fits describe the GPU, not PyTorch's launch pattern.

`rules_for(runtime)` picks the set a runtime uses.

ORT_CPU — ONNX Runtime's CPU execution provider at ORT_ENABLE_ALL, whose graph transformers
fuse far less (onnxruntime/core/optimizer: ConvActivationFusion, ConvAddFusion/ConvMulFusion,
NCHWc Conv+Sum, MatMulAddFusion → Gemm, GemmActivationFusion, MatMulScaleFusion and
TransposeMatMulFusion → FusedMatMul, GeluFusion, the QDQ transformers → QLinearConv/
QLinearMatMul/…). So:

* conv / dwconv absorb BatchNormalization, an activation ORT's FusedConv knows (Relu, Clip,
  Sigmoid, Tanh, LeakyRelu, HardSigmoid) and a residual Add; Mul/Add by a constant;
* matmul absorbs a bias Add, a Mul/Div by a constant and the activations above;
* the Erf form of GELU (Div → Erf → Add → Mul → Mul) is one kernel, as ORT's Gelu;
* every other elementwise op is a kernel of its own (no chains), and norms absorb nothing;
* attention is three kernels: Q·Kᵀ and P·V are MatMuls of two activations (class
  `attention`, which absorbs a scale as matmul does) with a Softmax kernel between them;
* a Transpose of the last two axes whose only readers are MatMuls is free (FusedMatMul's
  transA/transB);
* QDQ graphs: DQ → op → Q is one QLinear kernel reading and writing int8 when ORT has an
  integer form of the op (`qlinear_ops`) and the group is complete (`ort_qdq.int8_nodes`:
  ORT's selector rules): the Q joins the kernel before it, the DQ costs nothing; around any
  other op (LayerNorm, GELU, HardSwish, Div, …, or a Conv whose output is also read by a
  float op) the DQ and the Q are kernels of their own and the op runs in float, a weight DQ
  included (ORT never folds one). A kernel whose output is quantized takes no further
  epilogue (a residual Add after it is a QLinearAdd of its own).

Before (ONNX nodes, ORT_CPU):  Conv → Relu → Mul(x, y) → Add(·, 1)
After (kernels):  [conv: Conv+Relu]  [elementwise: Mul]  [elementwise: Add]
"""

from __future__ import annotations

import dataclasses

__all__ = [
    "ACCELERATOR",
    "NPU_LAYERWISE",
    "ORT_CPU",
    "TORCHSCRIPT_GPU",
    "FusionRules",
    "rules_for",
]

_ANY_ELEMENTWISE = None  # marker: the class absorbs every elementwise op


@dataclasses.dataclass(frozen=True)
class FusionRules:
    """What one kind of runtime fuses; see the module docstring."""

    name: str
    # kernel class → elementwise ops it absorbs (None: every elementwise op)
    epilogue: dict[str, frozenset[str] | None]
    # kernel class → ops it absorbs only when their other operands are constants (bias, scale)
    with_constant: dict[str, frozenset[str]] = dataclasses.field(default_factory=dict)
    sole_reader: bool = False  # an epilogue fuses only when nothing else reads its input
    flash_attention: bool = True
    transpose_into_matmul: bool = False
    gelu_pattern: bool = False
    # ops ONNX Runtime's QDQ transformers run on int8 (QLinearConv, QLinearMatMul, QGemm,
    # QLinearAdd, …, and data movement with its DQ/Q dropped); empty: no QDQ handling
    qlinear_ops: frozenset[str] = frozenset()

    def absorbs(self, kernel_cls: str, op: str, constant_operands: bool) -> bool:
        """Whether a kernel of `kernel_cls` takes elementwise `op` as its epilogue."""
        if constant_operands and op in self.with_constant.get(kernel_cls, ()):
            return True
        if kernel_cls not in self.epilogue:
            return False
        allowed = self.epilogue[kernel_cls]
        return allowed is None or op in allowed


ACCELERATOR = FusionRules(
    "accelerator",
    {c: _ANY_ELEMENTWISE for c in ("conv", "dwconv", "matmul", "attention", "norm", "elementwise")},
)
NPU_LAYERWISE = dataclasses.replace(ACCELERATOR, name="npu-layerwise", flash_attention=False)
TORCHSCRIPT_GPU = FusionRules(
    "torchscript-gpu", {"elementwise": _ANY_ELEMENTWISE}, flash_attention=False
)
_BY_RUNTIME = {
    "coreml": NPU_LAYERWISE,
    "tflite": NPU_LAYERWISE,
    "qnn": NPU_LAYERWISE,
    "onnxruntime-qnn": NPU_LAYERWISE,  # ONNX Runtime's QNN EP: the same HTP backend
    "torchscript": TORCHSCRIPT_GPU,
}


def rules_for(runtime: str) -> FusionRules:
    """The fusion rules of a runtime other than the host's ORT (ACCELERATOR unless listed)."""
    return _BY_RUNTIME.get(runtime, ACCELERATOR)


_FUSED_ACTIVATIONS = frozenset({"Relu", "Clip", "Sigmoid", "Tanh", "LeakyRelu", "HardSigmoid"})
_CONV_EPILOGUE = _FUSED_ACTIVATIONS | {"BatchNormalization", "Add", "Sum"}
_SCALE_OR_BIAS = frozenset({"Add", "Mul", "Div"})
_QLINEAR = frozenset({
    "Conv", "MatMul", "Gemm", "Add", "Mul", "AveragePool", "GlobalAveragePool", "MaxPool",
    "Sigmoid", "LeakyRelu", "Softmax", "Concat", "Resize", "Where", "Relu", "Clip",
    "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Flatten", "Gather", "Split", "Slice",
})  # fmt: skip
ORT_CPU = FusionRules(
    "onnxruntime-cpu",
    {"conv": _CONV_EPILOGUE, "dwconv": _CONV_EPILOGUE, "matmul": _FUSED_ACTIVATIONS},
    with_constant={c: _SCALE_OR_BIAS for c in ("conv", "dwconv", "matmul", "attention")},
    sole_reader=True,
    flash_attention=False,
    transpose_into_matmul=True,
    gelu_pattern=True,
    qlinear_ops=_QLINEAR,
)
