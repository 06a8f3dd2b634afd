"""bench/ort_sessions.py: every variant gets a session, a spare one is opened after them, and
all are closed on exit."""

import sys
from pathlib import Path

import numpy as np
import onnx_ir as ir
from onnx import helper
from support.onnx_build import model, value_info

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import ort_sessions  # noqa: E402


def _relu_file(path: Path) -> Path:
    relu = model(
        [helper.make_node("Relu", ["x"], ["y"])], [value_info("x", [2])], [value_info("y", [2])]
    )
    ir.save(relu, path)
    return path


def test_open_sessions_opens_a_spare_after_the_timed_ones_and_closes_all(tmp_path, monkeypatch):
    files = {tag: _relu_file(tmp_path / f"{tag}.onnx") for tag in ("a", "b")}
    opened = []
    load = ort_sessions.ort.load

    def recording_load(path, threads):
        runner = load(path, threads=threads)
        opened.append((Path(path).stem, runner))
        return runner

    monkeypatch.setattr(ort_sessions.ort, "load", recording_load)
    with ort_sessions.open_sessions(files, threads=1) as sessions:
        assert list(sessions) == ["a", "b"]
        out = sessions["b"].run({"x": np.array([-1.0, 2.0], np.float32)})
        assert out[sessions["b"].output_names[0]].tolist() == [0.0, 2.0]
    # the two timed sessions, then the spare one (of the first file), opened last
    assert [stem for stem, _ in opened] == ["a", "b", "a"]
    assert all(runner.session is None for _, runner in opened)
