"""cleanup::remove_dead: what nothing reads goes; the signature and live code stay."""

from __future__ import annotations

PASS = "cleanup::remove_dead"

BEFORE = """
    <ir_version: 10, opset_import: ["" : 18, "custom.dead" : 1, "custom.live" : 1]>
    dead (float[4] x, float[4] unused_input) => (float[4] y) <
        float[4] w = {1.0, 2.0, 3.0, 4.0}, float[8] unused_w = {0, 0, 0, 0, 0, 0, 0, 0}
    > {
        a = Mul(x, w)
        b = Relu(x)
        c = custom.dead.Unused(b)
        y, mask = Dropout(a)
    }

    <domain: "custom.dead", opset_import: ["" : 18]>
    Unused (t) => (u) {
        u = Neg(t)
    }

    <domain: "custom.live", opset_import: ["" : 18]>
    Kept (t) => (u) {
        u = Abs(t)
    }
"""

EXPECTED = """
    <ir_version: 10, opset_import: ["" : 18]>
    dead (float[4] x, float[4] unused_input) => (float[4] y) <float[4] w = {1.0, 2.0, 3.0, 4.0}> {
        a = Mul(x, w)
        y = Dropout(a)
    }
"""


def test_golden(helpers):
    model = helpers.parse(BEFORE)
    result, p = helpers.run_pass(PASS, model)
    expected = helpers.parse(EXPECTED)
    assert result.modified
    assert helpers.op_types(model) == helpers.op_types(expected) == ["Mul", "Dropout"]
    assert sorted(model.graph.initializers) == sorted(expected.graph.initializers) == ["w"]
    assert model.functions == {} and dict(model.opset_imports) == {"": 18}
    assert [v.name for v in model.graph.inputs] == ["x", "unused_input"]  # signature kept
    assert len(list(model.graph)[1].outputs) == 1  # the unused Dropout mask is trimmed
    assert dict(p.stats) == {
        "nodes": 2,
        "initializers": 1,
        "functions": 2,
        "function_nodes": 2,
        "opsets": 2,
        "function_opsets": 2,
        "node_slots": 1,
    }


def test_idempotent(helpers):
    model = helpers.parse(BEFORE)
    helpers.run_pass(PASS, model)
    helpers.assert_idempotent(PASS, model)


def test_numerically_equal(helpers):
    before = helpers.parse(BEFORE)
    after = helpers.clone(before)
    helpers.run_pass(PASS, after)
    helpers.assert_same_outputs(before, after)


def test_dead_branch_into_live_output_is_kept(helpers):
    # Every node here reaches an output, even through a graph output that is also read.
    model = helpers.parse("""
        <ir_version: 10, opset_import: ["" : 18]>
        live (float[4] x) => (float[4] y, float[4] z) {
            y = Relu(x)
            z = Neg(y)
        }
    """)
    fingerprint = helpers.fingerprint(model)
    result, p = helpers.run_pass(PASS, model)
    assert not result.modified and not p.stats
    assert helpers.fingerprint(model) == fingerprint
