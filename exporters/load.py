"""Load a model from any form a user gives: a name, a checkpoint, TorchScript, .pt2 or ONNX.

`load_model(source, arch=None, num_classes=None, allow_pickle=False, **config)` decides what
`source` is by content (zip members, magic bytes), never trusting the suffix alone:

| source                              | needs arch | kind                        |
|-------------------------------------|------------|-----------------------------|
| zoo / timm model name               | no         | `zoo` / `timm` (seeded init)|
| torch.save state_dict, .safetensors | yes        | `checkpoint`                |
| pickled whole nn.Module             | no         | `pickled_module` (opt-in)   |
| TorchScript archive                 | no         | `torchscript`               |
| torch.export `.pt2`                 | no         | `torch_export`              |
| `.onnx`                             | no         | `onnx` (module None)        |

Every failure is a ModelLoadError / UserError whose message says what and how to fix it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from edgec.artifact import sha256_file
from edgec.errors import ModelLoadError, UserError
from edgec.models import BUILTIN_NAMES, create_with_info, resolve_name
from edgec.models.checkpoint_io import problem_for_kind, read_weights
from edgec.models.file_kind import sniff
from edgec.models.layouts import guess_family
from edgec.models.preprocessing import preprocessing_from_cfg
from edgec.models.state_dict import unwrap
from edgec.preprocess_override import apply_overrides

PATH_SUFFIXES = {".pt", ".pth", ".bin", ".safetensors", ".pt2", ".onnx", ".ckpt", ".tar", ".pkl"}
KINDS = ("zoo", "timm", "checkpoint", "torchscript", "torch_export", "onnx", "pickled_module")


@dataclasses.dataclass
class LoadedModel:
    """A model ready for export (module) or already exported (onnx_path), with what is known."""

    kind: str
    module: torch.nn.Module | None
    onnx_path: Path | None
    name: str
    input_shape: tuple[int, ...] | None
    preprocessing: dict[str, Any]
    num_classes: int | None
    source_sha256: str | None
    notes: list[str] = dataclasses.field(default_factory=list)


def load_model(
    source: str,
    arch: str | None = None,
    num_classes: int | None = None,
    allow_pickle: bool = False,
    input_size: Sequence[int] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    **config: Any,
) -> LoadedModel:
    """Load `source` (model name or file); see the module docstring for the accepted forms.

    `input_size` (C, H, W) or (C, D, H, W) replaces the size the model records (the export
    size); `preprocessing` holds checked fields that replace the recorded preprocessing's
    (`edgec.preprocess_override`); `config` goes to the model's constructor.
    """
    if input_size is not None and _built_at_one_size(arch or source):
        config = {**config, "image_size": _square_side(tuple(input_size))}
    loaded = _load_any(source, arch, num_classes, allow_pickle, config)
    if input_size is not None:
        _set_input_size(loaded, tuple(int(d) for d in input_size))
    if preprocessing:
        channels = int(loaded.preprocessing["input_size"][0])
        loaded.notes.append(apply_overrides(loaded.preprocessing, preprocessing, channels))
    return loaded


def _load_any(source, arch, num_classes, allow_pickle, config) -> LoadedModel:
    path = Path(source).expanduser()
    if path.exists() or _looks_like_path(source):
        kind = sniff(path)
        problem = problem_for_kind(path, kind)
        if problem is not None:
            if kind.kind == "missing":
                problem.hint = f"{problem.hint}{_name_hint(source)}"
            raise problem
        digest = sha256_file(path)
        loader = {
            "torchscript": _load_torchscript,
            "torch_export": _load_torch_export,
            "onnx": _load_onnx,
        }.get(kind.kind, _load_weights_file)
        loaded = loader(path, arch, num_classes, allow_pickle, config)
        loaded.source_sha256 = digest
        return loaded
    return _load_name(source, arch, num_classes, config)


def _built_at_one_size(name: str) -> bool:
    """Models whose graphs are built for one square image size (`image_size=`): EfficientTAM."""
    from edgec.models.zoo import NATIVE

    return name in NATIVE and NATIVE[name].family == "EfficientTAM"


def _square_side(size: tuple[int, ...]) -> int:
    if len(size) != 3 or size[1] != size[2]:
        raise UserError(
            f"--input-size {','.join(map(str, size))}: EfficientTAM takes square images",
            "give --input-size 3,S,S (S a multiple of 16, or 32 for the pooled _1/_2 variants)",
        )
    return size[1]


def _set_input_size(loaded: LoadedModel, size: tuple[int, ...]) -> None:
    """Export at `size`; its rank must be the model's (C×H×W images, C×D×H×W volumes)."""
    known = loaded.input_shape or tuple(loaded.preprocessing["input_size"])
    if len(size) not in (3, 4) or min(size) < 1:
        raise UserError(
            f"--input-size {','.join(map(str, size))} is not C,H,W or C,D,H,W",
            "e.g. --input-size 3,256,256 (images) or 4,64,64,64 (volumes)",
        )
    if len(size) != len(known) or (loaded.module is None and size != known):
        raise UserError(
            f"--input-size {','.join(map(str, size))} does not fit {loaded.name}, whose input "
            f"is {'×'.join(map(str, known))}"
            + (" (an ONNX file keeps its exported size)" if loaded.module is None else ""),
            f"give {len(known)} numbers in the order C,{'D,' if len(known) == 4 else ''}H,W",
        )
    loaded.input_shape = size
    loaded.preprocessing["input_size"] = list(size)
    loaded.notes.append(f"exported at --input-size {'×'.join(map(str, size))}")


