"""Official image classifier vs edgec, in PyTorch and as a CLI-compiled ONNX Runtime artifact.

Shared by `efficientvit_m.py`, `shvit.py` and `lowformer.py` (the official checkpoint layouts
edgec remaps onto timm's modules). For each variant:

1. the script builds the official model from the official code; it gets seeded non-trivial
   weights (`compare_support.seeded_state_dict`: kernels, BN/GN/LN affines, attention-bias
   tables, biases), then BatchNorm running statistics measured on 16 other photos (so the
   activations stay O(1) as in a trained net), then `eval()` (EfficientViT caches its
   gathered bias table in `train(False)`);
2. its state_dict is saved in the official container (`{"model": sd}` or `{"state_dict": sd}`);
3. (a) `edgec.models.create(arch, checkpoint=FILE)` (detect layout, remap, strict load) runs
   on real photos (`../shared/data/imagenet_samples.npz`, edgec's preprocessing at the
   model's size) and its logits are compared with the official model's;
4. (b) `edgec compile FILE --arch ARCH --target host --no-measure --verify-images PHOTOS
   --out DIR --json` runs as a subprocess; the artifact's `.onnx` runs in ONNX Runtime on the
   same inputs and is compared with the official model's logits (and, where the official
   code has one, its BN-fused deployment form).

Each row records max |Δ| (tolerance `compare_support.RTOL`·max(1, max|official|)) and the
smallest per-image cosine similarity.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import compare_support as cs
import numpy as np
import torch

import edgec.models
from edgec.errors import UserError
from edgec.preprocess import Preprocessing, read_images

IMAGES = cs.REPO_ROOT.parent / "shared" / "data" / "imagenet_samples.npz"


# (a builder of fresh official models, the checkpoint's state_dict) → (label, a wrong model)
Control = Callable[[Callable[[], torch.nn.Module], dict], tuple[str, torch.nn.Module]]


@dataclasses.dataclass(frozen=True)
class Family:
    """What a script tells `run`: how to import and build the official model, and how to save.

    `build(arch, **options)` runs with the official checkout first on sys.path (and
    `inert_timm_registry` active) and returns the official model for edgec's variant name
    `arch`, in its initial (training) mode; options go to the official constructor.
    `fuse_module` names the official module whose `replace_batchnorm(model)` makes the
    official deployment form (BN fused, what the official speed tests time), if there is one.
    `distillation_probe` names a variant to build with `distillation=True` (a second head
    `head_dist`, averaged with `head` in the official eval forward) and compare in PyTorch.
    Each of `controls` is `control(build, state)` → (label, an official model known to
    compute something else from `state`); `build()` makes a fresh official model of the
    variant. Their rows must show a difference: proof that the comparison can see one.
    """

    name: str
    description: str
    inside: str  # a path inside the official checkout, checked before importing
    import_root: str  # the folder (relative to the checkout) that goes on sys.path
    variants: Sequence[str]  # every variant the script knows
    default_variants: Sequence[str]
    container: str  # the official checkpoint container key: "model" or "state_dict"
    build: Callable[..., torch.nn.Module]
    fuse_module: str | None = None
    distillation_probe: str | None = None
    controls: Sequence[Control] = ()
    notes: Sequence[str] = ()


def swapped_blocks(a: str, b: str) -> Control:
    """A control: the official model loaded with blocks `a` and `b` (same shapes) exchanged.

    What a remap that numbered blocks wrongly would compute; edgec must differ from it.
    """

    def control(build, state: dict) -> tuple[str, torch.nn.Module]:
        swapped = dict(state)
        for key in state:
            if key.startswith(a + "."):
                other = b + key[len(a) :]
                swapped[key], swapped[other] = state[other], state[key]
        model = build()
        model.load_state_dict(swapped)
        return f"official with {a} <-> {b} swapped vs edgec", model.eval()

    return control


class CosineComparison(cs.Comparison):
    """`compare_support.Comparison` whose rows also hold the smallest per-sample cosine."""

    def _add(self, name, a, b, error, expect_equal=True) -> None:
        super()._add(name, a, b, error, expect_equal)
        if error is None:
            self.rows[-1]["min_cosine"] = min_cosine(a, b)
            print(f"{'':<58} min cosine {self.rows[-1]['min_cosine']:.9f}")


def min_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """The smallest cosine similarity between matching samples (rows of the batch)."""
    a64, b64 = a.detach().double().flatten(1), b.detach().double().flatten(1)
    return float(torch.nn.functional.cosine_similarity(a64, b64, dim=1).min())


@contextlib.contextmanager
def inert_timm_registry() -> Iterator[None]:
    """Make `timm.models.registry.register_model` a no-op while the official code imports.

    The official `build.py` files decorate their constructors with timm's `@register_model`;
    SHViT's names (`shvit_s1`…) are timm's own, so registering them would replace timm's
    constructors — and edgec's models with the official ones. This is the only stub.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        import timm.models.registry as registry
    original = registry.register_model
    registry.register_model = lambda fn: fn
    try:
        yield
    finally:
        registry.register_model = original


