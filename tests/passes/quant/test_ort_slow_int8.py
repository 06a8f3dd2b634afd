"""quant::ort_slow_int8 + ort_fold_weights: few-channel k×k convs run float on ORT x86 w/o VNNI."""

from __future__ import annotations

import numpy as np
import onnx_ir as ir
from onnx import helper, numpy_helper
from support.onnx_build import model, value_info

from edgec.passes.quant import _policy
from edgec.passes.quant.ort_slow_int8 import REASON
from edgec.passes.quant.record import quantization_record


def _stem_net() -> ir.Model:
    """x[1,3,16,16] ─ stem Conv 3×3 (3→64) ─ Relu ─ dw Conv 3×3 (64, group 64) ─ Conv 3×3
    (64→64) ─ Conv 1×1 (64→64) ─ Add(·, dw) ─ y."""
    rng = np.random.default_rng(0)
    shapes = {"w0": (64, 3, 3, 3), "w1": (64, 1, 3, 3), "w2": (64, 64, 3, 3), "w3": (64, 64, 1, 1)}
    inits = [
        numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), n)
        for n, s in shapes.items()
    ]
    pads = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], pads=pads, name="stem"),
        helper.make_node("Relu", ["c0"], ["r0"], name="relu"),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], pads=pads, group=64, name="depthwise"),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], pads=pads, name="dense64"),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="pointwise"),
        helper.make_node("Add", ["c3", "c1"], ["y"], name="residual"),
    ]
    net = model(nodes, [value_info("x", [1, 3, 16, 16])], [value_info("y", [1, 64, 16, 16])], inits)
    from edgec.pass_manager import create_pass

    create_pass("cleanup::infer_shapes")(net)
    return net


def test_marks_only_few_channel_dense_kxk_convs(helpers):
    net = _stem_net()
    result, p = helpers.run_pass("quant::ort_slow_int8", net)
    assert result.modified and p.stats["convs_kept_float"] == 1
    marked = {n.name for n in net.graph if _policy.FLOAT_ACTIVATIONS_KEY in n.metadata_props}
    assert marked == {"stem"}  # not depthwise, not 64 channels, not 1×1
    helpers.assert_idempotent("quant::ort_slow_int8", net)


def test_marked_conv_runs_float_on_an_8_bit_weight_folded_at_load(helpers, tmp_path):
    import onnx
    import onnxruntime as ort

    from edgec.runtimes.ort_kernels import kernels_by_output

    net = _stem_net()
    calib = tmp_path / "calib.npy"
    np.save(calib, np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32))
    helpers.run_pass("quant::ort_slow_int8", net)
    helpers.run_pass("quant::calibrate", net, data=str(calib))
    helpers.run_pass("quant::weights", net, reduce_range=True)
    helpers.run_pass("quant::activations", net)
    stem = next(n for n in net.graph if n.name == "stem")
    assert stem.inputs[0].producer() is None  # the graph input, no Q/DQ pair
    assert stem.inputs[1].producer().op_type == "DequantizeLinear"  # the weight is int8
    before = helpers.clone(net)
    result, p = helpers.run_pass("quant::ort_fold_weights", net)
    assert result.modified and p.stats["weights_folded"] == 1
    onnx.checker.check_model(ir.to_proto(net), full_check=True)
    mul = stem.inputs[1].producer()
    assert mul.op_type == "Mul" and mul.inputs[0].producer().op_type == "Cast"
    assert mul.inputs[0].producer().inputs[0].dtype == ir.DataType.INT8
    feeds = {"x": np.load(calib)[:1]}
    np.testing.assert_allclose(
        helpers.run_ort(net, feeds)[0], helpers.run_ort(before, feeds)[0], rtol=1e-5, atol=1e-5
    )
    layers = {r["name"]: r for r in quantization_record(net, kernels_by_output(net))["layers"]}
    assert layers["stem"]["precision"] == "w8a32" and layers["stem"]["fallback"] == REASON
    assert (layers["stem"]["weight_bits_stored"], layers["stem"]["weight_bits_computed"]) == (8, 32)
    assert layers["stem"]["weight_qmax"] == 63 and not layers["stem"]["integer_kernel"]
    assert layers["dense64"]["precision"] == "w8a8" and layers["depthwise"]["precision"] == "w8a8"
    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(ir.to_proto(net).SerializeToString(), so)
    ops = [n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node]
    assert "Mul" not in ops and "Cast" not in ops  # folded into a float weight at load
    helpers.assert_idempotent("quant::ort_fold_weights", net)
