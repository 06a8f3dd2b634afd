"""EfficientTAM: edgec against the official yformer/EfficientTAM code, call by call.

The official model is built by the official `build_efficienttam` (hydra + the official
`configs/efficienttam/*.yaml`; needs `hydra-core`, installed as a dependency, no stubs) with
these overrides: `compile_image_encoder=False` (torch.compile is for CUDA speed only) and
`binarize_mask_from_pts_for_mem_enc=true` (what the official video predictor sets), so both
branches of `_encode_new_memory` exist; with `--image-size S` also `image_size=S` and the RoPE
`feat_sizes` S/16 (what `efficienttam_*_512x512.yaml` changes for 512). It is built with
`apply_postprocessing=True` (the default: the decoder's stability fallback is on, as in
edgec). The same seeded state_dict is loaded strictly into both.

Calls compared (batch 2 where the official call takes a batch):
- `image_encoder(img)` and its `trunk(img)`;
- `sam_prompt_encoder(points, boxes, masks)` (points with labels 1/0/-1 and padding, box +
  points, mask prompt) and `get_dense_pe()`;
- `sam_mask_decoder(...)` with multimask on and off (raw decoder outputs), and
  `repeat_image=True`;
- `_forward_sam_heads(...)` (NO_OBJ substitution, best-mask argmax, object pointer), multimask
  on/off, with points and with a full-resolution mask prompt, with the object-score head's
  bias shifted (in both models) so the object clearly is, then clearly is not, present;
- `memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)` and `_encode_new_memory(...)`
  with `is_mask_from_pts` True and False;
- `memory_attention(curr, memory, curr_pos, memory_pos, num_obj_ptr_tokens)` with 1 memory
  frame (full attention in every variant) and with 2 frames + 64 object-pointer tokens (the
  pooled path of `_1` / `_2`; control: edgec's full attention must differ from it);
- `--groups tracking` (opt-in): the official `EfficientTAMVideoPredictor` (`init_state` on a
  JPEG folder, one positive click on frame 0, `propagate_in_video`) against edgec's `Tracker`
  over `TorchGraphs`, on a synthetic clip; per-frame video-resolution mask logits.

Which config runs which calls: see DEFAULT_CONFIGS (`--configs` runs all but tracking on each
config given; `--groups` picks the calls for every config).

    python tools/official_compare/efficienttam.py --official-repo /tmp/official/EfficientTAM
    python tools/official_compare/efficienttam.py --official-repo /tmp/official/EfficientTAM \
        --image-size 256 --configs efficienttam_ti,efficienttam_ti_1,efficienttam_ti_2 \
        --groups tracking --out bench/results/official_compare_efficienttam_tracking.json
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import compare_support as cs
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

import edgec.models
import edgec.models.efficienttam

# config → the call groups it is compared on (the trunk and heads are the same in ti/_1/_2).
DEFAULT_CONFIGS = {
    "efficienttam_ti": ("image", "heads", "memory_encoder", "memory_attention"),
    "efficienttam_ti_1": ("memory_attention",),
    "efficienttam_ti_2": ("memory_attention",),
    "efficienttam_s": ("image",),
}
SCORE_BIAS = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"
ALL_GROUPS = ("image", "heads", "memory_encoder", "memory_attention")
GROUPS = (*ALL_GROUPS, "tracking")
PREDICTOR = "efficient_track_anything.efficienttam_video_predictor.EfficientTAMVideoPredictor"
# What `build_efficienttam_video_predictor` adds (it cannot be called with overrides on a
# CPU-only machine: without CUDA it replaces the caller's overrides by its own).
VIDEO_PREDICTOR_OVERRIDES = (
    f"++model._target_={PREDICTOR}",
    "++model.fill_hole_area=8",
)


def build_official(name: str, image_size: int | None, extra: tuple[str, ...] = ()):
    from efficient_track_anything.build_efficienttam import build_efficienttam

    overrides = [
        "++model.compile_image_encoder=False",
        "++model.binarize_mask_from_pts_for_mem_enc=true",
        *extra,
    ]
    if image_size is not None:
        feat = image_size // 16
        overrides += [f"++model.image_size={image_size}"] + [
            f"++model.memory_attention.layer.{part}.feat_sizes=[{feat},{feat}]"
            for part in ("self_attention", "cross_attention")
        ]
    return build_efficienttam(
        f"configs/efficienttam/{name}.yaml", None, device="cpu", hydra_overrides_extra=overrides
    )


class Case:
    """One configuration: the official model, edgec's (same weights), the shared inputs."""

    def __init__(self, name: str, cmp: cs.Comparison, args):
        self.name, self.cmp, self.args = name, cmp, args
        torch.manual_seed(args.seed)
        self.official = build_official(name, args.image_size)
        self.state = cs.seeded_state_dict(self.official.state_dict(), args.seed)
        self.official.load_state_dict(self.state, strict=True)
        self.size = self.official.image_size
        self.feat = self.size // 16
        self.ours = edgec.models.create(name, checkpoint=self.state, image_size=self.size)
        self.control = None  # edgec with full attention, for the pooled variants
        if edgec.models.efficienttam.VARIANTS[name].pooled:
            full = name.replace("_1", "").replace("_2", "")
            self.control = edgec.models.create(full, checkpoint=self.state, image_size=self.size)
        self.g = torch.Generator().manual_seed(args.seed + 1)

    def randn(self, *shape) -> torch.Tensor:
        return torch.randn(*shape, generator=self.g)

    def compare(self, call: str, official, ours, expect_equal: bool = True) -> None:
        self.cmp.compare(f"{self.name} {call}", official, ours, expect_equal)

    def both(self, call: str, fn) -> None:
        """Compare `fn(model)` on the official model and on edgec's."""
        self.compare(call, fn(self.official), fn(self.ours))

    def features(self, batch: int) -> torch.Tensor:
        """Image features for the decoders: unit-scale like the neck's LayerNorm output."""
        return self.randn(batch, 256, self.feat, self.feat)

    def points(self, batch: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        coords = torch.rand(batch, n, 2, generator=self.g) * self.size
        labels = torch.tensor([[1, 0, -1, 1, 0][:n]] * batch, dtype=torch.int32)
        return coords, labels

    def image(self) -> None:
        img = self.randn(2, 3, self.size, self.size)
        self.both("image_encoder.trunk(img)", lambda m: m.image_encoder.trunk(img))
        self.both("image_encoder(img)", lambda m: m.image_encoder(img))

    def heads(self) -> None:
        s = self.size
        points = self.points(2, 3)
        box = torch.tensor([[0.1 * s, 0.2 * s, 0.7 * s, 0.9 * s]] * 2)
        mask = self.randn(2, 1, 4 * self.feat, 4 * self.feat)
        for label, kwargs in (
            ("points", {"points": points, "boxes": None, "masks": None}),
            ("box+points", {"points": points, "boxes": box, "masks": None}),
            ("box", {"points": None, "boxes": box, "masks": None}),
            ("points+mask", {"points": points, "boxes": None, "masks": mask}),
        ):
            self.both(
                f"sam_prompt_encoder({label})", lambda m, kw=kwargs: m.sam_prompt_encoder(**kw)
            )
        self.both(
            "sam_prompt_encoder.get_dense_pe()", lambda m: m.sam_prompt_encoder.get_dense_pe()
        )

        feats = self.features(2)
        sparse, dense = self.official.sam_prompt_encoder(points=points, boxes=box, masks=None)
        pe = self.official.sam_prompt_encoder.get_dense_pe()
        for multimask in (True, False):
            self.both(
                f"sam_mask_decoder(multimask_output={multimask})",
                lambda m, mm=multimask: m.sam_mask_decoder(
                    image_embeddings=feats,
                    image_pe=pe,
                    sparse_prompt_embeddings=sparse,
                    dense_prompt_embeddings=dense,
                    multimask_output=mm,
                    repeat_image=False,
                    high_res_features=None,
                ),
            )
        self.both(
            "sam_mask_decoder(repeat_image=True)",
            lambda m: m.sam_mask_decoder(
                image_embeddings=feats[:1],
                image_pe=pe,
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
                repeat_image=True,
            ),
        )
        point_inputs = dict(zip(("point_coords", "point_labels"), self.points(2, 2), strict=True))
        full_mask = self.randn(2, 1, s, s)
        scores = self.official._forward_sam_heads(feats, point_inputs=point_inputs)[-1]
        # Random weights give object scores near 0: shift the score head's bias (in both
        # models) so that both samples clearly show the object, then clearly do not.
        for appearing, shift in ((True, 1 - scores.min()), (False, -1 - scores.max())):
            with self.score_bias_shifted(float(shift)):
                for label, kwargs in (
                    ("points", {"point_inputs": point_inputs}),
                    ("mask", {"mask_inputs": full_mask}),
                ):
                    for multimask in (True, False):
                        self.both(
                            f"_forward_sam_heads({label}, multimask_output={multimask}, "
                            f"object={'yes' if appearing else 'no'})",
                            lambda m, kw=kwargs, mm=multimask: m._forward_sam_heads(
                                feats, multimask_output=mm, **kw
                            ),
                        )

    @contextlib.contextmanager
    def score_bias_shifted(self, shift: float):
        tensors = [m.state_dict()[SCORE_BIAS] for m in (self.official, self.ours)]
        for t in tensors:
            t.add_(shift)
        try:
            yield
        finally:
            for t in tensors:
                t.sub_(shift)

    def memory_encoder(self) -> None:
        feats = self.features(2)
        mask = self.randn(2, 1, self.size, self.size) * 4
        self.both(
            "memory_encoder(pix_feat, mask, skip_mask_sigmoid=True)",
            lambda m: m.memory_encoder(feats, mask, skip_mask_sigmoid=True),
        )
        seq = [feats.flatten(2).permute(2, 0, 1)]
        sizes = [(self.feat, self.feat)]
        score = torch.tensor([[1.5], [-0.5]])
        for from_pts in (True, False):
            self.both(
                f"_encode_new_memory(is_mask_from_pts={from_pts})",
                lambda m, fp=from_pts: m._encode_new_memory(seq, sizes, mask, score, fp),
            )

    def memory_attention(self) -> None:
        hw = self.feat * self.feat
        curr = self.randn(hw, 1, 256)
        curr_pos = self.randn(hw, 1, 256)
        for frames, pointers in ((1, 0), (2, 16)):
            tokens = frames * hw + 4 * pointers
            memory, memory_pos = self.randn(tokens, 1, 64), self.randn(tokens, 1, 64)
            self.both(
                f"memory_attention(T={frames}, ptr_tokens={4 * pointers})",
                lambda m, mem=memory, pos=memory_pos, n=4 * pointers: m.memory_attention(
                    curr, mem, curr_pos, pos, num_obj_ptr_tokens=n
                ),
            )
        if self.control is not None:  # a pooled variant: full attention must differ from it
            self.compare(
                f"memory_attention(T={frames}) vs edgec full attention",
                self.official.memory_attention(curr, memory, curr_pos, memory_pos, 4 * pointers),
                self.control.memory_attention(curr, memory, curr_pos, memory_pos, 4 * pointers),
                expect_equal=False,
            )

    def tracking(self) -> None:
        """The official video predictor against edgec's Tracker (PyTorch graphs) on a clip."""
        from edgec.models.efficienttam import TorchGraphs, Tracker

        # Random weights put object scores near 0: raise the score head's bias so the object
        # is present on the prompted frame and the clip tracks a real (non-empty) mask.
        state = {**self.state, SCORE_BIAS: self.state[SCORE_BIAS] + 2}
        predictor = build_official(self.name, self.args.image_size, VIDEO_PREDICTOR_OVERRIDES)
        predictor.load_state_dict(state, strict=True)
        ours = edgec.models.create(self.name, checkpoint=state, image_size=self.size)
        with tempfile.TemporaryDirectory() as folder:
            clip = synthetic_clip(Path(folder), self.args.track_frames, seed=3)
            session = predictor.init_state(video_path=folder)
            point, label = np.array([[80.0, 90.0]], np.float32), np.array([1], np.int32)
            predictor.add_new_points_or_box(session, 0, 1, points=point, labels=label)
            official = {t: m for t, _, m in predictor.propagate_in_video(session)}
        pooled = edgec.models.efficienttam.VARIANTS[self.name].pooled
        tracker = Tracker(TorchGraphs(ours), self.size, pooled, num_frames=len(clip))
        ious, areas = [], []
        results = tracker.run(clip, points=point, labels=label)
        for result in results:
            logits = F.interpolate(
                torch.from_numpy(result.low_res_logits),
                size=clip[0].shape[:2],
                mode="bilinear",
                align_corners=False,
            )
            reference = official[result.frame_idx]
            self.compare(f"tracking frame {result.frame_idx} video_res_masks", reference, logits)
            ious.append(iou(reference[0, 0] > 0, torch.from_numpy(result.mask)))
            areas.append(round(float(result.mask.mean()), 4))
        self.cmp.note(
            f"{self.name}: tracking, per frame: mask IoU official vs edgec {ious}, "
            f"mask area fraction {areas}, memory frames / pointers "
            f"{[(r.memory_frames, r.obj_ptrs) for r in results]}"
        )


def iou(a: torch.Tensor, b: torch.Tensor) -> float:
    union = (a | b).sum().item()
    return 1.0 if union == 0 else round((a & b).sum().item() / union, 6)


def synthetic_clip(folder: Path, frames: int, seed: int) -> list[np.ndarray]:
    """A small clip (a bright disc moving over a smooth background), written as the official
    loader's JPEG folder (00000.jpg, …) and read back, so both sides see the same pixels."""
    g = np.random.default_rng(seed)
    h, w = 180, 240
    yy, xx = np.mgrid[0:h, 0:w]
    background = 60 + 40 * np.sin(xx[..., None] / 23.0 + g.uniform(0, 6, 3)) * np.cos(
        yy[..., None] / 17.0
    )
    clip = []
    for t in range(frames):
        cx, cy = 80 + 12 * t, 90 + 4 * t
        disc = ((xx - cx) ** 2 + (yy - cy) ** 2 < 30**2)[..., None]
        frame = np.where(disc, [230, 200, 40], background).astype(np.uint8)
        path = folder / f"{t:05d}.jpg"
        Image.fromarray(frame).save(path, quality=95)
        clip.append(np.asarray(Image.open(path).convert("RGB")))
    return clip


def compare_config(cmp, name: str, groups, args) -> None:
    case = Case(name, cmp, args)
    cross = type(case.official.memory_attention.layers[0].cross_attn_image).__name__
    cmp.note(f"{name}: image_size {case.size}, cross-attention {cross}, groups {list(groups)}")
    with torch.no_grad():
        for group in groups:
            getattr(case, group)()


def main() -> int:
    p = cs.parser(__doc__.splitlines()[0], "efficienttam")
    p.add_argument(
        "--image-size",
        type=int,
        help="build every config at this size (multiple of 32) instead of its official one",
    )
    p.add_argument(
        "--configs",
        help="comma-separated config names, each compared on all call groups (default: "
        "efficienttam_ti on all, _ti_1 and _ti_2 on memory attention, _s on the image encoder)",
    )
    p.add_argument(
        "--groups",
        help=f"comma-separated call groups for every config, of {', '.join(GROUPS)} "
        "(tracking: the official video predictor vs edgec's Tracker on a synthetic clip)",
    )
    p.add_argument("--track-frames", type=int, default=5, help="frames of the tracking clip")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    repo = cs.require(args.official_repo, "efficient_track_anything/build_efficienttam.py")
    configs = {c: ALL_GROUPS for c in args.configs.split(",")} if args.configs else DEFAULT_CONFIGS
    if args.groups:
        unknown = set(args.groups.split(",")) - set(GROUPS)
        if unknown:
            p.error(f"unknown group(s) {sorted(unknown)}: use {', '.join(GROUPS)}")
        configs = {c: tuple(args.groups.split(",")) for c in configs}
    cmp = cs.Comparison("efficienttam", args.rtol)
    cmp.source("efficienttam", repo, configs=list(configs))
    with cs.on_path(repo):
        for name, groups in configs.items():
            compare_config(cmp, name, groups, args)
    settings = {
        "image_size": args.image_size or "official",
        "seed": args.seed,
        "track_frames": args.track_frames,
    }
    return cmp.write(args.out, started, settings)


if __name__ == "__main__":
    raise SystemExit(main())