def photos(arch: str, images: Sequence[np.ndarray]) -> torch.Tensor:
    """Real photos prepared with edgec's recipe for `arch` (its size, mean/std, crop)."""
    e = edgec.models.zoo_entry(arch)
    recipe = Preprocessing(e.input_size, e.mean, e.std, e.interpolation, e.crop_pct)
    return torch.from_numpy(recipe.apply(images))


@torch.no_grad()
def measure_bn_statistics(model: torch.nn.Module, x: torch.Tensor) -> None:
    """Set every BatchNorm's running mean/var to its activations' statistics on `x`.

    One training-mode pass with a cumulative average, as training ends up with: the seeded
    random weights then keep activations O(1) through the residual stack instead of growing
    with depth (which saturates every softmax and makes fp32 round-off dominate).
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    model(x)
    for m in norms:
        m.momentum = 0.1
    model.eval()


def compile_cli(checkpoint: Path, arch: str, out: Path, images: Path) -> tuple[dict, float]:
    """`edgec compile CKPT --arch ARCH --target host --no-measure --verify-images IMAGES …`.

    The compile verifies on the photos, as a user holding a trained checkpoint would: on
    edgec's synthetic pictures (pixel noise included) the seeded random kernels, whose BN
    statistics were measured on photos, reach logits of O(100) where fp32 itself is off by
    tens (PyTorch fp32 vs fp64), and the compile's verification rightly refuses.
    """
    command = [
        sys.executable,
        "-m",
        "edgec",
        "compile",
        str(checkpoint),
        "--arch",
        arch,
        "--target",
        "host",
        "--no-measure",
        "--verify-images",
        str(images),
        "--out",
        str(out),
        "--json",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=cs.REPO_ROOT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(command[2:])}` exited {done.returncode}:\n{done.stderr[-4000:]}"
        )
    return json.loads((out / "manifest.json").read_text()), seconds


def run_onnx(path: Path, inputs: torch.Tensor, threads: int) -> torch.Tensor:
    """The ONNX file's first output on `inputs` (sample by sample when the batch is fixed)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    batches = [inputs] if not isinstance(feed.shape[0], int) else inputs.split(feed.shape[0])
    outs = [session.run(None, {feed.name: b.numpy()})[0] for b in batches]
    return torch.from_numpy(np.concatenate(outs))


def official_fused(model: torch.nn.Module, module: str) -> torch.nn.Module:
    """A copy of `model` after the official `replace_batchnorm` (Conv2d_BN → Conv2d, …)."""
    fused = copy.deepcopy(model)
    importlib.import_module(module).replace_batchnorm(fused)
    return fused.eval()


def build_official(family: Family, repo: Path, arch: str, seed: int, **options):
    """A fresh official model (official initialisation under `seed`, training mode)."""
    torch.manual_seed(seed)
    with cs.on_path(repo / family.import_root), inert_timm_registry():
        return family.build(arch, **options)


def official_checkpoint(
    family: Family, repo: Path, arch: str, work: Path, seed: int, calib: torch.Tensor, **options
) -> tuple[torch.nn.Module, Path]:
    """The official model with seeded weights (in eval mode) and the file that holds them.

    Seeded weights (`compare_support.seeded_state_dict`), then BatchNorm statistics measured
    on `calib` (photos other than the compared ones); `eval()` comes after loading.
    """
    official = build_official(family, repo, arch, seed, **options)
    official.load_state_dict(cs.seeded_state_dict(official.state_dict(), seed), strict=True)
    measure_bn_statistics(official, calib)
    state = official.state_dict()
    checkpoint = work / f"{arch}_official{'_' if options else ''}{'_'.join(options)}.pth"
    torch.save({family.container: state}, checkpoint)
    return official, checkpoint


def compare_distilled(
    cmp: cs.Comparison, family: Family, repo: Path, work: Path, images, args
) -> None:
    """An official checkpoint trained with distillation (`head_dist.*`): edgec vs official.

    The official eval forward averages `head` and `head_dist`; edgec folds the two heads into
    one while remapping (`edgec.models.official_layout.fold_distillation_head`).
    """
    arch = family.distillation_probe
    x = photos(arch, images[: args.images_count])
    calib = photos(arch, images[args.images_count :])
    official, checkpoint = official_checkpoint(
        family, repo, arch, work, args.seed, calib, distillation=True
    )
    try:
        ours = edgec.models.create(arch, checkpoint=checkpoint)
    except UserError as exc:
        cmp.note(f"{arch} distillation=True checkpoint (head_dist.*) is refused: {exc}")
        return
    with torch.no_grad():
        cmp.compare(f"{arch} distillation=True (head + head_dist)/2", official(x), ours(x))


