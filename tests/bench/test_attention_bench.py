"""bench/attention.py runs end to end on one model per comparison (a smoke run; figures are
not asserted, the structure of what it reports is)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_attention_bench_smoke(tmp_path):
    out = tmp_path / "attention.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "attention.py"),
            *("--models", "efficientvit_m0", "--split-models", "deit_tiny_patch16_224"),
            *("--threads", "1", "--rounds", "2", "--per-round", "2", "--profile-runs", "2"),
            *("--out", str(out)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    cga, split = report["rows"]
    assert set(cga["p50_ms"]) == {"default", "no_cga", "no_attention"}
    assert set(split["p50_ms"]) == {"ane", "default"} and "attention_ms" not in split
    assert set(cga["attention_ms"]) == {"default", "no_cga"}
    assert set(cga["cpu_p50_ms"]) == set(cga["p50_ms"]) and cga["speedup_cpu"] > 0
    assert cga["ceiling_speedup"] > 1.0  # the attention-free graph is the fastest
    built = cga["build"]
    assert built["no_attention"]["nodes"] < built["default"]["nodes"]
    assert built["default"]["pass_stats"]["attention::cga_fusion"]["blocks_rewritten"] == 6
    assert "attention::cga_fusion" not in built["no_cga"]["pass_stats"]
    assert split["build"]["ane"]["max_rank"] == 4 and split["build"]["default"]["max_rank"] == 5
    for row in (cga, split):
        compared = [b for tag, b in row["build"].items() if tag != "no_attention"]
        assert all(b["max_abs_diff_vs_torch"] < 1e-3 for b in compared)
    blocks = cga["profile_us_per_block_1thread"]["default"]
    assert "stages.0.blocks.0.mixer" in blocks and blocks["total"] > 0
    assert "| efficientvit_m0 | 1 |" in result.stdout
    assert set(report["goals_met"]) == {"cga_fusion", "split_heads_cost", "split_heads_rank"}
