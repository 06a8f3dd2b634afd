"""--preprocessing: a checkpoint's own preprocessing, checked before anything is loaded."""

import json

import pytest

from edgec.cli import main
from edgec.config import load_config
from edgec.errors import UserError
from edgec.exporters.load import load_model
from edgec.preprocess_override import apply_overrides, read_overrides

CIFAR = {
    "mean": [0.4914, 0.4822, 0.4465],
    "std": [0.2470, 0.2435, 0.2616],
    "interpolation": "bilinear",
    "crop_pct": 1,
}


def test_reads_a_json_file_and_normalises_numbers(tmp_path):
    path = tmp_path / "pre.json"
    path.write_text(json.dumps(CIFAR))
    assert read_overrides(str(path)) == {**CIFAR, "crop_pct": 1.0}


def test_a_toml_table_is_the_same_as_a_file(tmp_path):
    config = tmp_path / "build.toml"
    config.write_text(
        'model = "efficientvit_m0"\n'
        "[preprocessing]\n"
        'mean = [0.5, 0.5, 0.5]\nstd = [0.5, 0.5, 0.5]\ninterpolation = "nearest"\n'
    )
    loaded = load_config(config, {})
    assert read_overrides(loaded.preprocessing) == {
        "mean": [0.5, 0.5, 0.5],
        "std": [0.5, 0.5, 0.5],
        "interpolation": "nearest",
    }


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"mean": [0.5, 0.5, 0.5], "colour": "BGR"}, "unknown field(s) colour"),
        ({"std": [0.2, 0.0, 0.2]}, "has a value ≤ 0"),
        ({"mean": "0.5"}, "is not a list of numbers"),
        ({"mean": [0.5, True, 0.5]}, "is not a list of numbers"),
        ({"interpolation": "lanczos"}, "is not a known filter"),
        ({"crop_pct": 1.5}, "is not in (0, 1]"),
        ({"scale": -1}, "is not > 0"),
        ({}, "non-empty JSON object"),
        ([1, 2], "non-empty JSON object"),
    ],
)
def test_bad_fields_are_named(tmp_path, data, says):
    path = tmp_path / "pre.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserError, match=r".*") as info:
        read_overrides(str(path))
    assert says in info.value.message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        read_overrides(str(tmp_path / "absent.json"))
    broken = tmp_path / "broken.json"
    broken.write_text("{mean: 1")
    with pytest.raises(UserError, match="not readable JSON"):
        read_overrides(str(broken))


def test_channel_count_must_match():
    with pytest.raises(UserError, match="mean has 1 values, the model's input has 3 channels"):
        apply_overrides({}, {"mean": [0.5]}, channels=3)


def test_loaded_model_records_the_overrides_and_says_so():
    loaded = load_model("efficientvit_m0", preprocessing=read_overrides(CIFAR))
    pre = loaded.preprocessing
    assert pre["mean"] == CIFAR["mean"] and pre["std"] == CIFAR["std"]
    assert pre["interpolation"] == "bilinear" and pre["crop_pct"] == 1.0
    assert pre["input_size"] == [3, 224, 224]  # untouched: --input-size's job
    assert any(note.startswith("preprocessing from --preprocessing") for note in loaded.notes)


def test_cli_refuses_a_bad_file_with_exit_2_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "pre.json"
    path.write_text(json.dumps({"std": [0, 1, 1]}))
    out = tmp_path / "out"
    code = main(
        ["compile", "efficientvit_m0", "--preprocessing", str(path), "--out", str(out), "-q"]
    )
    assert code == 2 and not out.exists()
    assert "has a value ≤ 0" in capsys.readouterr().err