def compare_variant(
    cmp: cs.Comparison, family: Family, repo: Path, arch: str, work: Path, images, args
) -> dict:
    """Steps 1–4 of the module doc for one variant; returns the compile's record."""
    x = photos(arch, images[: args.images_count])
    calib = photos(arch, images[args.images_count :])
    official, checkpoint = official_checkpoint(family, repo, arch, work, args.seed, calib)

    ours = edgec.models.create(arch, checkpoint=checkpoint)
    with torch.no_grad():
        reference = official(x)
        cmp.compare(f"{arch} {tuple(x.shape[1:])} edgec.models.create(ckpt)", reference, ours(x))
        for control in family.controls:
            label, wrong = control(
                lambda: build_official(family, repo, arch, args.seed), official.state_dict()
            )
            cmp.compare(f"{arch} {label}", wrong(x), ours(x), expect_equal=False)
    info = ours.edgec_info

    manifest, seconds = compile_cli(checkpoint, arch, work / f"{arch}.host", args.images)
    onnx_path = work / f"{arch}.host" / manifest["artifact"]["path"]
    compiled = run_onnx(onnx_path, x, args.threads)
    cmp.compare(f"{arch} edgec compile → ONNX Runtime", reference, compiled)
    if family.fuse_module is not None:
        with torch.no_grad():
            fused = official_fused(official, family.fuse_module)(x)
        cmp.compare(f"{arch} official fused (replace_batchnorm) vs ONNX Runtime", fused, compiled)
    final = manifest["fidelity"]["final_vs_pytorch"]
    return {
        "checkpoint_layout": info.checkpoint_layout,
        "load_notes": info.notes,
        "official_max_abs_logit": float(reference.abs().max()),
        "official_logit_std": float(reference.std()),
        "compile_seconds": round(seconds, 1),
        "artifact": manifest["artifact"]["path"],
        "graph_nodes": {k: manifest["graph"][k]["node_count"] for k in ("exported", "compiled")},
        "compile_fidelity_final_vs_pytorch": final,
    }


def run(family: Family) -> int:
    """Parse the arguments, compare each chosen variant, write the JSON; the exit code."""
    p = cs.parser(family.description, family.name)
    p.add_argument(
        "--variants",
        default=",".join(family.default_variants),
        help=f"comma-separated edgec names, or 'all' ({', '.join(family.variants)})",
    )
    p.add_argument("--images", type=Path, default=IMAGES, help="photos (.npz or folder)")
    p.add_argument("--images-count", type=int, default=4, help="batch of photos compared")
    p.add_argument(
        "--calib-count", type=int, default=16, help="further photos that set BN statistics"
    )
    p.add_argument(
        "--official-commit", help="the checkout's commit, recorded (a `git archive` has none)"
    )
    p.add_argument("--work", type=Path, help="keep checkpoints and artifacts here (default: tmp)")
    args = p.parse_args()
    variants = list(family.variants) if args.variants == "all" else args.variants.split(",")
    unknown = sorted(set(variants) - set(family.variants))
    if unknown:
        sys.exit(f"error: unknown variant(s) {unknown}; choose from {list(family.variants)}")
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    images = read_images(args.images, limit=args.images_count + args.calib_count)
    repo = cs.require(args.official_repo, family.inside)
    cmp = CosineComparison(family.name, args.rtol)
    facts = {"imported": family.inside, "container": family.container}
    if args.official_commit:
        facts["commit"] = args.official_commit
    cmp.source(family.name, repo, **facts)
    compiles = {}
    with contextlib.ExitStack() as stack:
        work = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        work.mkdir(parents=True, exist_ok=True)
        for arch in variants:
            compiles[arch] = compare_variant(cmp, family, repo, arch, work, images, args)
        if family.distillation_probe is not None:
            compare_distilled(cmp, family, repo, work, images, args)
    for text in family.notes:
        cmp.note(text)
    settings = {
        "variants": variants,
        "images": f"{args.images.name}: first {args.images_count} compared, next "
        f"{args.calib_count} set the BatchNorm running statistics",
        "seed": args.seed,
        "threads": args.threads,
        "compile_command": "edgec compile CKPT --arch ARCH --target host --no-measure "
        f"--verify-images {args.images.name} --out DIR --json",
        "compiles": compiles,
    }
    return cmp.write(args.out, started, settings)
