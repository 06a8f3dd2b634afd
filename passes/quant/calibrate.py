"""`quant::calibrate`: record the range of every activation tensor that will be quantized,
and the mean input of every weight layer.

    before: … → Conv → x → Relu → y → Conv → …          (no ranges)
    after:  the same graph; `y` carries metadata edgec.quant.range = [lo, hi], and the second
            Conv edgec.quant.input_mean = [E[y] per channel] (per channel and kernel tap for a
            padded or strided k×k conv: `bias_correction.py`)

The tensors are `_policy.tensors_to_quantize`'s. The graph runs in ONNX Runtime on the
calibration samples (`data`: read by `read_samples` — images or tensors prepared with the
preprocessing recorded in the model's metadata, or a multi-input graph's named feeds); the
range comes from min-max, percentile, entropy or MSE (`ranges.py`). A data-movement op's
output shares its input's range. A second run finds every range present and changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx_ir as ir

from edgec.errors import UserError
from edgec.pass_manager import EdgecPass, register_pass
from edgec.passes.quant import _policy
from edgec.passes.quant._observe import Samples, observe
from edgec.passes.quant.bias_correction import input_channel_axis, input_mean, mean_reading
from edgec.passes.quant.ranges import METHODS, Histogram, choose_range
from edgec.passes.quant.weights import weight_axes
from edgec.preprocess import Preprocessing, read_model_inputs
from edgec.sample_feeds import is_feeds_file, load_feeds


@register_pass
class Calibrate(EdgecPass):
    id = "quant::calibrate"

    @dataclasses.dataclass(frozen=True)
    class Options:
        data: str = ""  # --calib
        count: int = 128  # --calib-count
        method: str = "percentile"
        percentile: float = 99.99
        bins: int = 2048

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        opts = self.options
        if opts.method not in METHODS:
            raise UserError(
                f"unknown calibration method {opts.method!r}",
                f"choose one of: {', '.join(METHODS)}",
            )
        targets = _policy.tensors_to_quantize(model.graph)
        missing = [v for v in targets if _policy.read_range(v) is None]
        layers = [
            n
            for n in model.graph
            if weight_axes(n) is not None
            and input_channel_axis(n) is not None
            and n.inputs[0].name
            and _policy.INPUT_MEAN_KEY not in n.metadata_props
        ]
        if not missing and not layers:
            return ir.passes.PassResult(model, modified=False)
        if not opts.data:
            raise UserError(
                "quantizing activations needs calibration data",
                "pass --calib with a folder of images, an .npz of uint8 images, or an "
                ".npz/.npy of model-ready float32 tensors",
            )
        samples = read_samples(Path(opts.data), model, opts.count, "calibration data")
        own = [v for v in missing if _shared_source(v, targets) is None]
        means = InputMeans(layers)
        ranges = measure_ranges(
            model,
            samples,
            [v.name for v in own],
            opts.method,
            opts.percentile,
            opts.bins,
            also=means,
        )
        for node, mean in means.result().items():
            node.metadata_props[_policy.INPUT_MEAN_KEY] = json.dumps(np.round(mean, 7).tolist())
            self.stats["layer_input_means"] += 1
        for value in own:
            _policy.write_range(value, *ranges[value.name])
        for value in missing:  # in graph order, so a chain of data-movement ops resolves
            source = _shared_source(value, targets)
            if source is not None:
                _policy.write_range(value, *_policy.read_range(source))
                self.stats["shared_range"] += 1
        self.stats["tensors"] += len(missing)
        self.stats["samples"] = len(samples)
        return ir.passes.PassResult(model, modified=True)


class InputMeans:
    """Each weight layer's first input averaged per channel (per channel and kernel tap for a
    convolution with padding or a stride: `bias_correction.mean_reading`) over the samples,
    accumulated from the observed values of the samples one at a time."""

    def __init__(self, layers: list[ir.Node]):
        self._reads = {n: (n.inputs[0].name, mean_reading(n)) for n in layers}
        self._sums = dict.fromkeys(set(self._reads.values()), 0.0)
        self._count = 0

    @property
    def names(self) -> list[str]:
        return sorted({name for name, _ in self._sums})

    def add(self, values: dict[str, np.ndarray]) -> None:
        for name, reading in self._sums:
            self._sums[(name, reading)] += input_mean(values[name], reading)
        self._count += 1

    def result(self) -> dict[ir.Node, np.ndarray]:
        return {node: self._sums[read] / self._count for node, read in self._reads.items()}


def measure_ranges(
    model: ir.Model,
    samples: Samples,
    names: list[str],
    method: str,
    percentile: float = 99.99,
    bins: int = 2048,
    also: InputMeans | None = None,
) -> dict[str, tuple[float, float]]:
    """The range of each float tensor `names` on `samples` by `method` (`ranges.METHODS`).

    One pass over the samples for min/max (which also feeds `also`, so the layers' mean inputs
    cost no run of their own), a second for the histograms (not for `minmax`). Tensors that are
    not floating point or never produced a value are left out.
    """
    lows = dict.fromkeys(names, np.inf)
    highs = dict.fromkeys(names, -np.inf)
    observed = sorted(set(names) | set(also.names if also else ()))
    for values in observe(model, samples, observed) if observed else ():
        for name in names:
            array = values[name]
            if np.issubdtype(array.dtype, np.floating) and array.size:
                lows[name] = min(lows[name], float(array.min()))
                highs[name] = max(highs[name], float(array.max()))
        if also:
            also.add(values)
    seen = [n for n in names if np.isfinite(lows[n])]
    histograms = None
    if method != "minmax" and seen:
        histograms = {n: Histogram.empty(lows[n], highs[n], bins) for n in seen}
        for values in observe(model, samples, seen):
            for name, array in values.items():
                histograms[name].add(array)
    return {
        n: choose_range(method, lows[n], highs[n], histograms and histograms[n], percentile)
        for n in seen
    }


def read_samples(path: Path, model: ir.Model, count: int, purpose: str) -> Samples:
    """Up to `count` samples of `model`'s inputs from `path`: named feeds for a graph with
    several inputs (`edgec.sample_feeds`), else a batch prepared with the model's recorded
    preprocessing (`edgec.preprocess.read_model_inputs`)."""
    inputs = [v.name for v in model.graph.inputs]
    if is_feeds_file(path):
        return load_feeds(path, inputs, count, purpose)
    if len(inputs) > 1:
        raise UserError(
            f"{purpose} {path}: the graph has {len(inputs)} inputs ({', '.join(inputs)}), "
            "so its samples must be named feeds",
            "store an .npz with one `<sample index>/<input name>` array per input",
        )
    return read_model_inputs(path, model_preprocessing(model), count, purpose)


def model_preprocessing(model: ir.Model) -> Preprocessing:
    """The preprocessing recorded in the model's metadata, sized to its input."""
    text = model.metadata_props.get("edgec.preprocessing")
    recorded = json.loads(text) if text else {}
    shape = model.graph.inputs[0].shape
    size = [d if isinstance(d, int) else None for d in (shape or [])][1:]
    if len(size) == 3 and None not in size:
        recorded["input_size"] = size
    return Preprocessing.from_dict(recorded)


def _shared_source(value: ir.Value, targets: list[ir.Value]) -> ir.Value | None:
    """The quantized tensor `value` takes its range from, if it is a data-movement output."""
    source = _policy.range_source(value)
    while source is not None:
        if any(source is t for t in targets) or _policy.read_range(source) is not None:
            return source
        source = _policy.range_source(source)
    return None
