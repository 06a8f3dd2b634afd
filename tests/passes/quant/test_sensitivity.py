"""quant::sensitivity: per-layer scores, and the accuracy budget's fallback marks."""

from __future__ import annotations

import json

from edgec.passes.quant import _policy
from edgec.passes.quant.record import quantization_record


def _scores(net):
    return {
        n.name: json.loads(n.metadata_props["edgec.quant.sensitivity"])
        for n in net.graph
        if "edgec.quant.sensitivity" in n.metadata_props
    }


def test_scores_every_weight_layer_and_is_idempotent(helpers, net, calib_file):
    helpers.run_pass("quant::calibrate", net, data=calib_file)
    result, p = helpers.run_pass("quant::sensitivity", net, data=calib_file, count=8, bits=4)
    assert result.modified and p.stats["layers_scored"] == 3
    scores = _scores(net)
    assert set(scores) == {"conv1", "conv2", "head"} and all(s > 0 for s in scores.values())
    # int4 weights: conv2/head (int4) hurt more than conv1 (8 bit: reduction 8 < 32)
    assert scores["conv1"] < max(scores["conv2"], scores["head"])
    helpers.assert_idempotent("quant::sensitivity", net, data=calib_file, count=8, bits=4)


def test_zero_budget_falls_back_until_the_top1_agrees(helpers, net, calib_file):
    helpers.run_pass("quant::calibrate", net, data=calib_file, method="minmax")
    options = {"bits": 4, "reduce_range": True}
    corrected = helpers.clone(net)
    _, p = helpers.run_pass(
        "quant::sensitivity", corrected, data=calib_file, count=16, budget=0.0, **options
    )
    assert p.stats["agreement_all_quantized_bp"] == 10000  # bias correction: nothing flips
    for node in net.graph:  # without the measured means there is no bias correction
        node.metadata_props.pop(_policy.INPUT_MEAN_KEY, None)
    _, p = helpers.run_pass(
        "quant::sensitivity", net, data=calib_file, count=16, budget=0.0, **options
    )
    # int4 with 7-bit-safe multipliers flips one of the 16 samples; 8-bit weights do not
    assert p.stats["agreement_all_quantized_bp"] < 10000
    assert p.stats["agreement_after_fallback_bp"] == 10000 and p.stats["fallback_layers"] >= 1
    fallen = [n.name for n in net.graph if _policy.WEIGHT_BITS_KEY in n.metadata_props]
    assert len(fallen) == p.stats["fallback_layers"]
    assert max(_scores(net).items(), key=lambda kv: kv[1])[0] in fallen
    helpers.run_pass("quant::weights", net, **options)
    helpers.run_pass("quant::activations", net)
    layers = {r["name"]: r for r in quantization_record(net)["layers"]}
    for name in fallen:
        assert layers[name]["weight_bits_stored"] == 8
        assert layers[name]["fallback"] == "8-bit weights"
