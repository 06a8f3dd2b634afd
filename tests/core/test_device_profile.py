"""Device profiles load from the packaged TOML files; aliases resolve; typos get suggestions."""

import json
from pathlib import Path

import pytest

from edgec.cli import main
from edgec.device_profile import all_profiles, load_device, load_profiles
from edgec.errors import UserError

PROFILES = [
    "host",
    "iphone-12",
    "iphone-13",
    "iphone-15-pro",
    "galaxy-s24",
    "pixel-8",
    "jetson-tx2",
    "jetson-orin-nano",
    "jetson-agx-orin",
    "raspberry-pi-5",
    "nvidia-v100",
    "nvidia-a100",
    "nvidia-h200",
]
FAMILY_DEFAULTS = {
    "iphone": "iphone-15-pro",
    "android": "galaxy-s24",
    "jetson": "jetson-orin-nano",
    "raspberry-pi": "raspberry-pi-5",
    "gpu": "nvidia-a100",
    "cpu": "host",
    "host": "host",
}
MINIMAL = """
name = "{name}"
description = "test"
runtime = "onnxruntime"
precisions = ["fp32"]
pipeline = "default"
latency = "estimated"
aliases = {aliases}
"""


def test_host_profile_is_measured_onnxruntime():
    host = load_device("host")
    assert host.runtime == "onnxruntime" and host.latency == "measured"
    assert load_device("cpu") is host
    assert host.to_dict()["detected"]["logical_cpus"] >= 1


def test_every_profile_has_a_runtime_and_pipeline():
    for profile in all_profiles().values():
        assert profile.runtime and profile.pipeline and profile.precisions


def test_unknown_target_suggests_close_names():
    with pytest.raises(UserError, match="did you mean host"):
        load_device("hots")


def test_every_documented_profile_loads_and_only_host_is_measured():
    profiles = all_profiles()
    assert sorted(profiles) == sorted(PROFILES)
    assert next(iter(profiles)) == "host"
    for name, profile in profiles.items():
        assert load_device(name) is profile
        assert profile.latency == ("measured" if name == "host" else "estimated")
        json.dumps(profile.to_dict())  # JSON-ready


def _numbers_without_source(value, path="", sourced=False):
    """Paths of numeric values (not booleans) in a dict tree that no enclosing table sources."""
    if isinstance(value, dict):
        here = sourced or bool(str(value.get("source", "")).strip())
        return [
            bad
            for key, item in value.items()
            for bad in _numbers_without_source(item, f"{path}.{key}", here and key != "source")
        ]
    if isinstance(value, list):
        return [b for i, v in enumerate(value) for b in _numbers_without_source(v, f"{path}[{i}]")]
    if isinstance(value, int | float) and not isinstance(value, bool) and not sourced:
        return [path]
    return []


def test_every_number_has_a_source_and_a_trust_tag():
    for profile in all_profiles().values():
        data = profile.to_dict()
        data.pop("detected", None)  # read from the OS at run time
        data.pop("threads")  # a benchmark setting, not a published figure
        assert _numbers_without_source(data, profile.name) == []
        figures = [p for u in profile.compute_units for p in u.peaks] + list(profile.caches)
        if profile.memory:
            figures += [*profile.memory.capacity]
            figures += [profile.memory.bandwidth] if profile.memory.bandwidth else []
        for figure in figures:
            assert figure.source.strip() and figure.trust and figure.value > 0


def test_profiles_carry_the_hardware_facts():
    for name in PROFILES[1:]:
        profile = load_device(name)
        assert profile.compute_units, name
        assert {u.kind for u in profile.compute_units} <= {"cpu", "gpu", "npu", "dla"}
    assert {u.kind for u in load_device("jetson-agx-orin").compute_units} == {"cpu", "gpu", "dla"}
    assert load_device("raspberry-pi-5").memory.bandwidth.unit == "GB/s"
    assert load_device("iphone").runtime == "coreml"
    assert load_device("android").runtime == "tflite"
    assert load_device("jetson").runtime == "tensorrt"


def test_aliases_are_unique_and_resolve_to_the_documented_default():
    profiles = all_profiles()
    aliases = [a for p in profiles.values() for a in p.aliases]
    assert len(aliases) == len(set(aliases))
    assert not set(aliases) & set(profiles)
    for alias, name in FAMILY_DEFAULTS.items():
        assert load_device(alias).name == name


def _write(tmp_path: Path, name: str, text: str) -> Path:
    (tmp_path / f"{name}.toml").write_text(text, encoding="utf-8")
    return tmp_path


def test_loader_reads_a_directory(tmp_path):
    _write(tmp_path, "a", MINIMAL.format(name="a", aliases='["x"]'))
    profiles = load_profiles(tmp_path)
    assert list(profiles) == ["a"] and profiles["a"].aliases == ("x",)


def test_unknown_key_is_an_error_naming_file_and_key(tmp_path):
    _write(tmp_path, "a", MINIMAL.format(name="a", aliases="[]") + 'runtim = "coreml"\n')
    with pytest.raises(UserError, match=r"a\.toml.*unknown key 'runtim'") as info:
        load_profiles(tmp_path)
    assert "did you mean 'runtime'" in str(info.value)


def test_unknown_nested_key_is_an_error(tmp_path):
    text = MINIMAL.format(name="a", aliases="[]") + (
        '[[compute_units]]\nkind = "cpu"\nname = "c"\nsource = "s"\n'
        '[[compute_units.peaks]]\nprecision = "fp32"\nvaule = 1\nunit = "TFLOPS"\n'
        'source = "s"\ntrust = "M"\n'
    )
    _write(tmp_path, "a", text)
    with pytest.raises(UserError, match=r"a\.toml: compute_units\[0\]: peaks\[0\].*'vaule'"):
        load_profiles(tmp_path)


def test_number_without_source_is_an_error(tmp_path):
    text = MINIMAL.format(name="a", aliases="[]") + (
        '[[caches]]\nname = "L2"\nvalue = 2\nunit = "MB"\ntrust = "M"\n'
    )
    _write(tmp_path, "a", text)
    with pytest.raises(UserError, match="missing key 'source'"):
        load_profiles(tmp_path)


def test_alias_claimed_twice_is_an_error(tmp_path):
    _write(tmp_path, "a", MINIMAL.format(name="a", aliases='["phone"]'))
    _write(tmp_path, "b", MINIMAL.format(name="b", aliases='["phone"]'))
    with pytest.raises(UserError, match=r"alias 'phone' is also claimed by a\.toml"):
        load_profiles(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL.format(name="b", aliases="[]"), "differs from the file name"),
        (MINIMAL.format(name="a", aliases="[]").replace("onnxruntime", "tvm"), "'tvm' is not"),
        (MINIMAL.format(name="a", aliases="[]").replace("estimated", "guessed"), "'guessed'"),
        (MINIMAL.format(name="a", aliases='"x"'), "expected a list of strings"),
        ("name = ", "not valid TOML"),
    ],
)
def test_malformed_profiles_are_clear_errors(tmp_path, text, message):
    _write(tmp_path, "a", text)
    with pytest.raises(UserError, match=message):
        load_profiles(tmp_path)


def test_targets_json_lists_all_profiles(capsys):
    assert main(["targets", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data[0]["name"] == "host"
    assert sorted(d["name"] for d in data) == sorted(PROFILES)
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    for alias in FAMILY_DEFAULTS:
        assert alias in out
    assert "estimated" in out and "measured" in out
