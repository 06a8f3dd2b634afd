"""Every user error exits with code 2, a message that says how to fix it, and no output dir."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from edgec.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_targets_lists_host_with_alias(capsys):
    code, out, _ = run_cli(capsys, "targets")
    assert code == 0 and "host" in out and "cpu" in out
    code, out, _ = run_cli(capsys, "targets", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "host"


def test_zoo_lists_the_three_timm_families(capsys):
    code, out, _ = run_cli(capsys, "zoo", "--json")
    names = {entry["name"] for entry in json.loads(out)}
    assert code == 0
    assert {"efficientvit_m0", "efficientvit_m5", "shvit_s4", "lowformer_b15"} <= names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compile", "efficientvit_m0", "--target", "hots"], "did you mean host"),
        (["compile", "efficientvit_m0", "--precision", "int3"], "precision 'int3'"),
        (["compile", "efficientvit_m0", "--pass-option", "nonsense"], "PASS:KEY=VALUE"),
        (["compile", "no_such_model_xyz"], "no_such_model_xyz"),
        (["compile", "missing/model.pt", "--arch", "efficientvit_m0"], "does not exist"),
        (["compile"], "no model given"),
        # checked before the model is loaded (a missing file would be the error otherwise)
        (["compile", "missing.pt", "--target", "pixel-8"], "cannot emit yet"),
        (["compile", "missing.pt", "--target", "android"], "add --runtime onnxruntime"),
        (
            ["compile", "missing.pt", "--target", "android", "--runtime", "coreml"],
            "not run 'coreml'",
        ),
        (["compile", "missing.pt", "--runtime", "tflite"], "its runtimes: onnxruntime"),
        (["compile", "missing.pt", "--min-ios", "ios18"], "--min-ios applies to Core ML"),
        (["compile", "segformer3d", "--input-size", "3,64,64"], "does not fit segformer3d"),
        (["compile", "segformer3d", "--input-size", "4,48,32,32"], "divisible by 32"),
        (["compile", "efficientvit_m0", "--num-classes", "-1"], "at least 1 class"),
        (["compile", "efficientvit_m0", "--dump-ir", "/proc/edgec-dump"], "cannot write --dump-ir"),
        (["profile", "/nonexistent-dir"], "no manifest.json"),
    ],
)
def test_user_errors_exit_2_with_a_hint(capsys, tmp_path, args, message):
    out = tmp_path / "out"
    code, _, err = (
        run_cli(capsys, *args, "--out", str(out))
        if args[0] == "compile"
        else (run_cli(capsys, *args))
    )
    assert code == 2, err
    assert message in err and "edgec: error:" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_unwritable_output_directory_is_a_user_error(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli(capsys, "compile", "efficientvit_m0", "--out", str(blocker / "sub"))
    assert code == 2 and "cannot write the output directory" in err


def test_unknown_arch_suggests_names(capsys, tmp_path):
    checkpoint = tmp_path / "weights.pth"

    torch.save({"w": torch.zeros(1)}, checkpoint)
    code, _, err = run_cli(
        capsys,
        "compile",
        str(checkpoint),
        "--arch",
        "efficientvit_m9",
        "--out",
        str(tmp_path / "o"),
    )
    assert code == 2 and "efficientvit_m9" in err and "efficientvit_m" in err.split("fix")[-1]


def test_checkpoint_without_arch_is_a_user_error(capsys, tmp_path):
    checkpoint = tmp_path / "weights.pth"

    torch.save({"w": torch.zeros(1)}, checkpoint)
    code, _, err = run_cli(capsys, "compile", str(checkpoint), "--out", str(tmp_path / "o"))
    assert code == 2 and "--arch" in err


def test_corrupt_checkpoint_is_a_user_error(capsys, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00garbage" * 10)
    out = tmp_path / "out"
    code, _, err = run_cli(
        capsys, "compile", str(bad), "--arch", "efficientvit_m0", "--out", str(out)
    )
    assert code == 2 and not out.exists()
    assert "Traceback" not in err


def test_a_checkpoint_holding_nan_is_refused_naming_the_tensor(capsys, tmp_path):
    from edgec.models import create

    state = create("efficientvit_m0").state_dict()
    state["head.linear.weight"][3, 7] = float("nan")
    torch.save(state, tmp_path / "diverged.pth")
    out = tmp_path / "out"
    argv = ["compile", str(tmp_path / "diverged.pth"), "--arch", "efficientvit_m0"]
    code, _, err = run_cli(capsys, *argv, "--out", str(out))
    assert code == 2 and "NaN values in 1 tensor(s): head.linear.weight" in err
    assert not out.exists()


def test_a_model_whose_own_output_is_nan_gets_no_artifact(capsys, tmp_path):
    """A broken graph would match its broken artifact exactly; the compile stops instead."""
    weight = np.full((4, 3, 1, 1), np.nan, np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"])],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 16, 16])],
        [numpy_helper.from_array(weight, "w")],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), tmp_path / "m.onnx"
    )
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "compile", str(tmp_path / "m.onnx"), "--out", str(out))
    assert code == 2 and "output 'y' on the verification inputs holds NaN" in err
    assert not out.exists()


def test_a_multi_graph_model_whose_output_is_nan_gets_no_artifact(capsys, tmp_path):
    """EfficientTAM: finite weights that overflow to NaN stop the compile at the first graph."""
    from edgec.models import create

    state = create("efficienttam_ti_1").state_dict()
    state["image_encoder.trunk.patch_embed.proj.weight"].fill_(3e38)
    torch.save(state, tmp_path / "overflow.pth")
    out = tmp_path / "out"
    argv = ["compile", str(tmp_path / "overflow.pth"), "--arch", "efficienttam_ti_1"]
    code, _, err = run_cli(capsys, *argv, "--input-size", "3,64,64", "--out", str(out))
    assert code == 2 and "graph image_encoder: PyTorch's output" in err and "holds NaN" in err
    assert not out.exists()


def test_bad_config_file(capsys, tmp_path):
    cfg = tmp_path / "build.toml"
    cfg.write_text("[compile]\nmodel = 'efficientvit_m0'\ncolour = 'red'\n")
    code, _, err = run_cli(capsys, "compile", "--config", str(cfg))
    assert code == 2 and "colour" in err


def test_python_m_edgec_and_console_help():
    result = subprocess.run(
        [sys.executable, "-m", "edgec", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "compile" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "edgec", "compile", "--nonsense-flag"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2


def test_edgec_help_does_not_import_torch():
    code = (
        "import sys; from edgec.cli import build_parser; build_parser(); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_malformed_flag_values_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", "efficientvit_m0", "--input-size", "3,a,b"])
    assert exit_info.value.code == 2
    assert "is not a list of sizes like 3,224,224" in capsys.readouterr().err
