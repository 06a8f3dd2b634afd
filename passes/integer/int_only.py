"""`integer::int_only`: every operation between the input quantize and the output dequantize
is integer (I-ViT / I-Segmenter).

    before: input (f32) ─ Conv ─ LayerNormalization ─ MatMul ─ Softmax ─ … ─ Gemm ─► logits (f32)
    after:  input (f32) ─ QuantizeLinear (int8) ─ Cast int32
              ─ ConvInteger ─ Add(int32 bias) ─ dyadic requant (Mul, Cast, Add, BitShift, Clip, Sub)
              ─ I-LayerNorm (ReduceSum, integer Newton sqrt) ─ MatMulInteger ─ Shiftmax (BitShift)
              ─ … ─ DequantizeLinear (int32 → f32) ─► logits (f32)

The float graph runs on the calibration samples (`data`, as `quant::calibrate` reads them,
with the same ORT observer and range methods) and every float tensor gets a range (nodes that
compute from constants only, such as a resized position table, are folded first); then
`lower.py` rebuilds the graph from the integer blocks of this package. A graph with an op that
has no integer form fails before anything changes, naming every such op. The result is proved
by `checker.check_int_only`; a second run sees an integer-only graph and changes nothing.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec.errors import UserError
from edgec.pass_manager import EdgecPass, create_pass, register_pass
from edgec.passes.integer.checker import check_int_only
from edgec.passes.integer.emit import INT32, Emitter, QTensor
from edgec.passes.integer.lower import OPERAND_BITS, Lowering, lower_graph, unsupported_ops
from edgec.passes.quant.calibrate import measure_ranges, model_preprocessing
from edgec.passes.quant.ranges import METHODS
from edgec.preprocess import read_model_inputs

_FOLD_ALL = {"input_size_limit": 2**62, "output_size_limit": 2**62}


@register_pass
class IntOnly(EdgecPass):
    id = "integer::int_only"

    @dataclasses.dataclass(frozen=True)
    class Options:
        data: str = ""  # --calib
        count: int = 32  # --calib-count
        method: str = "minmax"
        percentile: float = 99.999
        bins: int = 2048

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        if check_int_only(model).int_only:
            return ir.passes.PassResult(model, modified=False)
        missing = unsupported_ops(graph)
        if missing:
            listed = "; ".join(f"{op}: {', '.join(names[:3])}" for op, names in missing.items())
            raise UserError(
                f"no integer-only form for: {listed}",
                "compile this model with --precision w8a8 (integer kernels where they exist), "
                "or replace these ops in the model (docs/integer.md lists the ops that lower)",
            )
        if self.options.method not in METHODS:
            raise UserError(
                f"unknown calibration method {self.options.method!r}",
                f"choose one of: {', '.join(METHODS)}",
            )
        if not self.options.data:
            raise UserError(
                "integer-only compilation needs calibration data",
                "pass --calib with a folder of images, an .npz of uint8 images, or an "
                ".npz/.npy of model-ready float32 tensors",
            )
        # constant-only subgraphs (a position table resized to the input's grid) fold whatever
        # their size: the integer graph cannot evaluate them in float at run time
        create_pass("cleanup::fold_constants", _FOLD_ALL)(model)
        ranges = self._ranges(model)
        model.graph = self._integer_graph(graph, ranges)
        for node in model.graph:
            self.stats[f"op_{node.op_type}"] += 1
        return ir.passes.PassResult(model, modified=True)

    def _ranges(self, model: ir.Model) -> dict[str, tuple[float, float]]:
        """Every float tensor's range on the calibration samples (quant::calibrate's way)."""
        opts = self.options
        samples = read_model_inputs(
            Path(opts.data), model_preprocessing(model), opts.count, "calibration data"
        )
        names = [v.name for v in model.graph.inputs]
        names += [o.name for n in model.graph for o in n.outputs if o.name]
        return measure_ranges(model, samples, names, opts.method, opts.percentile, opts.bins)

    def _integer_graph(self, graph: ir.Graph, ranges) -> ir.Graph:
        inputs = [ir.Value(name=v.name, type=v.type, shape=v.shape) for v in graph.inputs]
        new = ir.Graph(
            inputs, [], nodes=[], opset_imports=dict(graph.opset_imports), name=graph.name
        )
        em = Emitter(new)
        low = Lowering(em, ranges)
        for old, value in zip(graph.inputs, inputs, strict=True):
            scale = low.scale(old, OPERAND_BITS)
            quantized = em.tape.op(
                "QuantizeLinear",
                [value, _float(em, scale), em.const(0, np.int8, hint="zero")],
                name="input_quantize",
            )
            low.values[id(old)] = QTensor(em.cast(quantized, INT32), scale, OPERAND_BITS)
        lower_graph(low, graph)
        for old in graph.outputs:
            q = low.q(old)
            value = q.value if q.value.dtype == INT32 else em.cast(q.value, INT32)
            out = em.tape.op(
                "DequantizeLinear",
                [value, _float(em, q.scale), em.const(0, np.int32, hint="zero")],
                name="output_dequantize",
            )
            out.name, out.type, out.shape = old.name, old.type, old.shape
            new.outputs.append(out)
        return new


def _float(em: Emitter, scale: float) -> ir.Value:
    """A boundary node's float32 scale (the only float constants of the graph)."""
    value = ir.Value(name=em.name("scale"), const_value=ir.tensor(np.float32(scale)))
    em.graph.register_initializer(value)
    return value
