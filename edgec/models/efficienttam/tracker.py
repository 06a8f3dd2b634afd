"""Host-side EfficientTAM video tracker: the memory bank and the per-frame loop, in numpy.

The loop follows the official video predictor (`efficienttam_video_predictor.py`,
`EfficientTAMBase._prepare_memory_conditioned_features`) for one object prompted on the
first frame, and runs the graphs of `graphs.py` through a `graphs(name, feeds)` callable —
`runners.TorchGraphs` (PyTorch) or `runners.OrtGraphs` (the exported ONNX files) — so the
PyTorch loop and the ONNX Runtime loop are the same code.

Per frame:
1. `image_encoder` on the frame (RGB resized to S×S with PIL bicubic, /255, ImageNet
   mean/std, as the official JPEG-folder loader).
2. Prompted frame: the decoder runs on `vision_features_no_mem` with the prompt (box corners
   labelled 2/3 first, then points; coordinates scaled from the video to S×S); one point or
   less → multimask decoder (best of 3 by IoU), otherwise the single-mask decoder with the
   stability fallback. Later frames: `memory_attention` on the bank, then the multimask
   decoder with the empty prompt (0, 0, label -1).
3. `memory_encoder` on (vision_features, best low-res mask), binarised on the prompted frame
   (`binarize_mask_from_pts_for_mem_enc`), sigmoid otherwise; the memory is stored rounded
   to bfloat16, as the predictor stores it.

Memory bank: every prompted frame (temporal index 6) plus the frames 1..6 back that exist
(index k − 1 for k frames back), prompted frames first; object pointers of prompted frames,
then of the frames 1..min(num_frames, 16) − 1 back, newest first.
Not done (as the official CPU path): hole filling (a CUDA kernel; the official code skips it
without the extension), multiple objects and non-overlap, re-prompting later frames.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from edgec.errors import UserError
from edgec.models.efficienttam import config as C

Graphs = Callable[[str, Mapping[str, np.ndarray]], dict[str, np.ndarray]]
COND_TPOS = C.NUM_MASKMEM - 1  # `maskmem_tpos_enc` index of a prompted frame


@dataclasses.dataclass
class FrameResult:
    """One frame's output: the mask at video resolution and the raw decoder outputs."""

    frame_idx: int
    mask: np.ndarray  # (H, W) bool
    low_res_logits: np.ndarray  # (1, 1, S/4, S/4)
    object_score: float
    memory_frames: int  # spatial memories attended to (0 on the prompted frame)
    obj_ptrs: int


@dataclasses.dataclass
class _Memory:
    features: np.ndarray  # (1, 64, h, w), bfloat16 values in float32
    obj_ptr: np.ndarray  # (1, 256)


def round_to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 → nearest bfloat16 (ties to even), returned as float32 (torch's cast)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded & np.uint32(0xFFFF0000)).view(np.float32)


def _resize_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) bilinear interpolation matrix, half-pixel centres (align_corners=False)."""
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out) + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = src - lo
    weights = np.zeros((n_out, n_in), dtype=np.float64)
    np.add.at(weights, (np.arange(n_out), lo), 1.0 - frac)
    np.add.at(weights, (np.arange(n_out), hi), frac)
    return weights


def resize_bilinear(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a 2-D map bilinearly (PyTorch `interpolate(..., align_corners=False)`)."""
    rows = _resize_weights(logits.shape[0], height)
    cols = _resize_weights(logits.shape[1], width)
    return (rows @ logits.astype(np.float64) @ cols.T).astype(np.float32)


