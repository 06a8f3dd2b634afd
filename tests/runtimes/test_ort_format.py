"""ONNX Runtime's derived files: `.optimized.onnx` and `.ort` (with its operator config)."""

from __future__ import annotations

from edgec.artifact import sha256_file
from edgec.runtimes import ort
from edgec.runtimes.compare import compare_outputs


def test_ort_and_optimized_files_load_and_match_the_onnx(tiny, tmp_path, x):
    art = ort.emit(tiny, tmp_path, name="tiny", ort_format=True, save_optimized=True)
    names = sorted(p.name for p in art.files)
    assert names == [
        "tiny.onnx",
        "tiny.optimized.onnx",
        "tiny.ort",
        "tiny.required_operators.config",
    ]
    assert art.details["optimized_onnx"]["byte_stable"] is True
    assert art.details["ort_format"]["byte_stable"] is False  # ORT 1.32: layout varies per run
    config = (tmp_path / "tiny.required_operators.config").read_text()
    assert str(tmp_path) not in config and "# - tiny.ort" in config and "Conv" in config
    reference = ort.load(art.path, optimization="disabled").run(x)
    for path in art.files:
        if path.suffix in (".onnx", ".ort"):
            result = compare_outputs(reference, ort.load(path).run(x))
            assert result.passed, (path.name, result.failures())
    again = ort.emit(tiny, tmp_path / "again", name="tiny", save_optimized=True)
    assert sha256_file(again.extra_files[0]) == sha256_file(tmp_path / "tiny.optimized.onnx")
