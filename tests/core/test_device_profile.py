"""Device profiles load from the packaged TOML files; aliases resolve; typos get suggestions."""

import pytest

from edgec.device_profile import all_profiles, load_device
from edgec.errors import UserError


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
