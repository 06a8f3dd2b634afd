"""TensorRT's optimisation profile: min/opt/max shapes for every input with symbolic dims.

    shapes, dims = profile_shapes(model, max_batch=8)
    shapes   # {input: (min shape, opt shape, max shape)}, what the builder and trtexec take
    dims     # {dim name: {"min", "opt", "max", "from"}}, for the manifest

TensorRT builds an engine for a range of each dynamic dimension and tunes its kernels for one
point in it (opt). Where the range of a dimension comes from, first match wins:

1. `overrides` (`emit(..., dim_ranges={"num_points": (1, 4, 32)})`);
2. the model's metadata `edgec.dim_ranges`, JSON `{dim name: [min, opt, max]}`, written by the
   exporter that knows them (EfficientTAM's graphs: the `torch.export.Dim` bounds of
   `edgec.models.efficienttam.graphs`, opt = the size of the graph's example inputs);
3. a symbolic leading dimension without a recorded range is the batch: 1 / 1 / `max_batch`.

Any other symbolic dimension is a `UserError` naming it: TensorRT cannot build without its
range, and guessing one would give an engine that rejects the sizes the app feeds it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import onnx_ir as ir

from edgec.errors import UserError

Shapes = dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
RANGES_KEY = "edgec.dim_ranges"
CORNERS = ("min", "opt", "max")


def profile_shapes(
    model: ir.Model, max_batch: int, overrides: Mapping[str, Sequence[int]] | None = None
) -> tuple[Shapes, dict[str, dict]]:
    """(min/opt/max shape per dynamic input, each dynamic dim's range and where it came from)."""
    ranges = {name: (r, f"model metadata {RANGES_KEY}") for name, r in _recorded(model).items()}
    ranges.update({name: (r, "dim_ranges override") for name, r in (overrides or {}).items()})
    ranges = {name: (_checked(name, r, source), source) for name, (r, source) in ranges.items()}
    shapes: Shapes = {}
    used: dict[str, dict] = {}
    for value in model.graph.inputs:
        dims = list(value.shape or ())
        if all(isinstance(d, int) for d in dims):
            continue
        corners: list[list[int]] = [[], [], []]
        for axis, dim in enumerate(dims):
            bounds, source = _bounds(value.name, dims, axis, ranges, max_batch)
            for corner, size in zip(corners, bounds, strict=True):
                corner.append(size)
            if source:
                key = dim.value or f"{value.name}[{axis}]"
                used[key] = dict(zip(CORNERS, bounds, strict=True)) | {"from": source}
        shapes[value.name] = tuple(tuple(c) for c in corners)
    return shapes, used


def corner_shapes(shapes: Shapes) -> list[dict[str, tuple[int, ...]]]:
    """The distinct {input: shape} sets at the profile's min, opt and max (opt first)."""
    out: list[dict[str, tuple[int, ...]]] = []
    for index in (1, 0, 2):
        corner = {name: dims[index] for name, dims in shapes.items()}
        if corner not in out:
            out.append(corner)
    return out


def _bounds(input_name, dims, axis, ranges, max_batch) -> tuple[tuple[int, int, int], str]:
    """(min, opt, max) of one dimension and the source of a symbolic one ('' for a fixed one)."""
    dim = dims[axis]
    if isinstance(dim, int):
        return (dim, dim, dim), ""
    if dim.value in ranges:
        bounds, source = ranges[dim.value]
        return bounds, source
    if axis == 0:
        return (1, 1, max_batch), "batch: 1 / 1 / max_batch"
    raise UserError(
        f"input {input_name} has symbolic dimension {dim.value or '?'} (axis {axis} of "
        f"{[d if isinstance(d, int) else d.value for d in dims]}) and no recorded range; "
        "TensorRT needs its min/opt/max",
        f"give emit dim_ranges={{'{dim.value or 'NAME'}': (min, opt, max)}}, record them in "
        f"the model's metadata {RANGES_KEY}, or export with fixed sizes",
    )


def _recorded(model: ir.Model) -> dict[str, Sequence[int]]:
    text = model.metadata_props.get(RANGES_KEY)
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(
            f"the model's metadata {RANGES_KEY} is not JSON: {exc}",
            'write {"dim name": [min, opt, max]}',
        ) from None
    if not isinstance(data, dict):
        raise UserError(
            f"the model's metadata {RANGES_KEY} is not a JSON object",
            'write {"dim name": [min, opt, max]}',
        )
    return data


def _checked(name: str, bounds: Sequence[int], source: str) -> tuple[int, int, int]:
    ok = (
        isinstance(bounds, Sequence)
        and len(bounds) == 3
        and all(isinstance(b, int) and not isinstance(b, bool) for b in bounds)
    )
    if not ok or not 0 <= bounds[0] <= bounds[1] <= bounds[2] or bounds[2] < 1:
        raise UserError(
            f"the range of dimension {name!r} ({source}) is {bounds!r}",
            "give three integers min <= opt <= max (max >= 1)",
        )
    return int(bounds[0]), int(bounds[1]), int(bounds[2])
