"""speed::fold_dw_residual — fold `x + DepthwiseConv(x)` into the depthwise kernel.

A depthwise conv with stride 1, dilation 1, odd kernel and 'same' zero padding applied to
`x`, added back to `x`, equals the same conv with 1 added to the centre tap of every
channel's kernel (the identity is a depthwise kernel that is 1 at the centre)::

    before:  X ─┬─ Conv(W[C,1,k,k], B, group=C, pads=k//2) ─ Add ─ Y
                └─────────────────────────────────────────────┘
    after:   X ── Conv(W', B, group=C, pads=k//2) ── Y     W'[:, 0, k//2, k//2] = W[...] + 1

EfficientViT's `dw0`/`dw1` residuals and the subsample residuals have this form. Exact up to
fp rounding (w·x + x → (w+1)·x). The conv must be the Add's only reader; anything else
(strided, dilated, grouped-but-not-depthwise, asymmetric padding, broadcasting Add, weights
that are not constants) is left alone. ORT fuses the residual Add into its NCHWc conv as a
'Sum' input, so the gain is one fewer tensor read per fused conv.
"""

from __future__ import annotations

import onnx_ir as ir

from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes._graph import const_array, drop_if_unused
from edgec.passes.speed._util import (
    is_conv_same_depthwise,
    new_initializer,
    only_consumer,
    static_shape,
)


@register_pass
class FoldDepthwiseResidual(EdgecPass):
    """Fold `x + dwconv(x)` (stride 1, same padding) into the conv's centre tap."""

    id = "speed::fold_dw_residual"

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        modified = False
        for add in list(graph):
            if add.op_type != "Add" or add.domain not in ("", "ai.onnx") or len(add.inputs) != 2:
                continue
            a, b = add.inputs
            for x, y in ((a, b), (b, a)):
                conv = y.producer() if y is not None else None
                if conv is None or conv.inputs[0] is not x or not is_conv_same_depthwise(conv):
                    continue
                if only_consumer(y) is not add:
                    continue
                xs, ys = static_shape(x), static_shape(y)
                if xs is None or xs != ys or len(xs) != 4:
                    continue
                w = const_array(conv.inputs[1])
                if w.dtype.kind != "f" or xs[1] != w.shape[0]:
                    continue
                kh, kw = w.shape[2] // 2, w.shape[3] // 2
                w2 = w.copy()
                w2[:, 0, kh, kw] += w.dtype.type(1)
                old_w = conv.inputs[1]
                w_val = new_initializer(graph, f"{old_w.name}_plus_identity", w2)
                inputs = [x, w_val] + ([conv.inputs[2]] if len(conv.inputs) > 2 else [])
                attrs = {k: v.value for k, v in conv.attributes.items()}
                new = ir.node("Conv", inputs, attributes=attrs, name=conv.name)
                out, old_out = new.outputs[0], add.outputs[0]
                out.shape, out.type = old_out.shape, old_out.type
                graph.insert_before(add, new)
                was_output, name = old_out.is_graph_output(), old_out.name
                ir.convenience.replace_all_uses_with(old_out, out, replace_graph_outputs=True)
                graph.remove([add, conv], safe=True)
                if was_output:
                    old_out.name = None
                    out.name = name
                drop_if_unused(old_w)
                self.stats["dw_residuals_folded"] += 1
                modified = True
                break
        return ir.passes.PassResult(model, modified)
