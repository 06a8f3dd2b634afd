"""Which peak an estimate uses per precision, layout kernels' own memory scale, and what a
whole-axis reduction costs."""

import dataclasses

import pytest
from onnx import helper
from support.onnx_build import model, value_info

from edgec.cost_model.hardware import hardware_for
from edgec.cost_model.kernels import group_kernels
from edgec.cost_model.roofline import kernel_terms
from edgec.device_profile import Peak, load_device


def _with_npu_peak(device: str, precision: str, value: float, unit_precisions):
    profile = load_device(device)
    units = []
    for unit in profile.compute_units:
        if unit.kind == "npu":
            peak = Peak(precision=precision, value=value, unit="TOPS", source="test", trust="V")
            unit = dataclasses.replace(unit, peaks=(peak,), precisions=tuple(unit_precisions))
        units.append(unit)
    return dataclasses.replace(profile, compute_units=tuple(units))


def test_sixteen_bit_runs_at_half_the_int8_rate():
    npu = _with_npu_peak("galaxy-s24", "int8", 40.0, ["int8", "fp16"])
    assert hardware_for(npu, "w8a8").peak_tflops == 40.0
    fp16 = hardware_for(npu, "fp16")
    assert fp16.peak_tflops == 20.0 and "halved for fp16" in fp16.peak_note


def test_an_unstated_figure_counts_int8_ops_only_on_a_unit_with_int8():
    with_int8 = _with_npu_peak("iphone-15-pro", "unstated", 30.0, ["fp16", "int8"])
    assert hardware_for(with_int8, "fp16").peak_tflops == 15.0
    w8a8 = hardware_for(with_int8, "w8a8")
    assert w8a8.peak_tflops == 30.0 and "counted as int8" in w8a8.peak_note
    fp16_only = _with_npu_peak("iphone-12", "unstated", 30.0, ["fp16"])
    assert hardware_for(fp16_only, "fp16").peak_tflops == 30.0


def test_a_sparse_int8_gpu_figure_gives_a_dense_fp16_rate():
    orin = load_device("jetson-agx-orin")  # 171 TOPS sparse int8 → 85.5 dense → 42.75 fp16
    assert hardware_for(orin, "fp16").peak_tflops == pytest.approx(42.75)
    assert hardware_for(load_device("nvidia-a100"), "fp16").peak_tflops == 312.0  # its own


def test_layout_kernels_move_their_bytes_at_the_layout_scale():
    """A Transpose of [1,64,32] fp16: 2 × 2048 elements × 2 bytes, timed at layout_scale."""
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Transpose", ["r"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Relu", ["t"], ["y"]),
    ]
    net = model(nodes, [value_info("x", [1, 64, 32])], [value_info("y", [1, 32, 64])])
    kernels = group_kernels(net)
    (copy,) = [k for k in kernels if k.cls == "layout"]
    terms = kernel_terms(copy, "npu", 10.0, 100.0, 2, 2)
    assert terms.layout and terms.memory_s == pytest.approx(2 * 2048 * 2 / 100e9)
    assert terms.seconds(1.0, 1.0, 0.0, 5.0) == pytest.approx(5 * terms.memory_s)
    assert terms.seconds(1.0, 2.0, 0.0) == pytest.approx(2 * terms.memory_s)  # none: memory
    other = kernel_terms(kernels[0], "npu", 10.0, 100.0, 2, 2)
    assert not other.layout and other.seconds(1.0, 1.0, 0.0, 5.0) == other.seconds(1, 1, 0)


def test_a_whole_axis_reduction_costs_reduction_launches_and_a_windowed_pool_one():
    """Squeeze-excite: GlobalAveragePool and ReduceMean reduce whole axes; MaxPool does not."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=1),
        helper.make_node("MaxPool", ["x"], ["p"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    outputs = [value_info("g", [1, 8, 1, 1]), value_info("m", [1, 8, 1, 1])]
    net = model(nodes, [value_info("x", [1, 8, 4, 4])], [*outputs, value_info("p", [1, 8, 2, 2])])
    kernels = {k.op_types[0]: k for k in group_kernels(net)}
    assert kernels["GlobalAveragePool"].reduces and kernels["ReduceMean"].reduces
    assert not kernels["MaxPool"].reduces
    gap, pool = (
        kernel_terms(kernels[op], "npu", 10.0, 100.0, 2, 2)
        for op in ("GlobalAveragePool", "MaxPool")
    )
    roof = max(gap.compute_s, gap.memory_s)
    assert gap.seconds(1.0, 1.0, 20.0, None, 5.0) == pytest.approx(roof + 5 * 20e-6)
    assert gap.seconds(1.0, 1.0, 20.0) == pytest.approx(roof + 20e-6)  # default: one launch
    pool_roof = max(pool.compute_s, pool.memory_s)
    assert pool.seconds(1.0, 1.0, 20.0, None, 5.0) == pytest.approx(pool_roof + 20e-6)