def preprocess(frame: np.ndarray, image_size: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB → (1, 3, S, S) float32, resized and ImageNet-normalised."""
    from PIL import Image

    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise UserError(
            f"a video frame must be an (H, W, 3) uint8 RGB array, got {frame.dtype} {frame.shape}",
            "decode frames to RGB uint8 (e.g. PyAV frame.to_ndarray(format='rgb24'))",
        )
    resized = Image.fromarray(frame).resize((image_size, image_size), Image.Resampling.BICUBIC)
    x = np.asarray(resized, dtype=np.float32) / 255.0
    x = (x - np.array(C.MEAN, dtype=np.float32)) / np.array(C.STD, dtype=np.float32)
    return x.transpose(2, 0, 1)[None].copy()


class Tracker:
    """Track one object from a prompt on the first frame; `graphs` runs the exported parts."""

    def __init__(
        self, graphs: Graphs, image_size: int, pooled: bool, num_frames: int | None = None
    ):
        self.graphs = graphs
        self.image_size = image_size
        self.pooled = pooled
        self.max_ptrs = min(num_frames, C.MAX_OBJ_PTRS) if num_frames else C.MAX_OBJ_PTRS
        self.num_frames = num_frames
        self.cond: dict[int, _Memory] = {}
        self.non_cond: dict[int, _Memory] = {}
        self.frame_idx = -1

    # ---- prompts -------------------------------------------------------------------------

    def _prompt(self, size: tuple[int, int], points, labels, box) -> tuple[np.ndarray, np.ndarray]:
        coords, tags = [], []
        if box is not None:
            x0, y0, x1, y1 = (float(v) for v in np.asarray(box, dtype=np.float32).reshape(4))
            coords += [[x0, y0], [x1, y1]]
            tags += [2, 3]
        if points is not None:
            pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
            lab = np.asarray(
                labels if labels is not None else np.ones(len(pts)), dtype=np.int64
            ).reshape(-1)
            if len(lab) != len(pts) or not set(lab.tolist()) <= {0, 1}:
                raise UserError(
                    f"points need one label each, 1 (object) or 0 (background); got {len(pts)} "
                    f"points and labels {lab.tolist()}",
                    "pass labels=[1] for a single positive click",
                )
            coords += pts.tolist()
            tags += lab.tolist()
        if not coords:
            raise UserError(
                "a prompt needs points or a box", "pass points=[[x, y]] or box=[x0, y0, x1, y1]"
            )
        height, width = size
        scale = np.array([self.image_size / width, self.image_size / height], dtype=np.float32)
        return (np.asarray(coords, dtype=np.float32) * scale)[None], np.asarray(
            [tags], dtype=np.int64
        )

    def _decode(
        self, name: str, image_embed: np.ndarray, coords: np.ndarray, labels: np.ndarray
    ) -> dict:
        side = 4 * (self.image_size // C.PATCH)
        return self.graphs(
            name,
            {
                "image_embed": image_embed,
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": np.zeros((1, 1, side, side), dtype=np.float32),
                "has_mask_input": np.zeros(1, dtype=np.float32),
            },
        )

    def _remember(self, feats: np.ndarray, decoded: dict, binarize: bool) -> _Memory:
        memory = self.graphs(
            "memory_encoder",
            {
                "vision_features": feats,
                "mask": decoded["best_mask"],
                "binarize": np.full(1, float(binarize), np.float32),
            },
        )
        return _Memory(round_to_bfloat16(memory["maskmem_features"]), decoded["obj_ptr"])

    def _result(self, decoded: dict, size: tuple[int, int], frames: int, ptrs: int) -> FrameResult:
        logits = decoded["best_mask"]
        video = resize_bilinear(logits[0, 0], *size)
        score = float(decoded["object_score_logits"].reshape(-1)[0])
        return FrameResult(self.frame_idx, video > 0, logits, score, frames, ptrs)

    # ---- the loop -------------------------------------------------------------------------

    def start(self, frame: np.ndarray, points=None, labels=None, box=None) -> FrameResult:
        """Prompt the object on `frame` (video pixels: points (N, 2) x, y; box x0, y0, x1, y1)."""
        self.cond.clear()
        self.non_cond.clear()
        self.frame_idx = 0
        size = frame.shape[:2]
        coords, tags = self._prompt(size, points, labels, box)
        feats = self.graphs("image_encoder", {"image": preprocess(frame, self.image_size)})
        decoder = "prompt_mask_decoder" if coords.shape[1] <= 1 else "prompt_mask_decoder_single"
        decoded = self._decode(decoder, feats["vision_features_no_mem"], coords, tags)
        self.cond[0] = self._remember(feats["vision_features"], decoded, binarize=True)
        return self._result(decoded, size, 0, 0)

    def _memory_bank(self, idx: int) -> tuple[list[np.ndarray], list[int], list[np.ndarray]]:
        frames = [m.features for m in self.cond.values()]
        tpos = [COND_TPOS] * len(frames)
        for back in range(C.NUM_MASKMEM - 1, 0, -1):  # oldest first, as the official t_pos order
            memory = self.non_cond.get(idx - back)
            if memory is not None:
                frames.append(memory.features)
                tpos.append(back - 1)
        ptrs = [m.obj_ptr for t, m in self.cond.items() if t <= idx]
        for back in range(1, self.max_ptrs):
            t = idx - back
            if t < 0 or (self.num_frames is not None and t >= self.num_frames):
                break
            if t in self.non_cond:
                ptrs.append(self.non_cond[t].obj_ptr)
        return frames, tpos, ptrs

    def track(self, frame: np.ndarray) -> FrameResult:
        """Segment the object on the next frame from the memory bank, then add the frame to it."""
        if not self.cond:
            raise UserError(
                "the tracker has no prompt yet", "call start(frame, points=..., box=...) first"
            )
        self.frame_idx += 1
        idx = self.frame_idx
        feats = self.graphs("image_encoder", {"image": preprocess(frame, self.image_size)})[
            "vision_features"
        ]
        frames, tpos, ptrs = self._memory_bank(idx)
        graph = (
            "memory_attention_1frame" if self.pooled and len(frames) == 1 else "memory_attention"
        )
        pix = self.graphs(
            graph,
            {
                "vision_features": feats,
                "memory_features": np.concatenate(frames, axis=0),
                "memory_tpos": np.asarray(tpos, dtype=np.int64),
                "obj_ptrs": np.concatenate(ptrs, axis=0),
            },
        )["pix_feat_with_mem"]
        empty = np.zeros((1, 1, 2), dtype=np.float32), -np.ones((1, 1), dtype=np.int64)
        decoded = self._decode("prompt_mask_decoder", pix, *empty)
        self.non_cond[idx] = self._remember(feats, decoded, binarize=False)
        self.non_cond.pop(idx - max(C.NUM_MASKMEM, self.max_ptrs), None)  # no longer reachable
        return self._result(decoded, frame.shape[:2], len(frames), len(ptrs))

    def run(
        self, frames: Iterable[np.ndarray], points=None, labels=None, box=None
    ) -> list[FrameResult]:
        """Prompt on the first frame, then track through the rest."""
        results: list[FrameResult] = []
        for i, frame in enumerate(frames):
            results.append(self.start(frame, points, labels, box) if i == 0 else self.track(frame))
        return results


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def per_frame_iou(a: Sequence[FrameResult], b: Sequence[FrameResult]) -> list[float]:
    """Mask IoU frame by frame between two runs of the same clip."""
    return [mask_iou(x.mask, y.mask) for x, y in zip(a, b, strict=True)]