def _looks_like_path(source: str) -> bool:
    return "/" in source or "\\" in source or Path(source).suffix.lower() in PATH_SUFFIXES


def _name_hint(source: str) -> str:
    try:
        resolve_name(Path(source).stem)
    except UserError:
        return ""
    return f"; to use the model {Path(source).stem!r} by name, give its name without a path"


def _load_name(source: str, arch: str | None, num_classes: int | None, config: dict) -> LoadedModel:
    name = resolve_name(source)
    if arch is not None and resolve_name(arch) != name:
        raise UserError(
            f"--arch {arch} given with the model name {source!r}",
            "--arch goes with a checkpoint file; give either a model name or a file with --arch",
        )
    model, info = create_with_info(name, None, num_classes, **config)
    return _from_module(
        "zoo" if name in BUILTIN_NAMES else "timm", model, name, info.notes, config, None
    )


def _load_weights_file(path, arch, num_classes, allow_pickle, config) -> LoadedModel:
    obj, read_notes = read_weights(path, allow_pickle=allow_pickle)
    if isinstance(obj, torch.nn.Module):
        notes = [*read_notes, f"pickled whole module {type(obj).__module__}.{type(obj).__name__}"]
        if arch is not None:
            notes.append(f"--arch {arch} only sets preprocessing: the file carries its own model")
        return _from_module("pickled_module", obj.eval(), path.stem, notes, config, arch)
    if arch is None:
        state_dict, _ = unwrap(obj)
        family = guess_family(state_dict)
        looks = f" (its keys look like {family})" if family else ""
        raise ModelLoadError(
            f"{path} holds weights only (a state_dict){looks}; edgec needs the architecture",
            "pass --arch NAME (`edgec zoo` lists the built-in names; any timm name works)",
        )
    model, info = create_with_info(arch, obj, num_classes, allow_pickle=allow_pickle, **config)
    info.weights = f"checkpoint {path}"
    notes = [f"architecture {info.name}", *read_notes, *info.notes]
    return _from_module("checkpoint", model, path.stem, notes, config, None)


def _load_torchscript(path, arch, num_classes, allow_pickle, config) -> LoadedModel:
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise ModelLoadError(
            f"{path} looks like TorchScript but cannot be loaded: {_first_line(exc)}",
            "re-save it with torch.jit.save, or give the checkpoint with --arch instead",
        ) from exc
    notes = ["TorchScript archive loaded with torch.jit.load"]
    return _from_module("torchscript", module.eval(), path.stem, notes, config, arch)


