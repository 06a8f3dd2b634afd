"""The one-command engine build for the target: a POSIX shell script around `trtexec`.

    sh build_<name>.sh          # on the device; writes <name>.plan beside <name>.onnx

It builds strongly typed (`--stronglyTyped`, TensorRT ≥ 9, e.g. JetPack 6), the same mode
`tensorrt_build` uses, so the engine's precision is what the ONNX graph says; with an older
`trtexec` (TensorRT 8.x: JetPack 4/5, Jetson TX2) it falls back to the builder flags of the
precision (`--fp16`, `--int8 --fp16`), and refuses W4A16, which needs strong typing. The
timing cache lives outside the output directory (`$EDGEC_TRT_TIMING_CACHE`, default
`~/.cache/edgec/tensorrt.timing.cache`) so every build on the device reuses it. Dynamic inputs
get `--minShapes/--optShapes/--maxShapes` from the optimisation profile (`tensorrt_shapes`).
Each graph has its own script, so the graphs of a multi-graph model (EfficientTAM) written
into one directory each keep theirs.
"""

from __future__ import annotations

from pathlib import Path

from edgec.runtimes.tensorrt_shapes import Shapes

LEGACY_FLAGS = {"fp32": "", "fp16": " --fp16", "w8a8": " --int8 --fp16"}


def script_name(name: str) -> str:
    """The build script of the graph `name` (`<name>.onnx` → `build_<name>.sh`)."""
    return f"build_{name}.sh"


def trtexec_args(onnx_name: str, engine_name: str, shapes: Shapes) -> str:
    """The flags both branches share: input, output, timing cache and shape profile."""
    args = f'--onnx={onnx_name} --saveEngine={engine_name} --timingCacheFile="$CACHE"'
    if not shapes:
        return args
    for flag, index in (("minShapes", 0), ("optShapes", 1), ("maxShapes", 2)):
        spec = ",".join(f"{name}:{'x'.join(map(str, d[index]))}" for name, d in shapes.items())
        args += f" --{flag}={spec}"
    return args


def write_build_script(
    out_dir: Path,
    *,
    name: str,
    precision: str,
    device: str,
    shapes: Shapes,
    dims: dict[str, dict] | None = None,
) -> Path:
    """Write `build_<name>.sh` (executable), building `<name>.plan` from `<name>.onnx`."""
    onnx_name, engine_name, script = f"{name}.onnx", f"{name}.plan", script_name(name)
    args = trtexec_args(onnx_name, engine_name, shapes)
    if precision in LEGACY_FLAGS:
        legacy = f'exec "$TRTEXEC" {args} --buildOnly{LEGACY_FLAGS[precision]}'
    else:
        legacy = (
            f'echo "{precision} needs trtexec --stronglyTyped (TensorRT >= 9); '
            f'this trtexec has none" >&2\nexit 1'
        )
    ranges = "".join(
        f"\n# Dynamic {dim}: {r['min']}..{r['max']}, tuned for {r['opt']} ({r['from']})."
        for dim, r in (dims or {}).items()
    )
    text = f"""#!/bin/sh
# Builds the TensorRT engine {engine_name} for {device} from {onnx_name} (written by edgec).
# Precision {precision}: the ONNX types and Q/DQ nodes say it; the build is strongly typed.{ranges}
# Run on the target, e.g. a Jetson with JetPack 6:   sh {script}
# Per-layer times afterwards:
#   "$TRTEXEC" --loadEngine={engine_name} --dumpProfile --separateProfileRun \\
#       --exportProfile={engine_name}.profile.json
set -eu
cd "$(dirname "$0")"
TRTEXEC="${{TRTEXEC:-$(command -v trtexec || echo /usr/src/tensorrt/bin/trtexec)}}"
CACHE="${{EDGEC_TRT_TIMING_CACHE:-${{XDG_CACHE_HOME:-$HOME/.cache}}/edgec/tensorrt.timing.cache}}"
mkdir -p "$(dirname "$CACHE")"
if "$TRTEXEC" --help 2>&1 | grep -q -- --stronglyTyped; then
  exec "$TRTEXEC" {args} --stronglyTyped --skipInference
fi
# TensorRT 8.x has no strongly typed mode: the precision's builder flags instead.
{legacy}
"""
    path = out_dir / script
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path
