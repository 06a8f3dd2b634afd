"""MIL program → `.mlpackage` on disk, reloaded and inspected with coremltools.

`build_package(program, path, ...)` converts the float32 MIL program with
`ct.convert(..., compute_precision=FLOAT16|FLOAT32, minimum_deployment_target=...)` (the fp16
pass casts every float op and constant, leaving fp32 I/O), fills the metadata, saves, and
makes the package byte-stable: coremltools writes a conversion date into the metadata and
random UUIDs as item identifiers in `Manifest.json`; edgec drops the date and derives the
identifiers from the item paths, so the same model gives the same bytes.

`inspect_package(path)` reloads the package with coremltools (`skip_model_load=True`: the
Core ML framework that would compile it exists only on Apple platforms) and summarises what is
inside: MIL op histogram, weight dtypes and bit widths, max tensor rank, inputs and outputs.
"""

from __future__ import annotations

import collections
import json
import uuid
from pathlib import Path
from typing import Any

from edgec.runtimes.coreml_sdk import import_ct, quiet

_UUID_NAMESPACE = uuid.UUID("6f0e5bf2-7d0c-4d5e-9c52-8c1f2d3a4b5c")  # edgec's, fixed


def convert(program, *, target, precision: str, inputs=None, classifier=None):
    """The `MLModel` for `program` (not yet saved)."""
    ct = import_ct()
    compute = ct.precision.FLOAT32 if precision == "fp32" else ct.precision.FLOAT16
    with quiet():
        return ct.convert(
            program,
            convert_to="mlprogram",
            minimum_deployment_target=target,
            compute_precision=compute,
            inputs=inputs,
            classifier_config=classifier,
            skip_model_load=True,
        )


def save(mlmodel, path: Path) -> None:
    """Save `mlmodel` as a byte-stable `.mlpackage` at `path`."""
    with quiet():
        mlmodel.save(str(path))
    _stable_manifest(path / "Manifest.json")


def _stable_manifest(manifest: Path) -> None:
    data = json.loads(manifest.read_text())
    renamed = {}
    for old, entry in data["itemInfoEntries"].items():
        new = str(uuid.uuid5(_UUID_NAMESPACE, entry["path"])).upper()
        renamed[old] = new
    data["itemInfoEntries"] = {renamed[k]: v for k, v in data["itemInfoEntries"].items()}
    data["rootModelIdentifier"] = renamed[data["rootModelIdentifier"]]
    manifest.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def load_program(path: Path):
    """(MLModel, the MIL program read back from the saved package)."""
    ct = import_ct()
    from coremltools.converters.mil.frontend.milproto.load import load as load_milproto

    with quiet():
        mlmodel = ct.models.MLModel(str(path), skip_model_load=True)
        spec = mlmodel.get_spec()
        program = load_milproto(
            spec, spec.specificationVersion, file_weights_dir=mlmodel.weights_dir
        )
    return mlmodel, program


def inspect_package(path: Path) -> dict[str, Any]:
    """What the saved package holds (reloaded from disk): ops, weights, ranks, I/O, metadata."""
    mlmodel, program = load_program(path)
    spec = mlmodel.get_spec()
    function = program.functions["main"]
    ops = collections.Counter()
    weights = collections.Counter()
    max_rank = 0
    rank5 = collections.Counter()
    for op in function.operations:
        ops[op.op_type] += 1
        ranks = [o.rank for o in op.outputs if _is_tensor(o)]
        max_rank = max([max_rank, *ranks])
        if op.op_type != "const" and any(r >= 5 for r in ranks):
            rank5[op.op_type] += 1
        if op.op_type.startswith("constexpr_"):
            data = op.inputs.get("data", op.inputs.get("quantized_data"))
            weights[_dtype_name(data)] += 1
        elif _is_weight(op):
            weights[_dtype_name(op.outputs[0])] += 1
    ops.pop("const", None)
    return {
        "spec_version": spec.specificationVersion,
        "opset": str(function.opset_version.name) if function.opset_version else None,
        "ops": dict(sorted(ops.items())),
        "weight_dtypes": dict(sorted(weights.items())),
        "max_rank": max_rank,
        "rank5_ops": dict(sorted(rank5.items())),
        "inputs": [_feature(f) for f in spec.description.input],
        "outputs": [_feature(f) for f in spec.description.output],
    }


def tensor_ranks(program) -> list[tuple[str, str, int]]:
    """(op name, op type, highest output rank) of every non-const op of `main`."""
    rows = []
    for op in program.functions["main"].operations:
        ranks = [o.rank for o in op.outputs if _is_tensor(o)]
        if ranks and op.op_type != "const":
            rows.append((op.name, op.op_type, max(ranks)))
    return rows


def _is_weight(op) -> bool:
    """A float const tensor a layer reads (not a shape, not a constexpr's scale/offset)."""
    out = op.outputs[0]
    if op.op_type != "const" or not _is_tensor(out) or out.rank < 1:
        return False
    if _dtype_name(out) not in ("fp16", "fp32"):
        return False
    return not any(child.op_type.startswith("constexpr_") for child in out.child_ops)


def _is_tensor(var) -> bool:
    from coremltools.converters.mil.mil import types

    return types.is_tensor(var.sym_type)


def _dtype_name(var) -> str:
    from coremltools.converters.mil.mil import types

    return types.builtin_to_string(var.dtype)


def _feature(feature) -> dict[str, Any]:
    kind = feature.type.WhichOneof("Type")
    entry: dict[str, Any] = {"name": feature.name, "type": kind}
    if kind == "imageType":
        image = feature.type.imageType
        entry.update(width=image.width, height=image.height, color="RGB")
    elif kind == "multiArrayType":
        array = feature.type.multiArrayType
        entry.update(shape=list(array.shape), dtype=_ARRAY_TYPES.get(array.dataType, "?"))
    return entry


_ARRAY_TYPES = {65568: "fp32", 65552: "fp16", 65600: "fp64", 131104: "int32"}