def _load_torch_export(path, arch, num_classes, allow_pickle, config) -> LoadedModel:
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise ModelLoadError(
            f"{path} looks like a torch.export .pt2 but cannot be loaded: {_first_line(exc)}",
            "re-save it with torch.export.save (same torch version), or give a checkpoint",
        ) from exc
    loaded = _from_module(
        "torch_export", program.module(), path.stem, ["torch.export program"], config, arch
    )
    shape, classes = _program_shapes(program)
    if loaded.input_shape is None and shape is not None:
        loaded.input_shape = shape
        loaded.preprocessing["input_size"] = list(shape)
    loaded.num_classes = loaded.num_classes or classes
    return loaded


def _load_onnx(path, arch, num_classes, allow_pickle, config) -> LoadedModel:
    import onnx

    try:
        onnx.checker.check_model(str(path))
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelLoadError(
            f"{path} is not a valid ONNX model: {_first_line(exc)}",
            "re-export it (torch.onnx.export) or check that the file is complete",
        ) from exc
    shape, classes = _onnx_shapes(proto)
    preprocessing, notes = _preprocessing(None, arch, config)
    if shape is not None:
        preprocessing["input_size"] = list(shape)
    notes.insert(0, "ONNX model checked with onnx.checker; export from PyTorch skipped")
    return LoadedModel("onnx", None, path, path.stem, shape, preprocessing, classes, None, notes)


def _from_module(kind, module, name, notes, config, arch) -> LoadedModel:
    preprocessing, more = _preprocessing(module, arch, config)
    known = arch is not None or _cfg_of(module) is not None
    classes = getattr(module, "num_classes", None)
    return LoadedModel(
        kind=kind,
        module=module,
        onnx_path=None,
        name=name,
        input_shape=tuple(preprocessing["input_size"]) if known else None,
        preprocessing=preprocessing,
        num_classes=classes if isinstance(classes, int) else None,
        source_sha256=None,
        notes=[*notes, *more],
    )


def _cfg_of(module) -> dict | None:
    cfg = getattr(module, "pretrained_cfg", None) if module is not None else None
    return dict(cfg) if isinstance(cfg, dict) and cfg else None


def _preprocessing(module, arch, config) -> tuple[dict[str, Any], list[str]]:
    img_size = config.get("img_size")
    if arch is not None:
        from timm.models import get_pretrained_cfg

        name = resolve_name(arch)
        cfg = get_pretrained_cfg(name) or get_pretrained_cfg(name.split(".", 1)[0])
        if cfg is not None:
            return preprocessing_from_cfg(cfg.to_dict(), img_size), [
                f"preprocessing of {name} (from --arch)"
            ]
    cfg = _cfg_of(module)
    if cfg is not None:
        return preprocessing_from_cfg(cfg, img_size), []
    return preprocessing_from_cfg({}, img_size), [
        "preprocessing unknown: ImageNet defaults assumed (pass --arch to use a model's own)"
    ]


def _program_shapes(program) -> tuple[tuple[int, ...] | None, int | None]:
    shape = classes = None
    try:
        args = program.example_inputs[0] if program.example_inputs else ()
        if args and getattr(args[0], "ndim", 0) in (4, 5):
            shape = tuple(int(d) for d in args[0].shape[1:])
        out = next(n for n in program.graph.nodes if n.op == "output").args[0][0]
        val = out.meta.get("val")
        if val is not None and val.ndim == 2:
            classes = int(val.shape[1])
    except (AttributeError, IndexError, StopIteration, TypeError):
        pass
    return shape, classes


def _onnx_shapes(proto) -> tuple[tuple[int, ...] | None, int | None]:
    def dims(value_info):
        return [
            d.dim_value if d.HasField("dim_value") else None
            for d in value_info.type.tensor_type.shape.dim
        ]

    initializers = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in initializers]
    shape = classes = None
    if len(inputs) == 1:
        d = dims(inputs[0])
        if len(d) in (4, 5) and None not in d[1:]:
            shape = tuple(d[1:])
    if proto.graph.output:
        d = dims(proto.graph.output[0])
        if len(d) == 2 and d[1]:
            classes = d[1]
    return shape, classes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]
