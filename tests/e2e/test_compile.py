"""`edgec compile` end to end through the CLI, as a user runs it.

Official-layout checkpoints with non-trivial random weights (built from the shared manifests)
of the smallest variant of each family are compiled for the host; the artifact is run in ONNX
Runtime and compared with the official forward (EfficientViT-M, SHViT) and with PyTorch.
"""

from __future__ import annotations

import io
import json

import numpy as np
import onnx
import onnx_ir as ir
import onnxruntime
import pytest
import torch
from support.official import (
    MANIFESTS,
    SHARED,
    efficientvit_block,
    official_forward,
    official_state_dict,
    shvit_block,
)

from edgec.artifact import sha256_file
from edgec.cli import main
from edgec.exporters.export import export_onnx
from edgec.models import create
from edgec.preprocess import Preprocessing, read_images

IMAGES = SHARED / "data" / "imagenet_samples.npz"
needs_shared = pytest.mark.skipif(not MANIFESTS.is_dir(), reason="../shared not present")
pytestmark = [pytest.mark.slow, needs_shared]


def compile_cli(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["compile", *args, "--json", "--latency-runs", "100"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def real_batch(preprocessing: dict, count: int = 3) -> np.ndarray:
    return Preprocessing.from_dict(preprocessing).apply(read_images(IMAGES, limit=count))


def run_artifact(path, batch: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate(
        [session.run(None, {"input": batch[i : i + 1]})[0] for i in range(len(batch))]
    )


@pytest.fixture(scope="module")
def m0_build(tmp_path_factory):
    """EfficientViT-M0 official-layout checkpoint (in a `model` container) compiled once."""
    work = tmp_path_factory.mktemp("m0")
    sd = official_state_dict("efficientvit_m0", seed=5)
    checkpoint = work / "efficientvit_m0.pth"
    torch.save({"model": sd, "epoch": 3}, checkpoint)
    out = work / "out"
    code = main(
        [
            "compile",
            str(checkpoint),
            "--arch",
            "efficientvit_m0",
            "--target",
            "host",
            "--out",
            str(out),
            "--verify-images",
            str(IMAGES),
            "--verify-count",
            "3",
            "-q",
        ]
    )
    assert code == 0
    return {"sd": sd, "checkpoint": checkpoint, "out": out, "work": work}


def test_m0_artifact_matches_the_official_forward(m0_build):
    manifest = json.loads((m0_build["out"] / "manifest.json").read_text())
    artifact = m0_build["out"] / manifest["artifact"]["path"]
    batch = real_batch(manifest["model"]["preprocessing"])
    with torch.no_grad():
        reference = official_forward(torch.from_numpy(batch), m0_build["sd"], efficientvit_block)
    got = run_artifact(artifact, batch)
    bound = 5e-5 * max(1.0, float(reference.abs().max()))
    assert np.abs(got - reference.numpy()).max() <= bound


def test_m0_manifest_and_report_say_what_happened(m0_build):
    out = m0_build["out"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["kind"] == "checkpoint"
    assert manifest["input"]["sha256"] == sha256_file(m0_build["checkpoint"])
    assert manifest["verification_inputs"]["kind"] == "user images"
    for stage in ("export_vs_pytorch", "final_vs_pytorch"):
        assert manifest["fidelity"][stage]["passed"]
    latency = manifest["latency"]
    assert latency["method"] == "measured" and latency["runs"] >= 100 and latency["threads"] == 1
    assert latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"]
    assert abs(sum(row["share"] for row in latency["per_op"]) - 1) < 0.01
    assert manifest["graph"]["compiled"]["node_count"] < manifest["graph"]["exported"]["node_count"]
    assert manifest["graph"]["exported"]["macs"]["total"] == 79_193_600  # models-a.md
    # the attention rewrite trades a few MACs (cascade as its own Gemm) for far fewer kernels
    assert abs(manifest["graph"]["compiled"]["macs"]["total"] / 79_193_600 - 1) < 0.05
    added = manifest["graph"]["compiled"]["macs"]["total"] - 79_193_600
    cga = next(p for p in manifest["passes"] if p["id"] == "attention::cga_fusion")
    assert cga["stats"]["macs_added"] == added  # the only pass that adds MACs
    assert {p["id"] for p in manifest["passes"]} >= {"cleanup::fold_batchnorm"}
    files = {f["path"]: f for f in manifest["files"]}
    charts = {"latency_by_op.png", "latency_by_device.png"}
    assert set(files) == {"efficientvit_m0.onnx", "report.md", "report.json", *charts}
    devices = {d["device"]: d for d in manifest["device_estimates"]}
    assert devices["host"]["measured_ms"] == latency["p50_ms"]
    assert devices["iphone-15-pro"]["estimate_ms"] > 0
    assert set(json.loads((out / "report.json").read_text())["charts"]) == charts
    for name, entry in files.items():
        assert entry["sha256"] == sha256_file(out / name)
    report = (out / "report.md").read_text()
    assert "Fidelity against PyTorch" in report and "p50 ms" in report
    assert "traded for fewer, faster kernels by `attention::cga_fusion`" in report
    metadata = {p.key: p.value for p in onnx.load(out / "efficientvit_m0.onnx").metadata_props}
    assert json.loads(metadata["edgec.preprocessing"])["input_size"] == [3, 224, 224]


def test_m0_rebuild_is_byte_identical(m0_build, capsys):
    out2 = m0_build["work"] / "out2"
    code, _, _ = compile_cli(
        capsys,
        str(m0_build["checkpoint"]),
        "--arch",
        "efficientvit_m0",
        "--out",
        str(out2),
        "--no-measure",
    )
    assert code == 0
    first = m0_build["out"] / "efficientvit_m0.onnx"
    assert sha256_file(first) == sha256_file(out2 / "efficientvit_m0.onnx")


def test_onnx_input_skips_export_and_profile_remeasures(m0_build, capsys, tmp_path):
    onnx_file = m0_build["out"] / "efficientvit_m0.onnx"
    code, manifest, err = compile_cli(capsys, str(onnx_file), "--out", str(tmp_path / "again"))
    assert code == 0, err
    assert manifest["input"]["kind"] == "onnx"
    assert manifest["export"]["exporter"].startswith("none")
    assert main(["profile", str(tmp_path / "again"), "--runs", "100", "--json"]) == 0
    profile = json.loads(capsys.readouterr().out)
    assert profile["runs"] == 100 and profile["per_op"]


@pytest.mark.parametrize(("variant", "block"), [("shvit_s1", shvit_block), ("lowformer_b0", None)])
def test_smallest_variant_of_each_family_compiles_and_matches(variant, block, capsys, tmp_path):
    sd = official_state_dict(variant, seed=6)
    checkpoint = tmp_path / f"{variant}.pth"
    torch.save({"state_dict": sd} if variant.startswith("lowformer") else sd, checkpoint)
    code, manifest, err = compile_cli(
        capsys,
        str(checkpoint),
        "--arch",
        variant,
        "--out",
        str(tmp_path / "out"),
        "--verify-images",
        str(IMAGES),
        "--verify-count",
        "2",
    )
    assert code == 0, err
    assert manifest["fidelity"]["final_vs_pytorch"]["passed"]
    if block is not None:
        batch = real_batch(manifest["model"]["preprocessing"], count=2)
        with torch.no_grad():
            reference = official_forward(torch.from_numpy(batch), sd, block).numpy()
        got = run_artifact(tmp_path / "out" / manifest["artifact"]["path"], batch)
        assert np.abs(got - reference).max() <= 5e-5 * max(1.0, float(np.abs(reference).max()))


def test_unsupported_op_is_listed_and_nothing_is_written(capsys, tmp_path):
    x = onnx.helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    y = onnx.helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    node = onnx.helper.make_node("FancyOp", ["input"], ["output"], domain="com.example", name="f0")
    graph = onnx.helper.make_graph([node], "g", [x], [y])
    model = onnx.helper.make_model(
        graph,
        opset_imports=[
            onnx.helper.make_opsetid("", 18),
            onnx.helper.make_opsetid("com.example", 1),
        ],
    )
    path = tmp_path / "custom.onnx"
    onnx.save(model, path)
    out = tmp_path / "out"
    code, _, err = compile_cli(capsys, str(path), "--out", str(out))
    assert code == 2 and "FancyOp" in err and "f0" in err
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_pickled_module_needs_opt_in(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).eval()
    path = tmp_path / "whole.pt"
    torch.save(module, path)
    code, _, err = compile_cli(capsys, str(path), "--out", str(tmp_path / "a"))
    assert code == 2 and "--allow-pickle" in err
    code, manifest, err = compile_cli(
        capsys, str(path), "--allow-pickle", "--out", str(tmp_path / "b"), "--no-measure"
    )
    assert code == 0, err
    assert manifest["input"]["kind"] == "pickled_module"


def test_torchscript_and_torch_export_inputs(capsys, tmp_path):
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    ).eval()
    x = torch.randn(1, 3, 224, 224)
    scripted = tmp_path / "net.torchscript.pt"
    torch.jit.save(torch.jit.trace(module, x), scripted)
    exported = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(module, (x,)), exported)
    for path, kind in ((scripted, "torchscript"), (exported, "torch_export")):
        code, manifest, err = compile_cli(
            capsys, str(path), "--out", str(tmp_path / kind), "--no-measure"
        )
        assert code == 0, err
        assert manifest["input"]["kind"] == kind
        assert manifest["fidelity"]["export_vs_pytorch"]["passed"]


def test_wrong_keys_are_named(capsys, tmp_path):
    sd = official_state_dict("efficientvit_m0")
    sd.pop("head.l.bias")
    sd["extra.weight"] = torch.zeros(3)
    path = tmp_path / "bad.pth"
    torch.save(sd, path)
    code, _, err = compile_cli(
        capsys, str(path), "--arch", "efficientvit_m0", "--out", str(tmp_path / "o")
    )
    assert code == 2 and "head.linear.bias" in err and "extra.weight" in err
    assert "official-layout checkpoint was remapped" in err


def test_verify_each_pass_dump_ir_and_ort_format(m0_build, capsys, tmp_path):
    exported = tmp_path / "exported.onnx"  # the raw export: the cleanup passes have work to do
    ir.save(
        export_onnx(create("efficientvit_m0", checkpoint=m0_build["sd"]), (3, 224, 224)), exported
    )
    dump = tmp_path / "dump"
    code, manifest, err = compile_cli(
        capsys,
        str(exported),
        "--out",
        str(tmp_path / "o"),
        "--verify",
        "--dump-ir",
        str(dump),
        "--ort-format",
        "--no-measure",
    )
    assert code == 0, err
    changed = [p for p in manifest["passes"] if p["modified"]]
    assert changed and all(p["verification"]["passed"] for p in changed)
    assert len(list(dump.glob("*.onnx"))) == len(changed)
    assert any(f["path"].endswith(".ort") for f in manifest["files"])


def test_inspect_reports_ops_macs_and_targets(m0_build, capsys):
    assert main(["inspect", str(m0_build["out"] / "efficientvit_m0.onnx"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stats"]["macs"]["total"] > 79_000_000
    assert data["targets"]["host"] == []
    # Core ML and TensorRT check the graph their own pipeline makes (BatchNorm folded), with
    # their own rules; a runtime edgec cannot emit is a note, not an op list, with the
    # verdict of the device's other runtime that edgec emits (compile --runtime)
    assert data["targets"]["iphone-12"] == [] and data["targets"]["jetson-orin-nano"] == []
    assert data["targets"]["pixel-8"] == [
        "(target pixel-8 wants runtime tflite, which edgec cannot emit yet; "
        "with --runtime onnxruntime: ok)"
    ]
    assert main(["inspect", str(m0_build["out"] / "efficientvit_m0.onnx")]) == 0
    text = capsys.readouterr().out
    assert "Conv" in text and "unsupported ops: (" not in text


def test_dynamic_batch_and_config_file(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.Flatten()).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    config = tmp_path / "build.toml"
    config.write_text(
        f'[compile]\nmodel = "{path}"\nallow_pickle = true\ndynamic_batch = true\n'
        f'out = "{tmp_path / "o"}"\nmeasure = false\n'
    )
    code = main(["compile", "--config", str(config), "--json", "-q"])
    manifest = json.loads(capsys.readouterr().out)
    assert code == 0 and manifest["export"]["dynamic_batch"]
    session = onnxruntime.InferenceSession(str(tmp_path / "o" / manifest["artifact"]["path"]))
    assert session.run(None, {"input": np.zeros((3, 3, 224, 224), np.float32)})[0].shape[0] == 3


def test_explain_prints_what_a_pass_did(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    args = [str(path), "--allow-pickle", "--no-measure", "--out", str(tmp_path / "o")]
    code = main(["compile", *args, "--explain", "cleanup::fold_batchnorm", "-q"])
    out = capsys.readouterr().out
    assert code == 0 and "\n  cleanup::fold_batchnorm: " in out
    manifest = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert all(r["explanations"] == [] for r in manifest["passes"])
    code = main(["compile", *args, "--explain", "attention::split_heads"])
    assert code == 2 and "not in this compile's pipeline" in capsys.readouterr().err


def test_summary_names_the_artifact_path(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.Flatten()).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    out = tmp_path / "build"
    code = main(["compile", str(path), "--allow-pickle", "--out", str(out), "--no-measure", "-q"])
    assert code == 0
    assert f"→ {out / 'net.onnx'}" in capsys.readouterr().out
    assert (out / "net.onnx").is_file()


def test_a_target_that_is_not_this_machine_gets_an_estimated_latency(capsys, tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.Flatten()).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    code, manifest, err = compile_cli(
        capsys,
        str(path),
        "--allow-pickle",
        "--target",
        "raspberry-pi",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 0, err
    assert manifest["target"]["name"] == "raspberry-pi-5"
    latency = manifest["latency"]
    assert latency["method"] == "estimated" and latency["device"] == "raspberry-pi-5"
    assert latency["total_ms"] > 0 and "p50_ms" not in latency
    assert {k["class"] for k in latency["per_kernel"]} == {"conv"}
    row = next(d for d in manifest["device_estimates"] if d["device"] == "raspberry-pi-5")
    assert row["estimate_ms"] == latency["total_ms"]  # the target's own estimate
    assert "Estimated, not measured" in (tmp_path / "o" / "report.md").read_text()


def test_iphone_target_emits_a_verified_mlpackage(capsys, tmp_path):
    pytest.importorskip("coremltools", reason="coremltools is not installed")
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=4),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()
    path = tmp_path / "net.pt"
    torch.save(module, path)
    out = tmp_path / "o"
    args = (str(path), "--allow-pickle", "--target", "iphone", "--out", str(out))
    code, manifest, err = compile_cli(capsys, *args, "--min-ios", "ios18")
    assert code == 0, err
    artifact = manifest["artifact"]
    assert artifact["runtime"] == "coreml" and artifact["path"] == "net.mlpackage"
    assert artifact["minimum_deployment_target"] == "iOS18"
    assert artifact["reference_check"]["passed"]
    assert artifact["package"]["inputs"][0]["type"] == "imageType"
    assert (out / "net.mlpackage" / "Manifest.json").is_file()
    assert "```swift" in (out / "report.md").read_text()
    code, _, err = compile_cli(capsys, *args[:-2], "--out", str(tmp_path / "h"), "--target",
                               "host", "--min-ios", "ios18")  # fmt: skip
    assert code == 2 and "--min-ios" in err


def test_volumetric_checkpoint_compiles_on_user_volumes(capsys, tmp_path):
    """SegFormer3D (N×4×D×H×W) from an official-layout checkpoint, verified on given volumes."""
    sd = official_state_dict("segformer3d", seed=3)
    checkpoint = tmp_path / "segformer3d.pth"
    torch.save({"model": sd}, checkpoint)
    volumes = np.random.default_rng(0).standard_normal((2, 4, 32, 32, 64)).astype(np.float32)
    np.save(tmp_path / "volumes.npy", volumes)
    out = tmp_path / "out"
    code, manifest, err = compile_cli(
        capsys,
        str(checkpoint),
        "--arch",
        "segformer3d",
        "--input-size",
        "4,32,32,64",
        "--verify-images",
        str(tmp_path / "volumes.npy"),
        "--out",
        str(out),
    )
    assert code == 0, err
    assert manifest["model"]["inputs"][0]["shape"] == [1, 4, 32, 32, 64]
    assert manifest["verification_inputs"]["kind"] == "user volumes"
    assert manifest["fidelity"]["final_vs_pytorch"]["passed"]
    assert manifest["latency"]["method"] == "measured"
    with torch.no_grad():
        reference = create("segformer3d", checkpoint=checkpoint)(torch.from_numpy(volumes)).numpy()
    got = run_artifact(out / manifest["artifact"]["path"], volumes)
    assert got.shape == (2, 3, 32, 32, 64)
    assert np.abs(got - reference).max() <= 5e-5 * max(1.0, float(np.abs(reference).max()))


def test_multi_graph_model_compiles_every_graph(capsys, tmp_path):
    """EfficientTAM: one verified, measured ONNX Runtime artifact per graph, and how they join."""
    out = tmp_path / "etam"
    code, manifest, err = compile_cli(
        capsys, "efficienttam_ti_1", "--input-size", "3,64,64", "--out", str(out)
    )
    assert code == 0, err
    names = [g["name"] for g in manifest["graphs"]]
    assert names == manifest["model"]["graphs"]
    assert {"image_encoder", "prompt_mask_decoder", "memory_encoder", "memory_attention"} <= set(
        names
    )
    for graph in manifest["graphs"]:
        assert graph["fidelity"]["final_vs_pytorch"]["passed"]
        assert graph["latency"]["method"] == "measured"
        session = onnxruntime.InferenceSession(str(out / graph["artifact"]["path"]))
        assert [i.name for i in session.get_inputs()] == [i["name"] for i in graph["inputs"]]
    assert manifest["latency"]["per_frame_ms"] > 0
    assert manifest["connections"] and manifest["host"]["num_maskmem"] == 7
    assert "## memory_attention" in (out / "report.md").read_text()


@pytest.mark.parametrize("target", ["host", "jetson-agx-orin"])
def test_multi_graph_model_quantizes_every_graph_on_a_tracked_clip(capsys, tmp_path, target):
    """EfficientTAM W8A8: every graph calibrated on the feeds it got while the --calib frames
    were tracked, verified on them, and held to the quantized bound; the TensorRT files are
    checked on the same real feeds (on seeded noise the memory encoder's `binarize` and mask
    inputs are out of range and its quantized output meaningless)."""
    out = tmp_path / "etam8"
    code, manifest, err = compile_cli(
        capsys,
        "efficienttam_ti_1",
        "--target",
        target,
        "--input-size",
        "3,64,64",
        "--precision",
        "w8a8",
        "--calib",
        str(IMAGES),
        "--calib-count",
        "3",
        "--out",
        str(out),
        "--no-measure",
    )
    assert code == 0, err
    assert manifest["precision"]["realised"] == "w8a8"
    samples = {
        g["name"]: g["quantization"]["fidelity_vs_float"]["samples"] for g in manifest["graphs"]
    }
    # 3 frames: 3 encoder/decoder/memory-encoder calls; the pooled variant attends to one
    # memory frame on frame 1 (memory_attention_1frame) and to two on frame 2
    assert samples == {
        "image_encoder": 3,
        "prompt_mask_decoder": 3,
        "prompt_mask_decoder_single": 3,
        "memory_encoder": 3,
        "memory_attention": 1,
        "memory_attention_1frame": 1,
    }
    for graph in manifest["graphs"]:
        assert graph["verification_inputs"]["kind"] == "calibration clip"
        final = graph["fidelity"]["final_vs_pytorch"]
        assert final["passed"] and final["bound"] is None and final["min_cosine"] == 0.9
        assert graph["quantization"]["summary"].get("w8a8", 0) > 0
        assert any(p["id"] == "quant::calibrate" for p in graph["passes"])
        artifact = graph["artifact"]
        if target == "host":
            onnxruntime.InferenceSession(str(out / artifact["path"]))
        else:
            check = artifact["fidelity_vs_given_graph"]
            assert check["passed"] and check["inputs"].startswith("the compile's example inputs")
            assert artifact["precision"]["realised"] == "w8a8"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "int-only"], "compile at fp32, fp16, w8a8, w4a8 so far"),
        (["--precision", "w8a8", "--calib-count", "2"], "never ran graph memory_attention"),
    ],
)
def test_multi_graph_quantization_errors_exit_2(capsys, tmp_path, args, message):
    out = tmp_path / "x"
    argv = ["compile", "efficienttam_ti_1", "--input-size", "3,64,64", "--calib", str(IMAGES)]
    code = main([*argv, *args, "--out", str(out), "--no-measure"])
    assert code == 2 and message in capsys.readouterr().err
    assert not out.exists()


def cifar_tensors(path, first: int, count: int = 16) -> str:
    """`count` model-ready CIFAR-10 test images (every class; 224², CIFAR mean/std) → .npy."""
    from PIL import Image

    data = np.load(SHARED / "data" / "cifar10_test.npz")
    jpeg, offsets = data["jpeg"], data["offsets"]
    pictures = [
        Image.open(io.BytesIO(jpeg[offsets[i] : offsets[i + 1]].tobytes())).convert("RGB")
        for i in range(first, 10000, 10000 // count)
    ]
    x = np.stack([np.asarray(p.resize((224, 224), Image.BILINEAR), np.float32) for p in pictures])
    mean, std = np.array([0.4914, 0.4822, 0.4465]), np.array([0.2470, 0.2435, 0.2616])
    np.save(path, ((x / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))
    return str(path)


@pytest.fixture(scope="module")
def cifar_calibration(tmp_path_factory) -> str:
    return cifar_tensors(tmp_path_factory.mktemp("calib") / "cifar16.npy", first=0)


def test_int_only_compile_is_proved_integer(capsys, tmp_path, cifar_calibration):
    """The trained M0 checkpoint at --precision int-only: the checker proves the artifact."""
    from edgec.passes.integer.checker import check_int_only

    out = tmp_path / "int"
    code, manifest, err = compile_cli(
        capsys,
        str(SHARED / "models" / "efficientvit_m0_cifar10.pt"),
        "--arch",
        "efficientvit_m0",
        "--num-classes",
        "10",
        "--precision",
        "int-only",
        "--calib",
        cifar_calibration,
        "--verify-images",  # real images the calibration did not see
        cifar_tensors(tmp_path / "verify.npy", first=313, count=4),
        "--out",
        str(out),
    )
    assert code == 0, err
    q = manifest["quantization"]
    assert q["int_only"]["int_only"] and not q["int_only"]["violations"]
    assert {"ConvInteger", "MatMulInteger"} <= set(q["int_only"]["ops"])
    assert q["fidelity_vs_float"]["top1_agreement"] >= 0.8
    assert [p["id"] for p in manifest["passes"]][-1] == "integer::int_only"
    assert check_int_only(onnx.load(str(out / manifest["artifact"]["path"]))).int_only


def test_int_only_names_ops_without_an_integer_form(capsys, tmp_path, cifar_calibration):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.MaxPool2d(2)).eval()
    path = tmp_path / "pool.pt"
    torch.save(module, path)
    args = ["--allow-pickle", "--precision", "int-only", "--calib", cifar_calibration]
    code, _, err = compile_cli(capsys, str(path), *args, "--out", str(tmp_path / "o"))
    assert code == 2 and "no integer-only form for: MaxPool" in err
    assert not (tmp_path / "o").exists()


def test_segmenters_reach_the_iphone_and_volumes_say_why_not(capsys, tmp_path):
    """I-Segmenter (nearest upsampling) → .mlpackage checked against ORT; SegFormer3D's
    volumes are rank 5, which the iPhone's split-head layout (rank ≤ 4) refuses, and the
    error says how to allow it (--pipeline default; tests/runtimes/test_coreml_rank.py)."""
    out = tmp_path / "iseg"
    args = ["--target", "iphone", "--input-size", "3,64,64", "--no-measure", "--out", str(out)]
    code, manifest, err = compile_cli(capsys, "isegmenter_vit_tiny", *args)
    assert code == 0, err
    assert manifest["artifact"]["runtime"] == "coreml"
    assert manifest["precision"]["realised"] == "fp16"
    assert manifest["artifact"]["reference_check"]["passed"]
    assert (out / manifest["artifact"]["path"]).is_dir()
    volume = ["--target", "iphone", "--input-size", "4,32,32,32", "--out", str(tmp_path / "v")]
    code, _, err = compile_cli(capsys, "segformer3d", *volume)
    assert code == 2 and "rank > 4" in err and "--pipeline default" in err
    assert not (tmp_path / "v").exists()


def test_iphone_w8a8_from_the_quantization_passes(capsys, tmp_path):
    """The headline command at W8A8: quant passes → Core ML constexpr int8 weights + int8
    activations, checked by the MIL evaluator against ONNX Runtime."""
    out = tmp_path / "q"
    args = ["--target", "iphone", "--precision", "w8a8", "--calib", str(IMAGES)]
    code, manifest, err = compile_cli(
        capsys, "efficientvit_m0", *args, "--calib-count", "8", "--no-measure", "--out", str(out)
    )
    assert code == 0, err
    artifact = manifest["artifact"]
    assert artifact["runtime"] == "coreml" and manifest["precision"]["realised"] == "w8a8"
    assert artifact["layers"]["weights"] and artifact["layers"]["activations"]
    assert {w["bits"] for w in artifact["layers"]["weights"]} == {8}
    assert artifact["reference_check"]["passed"]
