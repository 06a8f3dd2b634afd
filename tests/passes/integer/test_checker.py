"""The integer-only checker on hand-built graphs: clean ones pass, every planted float is named."""

import onnx
import pytest
from onnx import TensorProto, helper
from support.onnx_build import model, value_info

from edgec.cli import main
from edgec.passes.integer.checker import check_int_only

_SCALE = helper.make_tensor("s", TensorProto.FLOAT, [], [0.05])
_ZERO = helper.make_tensor("z", TensorProto.INT8, [], [0])
_TWO = helper.make_tensor("two", TensorProto.INT32, [], [2])
_HALF = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])


def _integer_graph(middle, extra_inits=()):
    """x (float) → QuantizeLinear → Cast int32 → `middle` nodes (m → r) → Cast int8 → DQ → y."""
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"], name="input_quantize"),
        helper.make_node("Cast", ["xq"], ["m"], to=TensorProto.INT32, name="widen"),
        *middle,
        helper.make_node("Cast", ["r"], ["rq"], to=TensorProto.INT8, name="narrow"),
        helper.make_node("DequantizeLinear", ["rq", "s", "z"], ["y"], name="output_dequantize"),
    ]
    return model(
        nodes,
        [value_info("x", [1, 4])],
        [value_info("y", [1, 4])],
        [_SCALE, _ZERO, _TWO, *extra_inits],
    )


def test_integer_graph_passes_with_its_boundary_and_op_histogram():
    graph = _integer_graph([helper.make_node("Mul", ["m", "two"], ["r"], name="double")])
    report = check_int_only(graph)
    assert report.int_only, report.text()
    assert report.quantize == ["input_quantize"] and report.dequantize == ["output_dequantize"]
    assert report.ops == {"Cast": 2, "Mul": 1}
    assert report.to_dict()["violations"] == []
    assert check_int_only(
        onnx.load_from_string(
            onnx.helper.make_model(onnx.helper.make_graph([], "g", [], [])).SerializeToString()
        )
    ).int_only


def test_planted_float_op_is_listed_with_its_tensors():
    planted = [
        helper.make_node("Cast", ["m"], ["f"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Mul", ["f", "half"], ["g"], name="float_mul"),
        helper.make_node("Cast", ["g"], ["r"], to=TensorProto.INT32, name="back"),
    ]
    report = check_int_only(_integer_graph(planted, [_HALF]))
    assert not report.int_only
    found = {(v.node, v.tensor, v.dtype) for v in report.violations}
    assert found == {
        ("to_float", "f", "float"),
        ("float_mul", "f", "float"),
        ("float_mul", "half", "float"),
        ("float_mul", "g", "float"),
        ("back", "g", "float"),
    }
    assert "float_mul (Mul): half is float" in report.text()


def test_float_input_without_quantize_and_float_output_are_violations():
    graph = model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [value_info("x", [2])],
        [value_info("y", [2])],
    )
    report = check_int_only(graph)
    assert {(v.node, v.tensor) for v in report.violations} == {("relu", "x"), ("relu", "y")}
    assert report.quantize == [] and report.dequantize == []


def test_quantize_inside_the_region_is_not_a_boundary():
    inner = [
        helper.make_node("DequantizeLinear", ["m8", "s", "z"], ["f"], name="inner_dq"),
        helper.make_node("QuantizeLinear", ["f", "s", "z"], ["q"], name="inner_q"),
        helper.make_node("Cast", ["q"], ["r"], to=TensorProto.INT32, name="w"),
    ]
    middle = [helper.make_node("Cast", ["m"], ["m8"], to=TensorProto.INT8, name="n8"), *inner]
    report = check_int_only(_integer_graph(middle))
    assert {v.node for v in report.violations} == {"inner_dq", "inner_q"}


def test_subgraph_and_unknown_types_cannot_be_proved():
    then = helper.make_graph(
        [helper.make_node("Identity", ["m"], ["t"])],
        "then",
        [],
        [value_info("t", None, TensorProto.INT32)],
    )
    cond = helper.make_tensor("c", TensorProto.BOOL, [], [True])
    nodes = [
        helper.make_node("If", ["c"], ["r"], then_branch=then, else_branch=then, name="branch"),
        helper.make_node("com.example::Mystery", ["m"], ["u"], name="custom", domain="com.example"),
    ]
    report = check_int_only(_integer_graph(nodes, [cond]))
    kinds = {(v.node, v.dtype) for v in report.violations}
    assert ("branch", "subgraph") in kinds
    assert ("custom", "unknown") in kinds


def test_inspect_int_only_on_an_onnx_file(tmp_path, capsys):
    good = tmp_path / "good.onnx"
    bad = tmp_path / "bad.onnx"
    import onnx_ir as ir

    ir.save(_integer_graph([helper.make_node("Mul", ["m", "two"], ["r"], name="double")]), good)
    planted = [
        helper.make_node("Cast", ["m"], ["f"], to=TensorProto.FLOAT, name="to_float"),
        helper.make_node("Cast", ["f"], ["r"], to=TensorProto.INT32, name="back"),
    ]
    ir.save(_integer_graph(planted), bad)
    assert main(["inspect", "--int-only", str(good)]) == 0
    assert "int-only: yes" in capsys.readouterr().out
    assert main(["inspect", "--int-only", str(bad), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)["int_only"]
    assert data["int_only"] is False
    assert {v["node"] for v in data["violations"]} == {"to_float", "back"}


@pytest.mark.parametrize("op", ["Softmax", "Erf"])
def test_float_nonlinearity_on_dequantized_values_is_named(op):
    nodes = [
        helper.make_node("Cast", ["m"], ["m8"], to=TensorProto.INT8, name="n8"),
        helper.make_node("DequantizeLinear", ["m8", "s", "z"], ["f"], name="dq"),
        helper.make_node(op, ["f"], ["g"], name="nonlinear"),
        helper.make_node("QuantizeLinear", ["g", "s", "z"], ["q"], name="q"),
        helper.make_node("Cast", ["q"], ["r"], to=TensorProto.INT32, name="w"),
    ]
    report = check_int_only(_integer_graph(nodes))
    assert "nonlinear" in {v.node for v in report.violations}
