"""The one-command engine build for the target: a POSIX shell script around `trtexec`.

    sh build_engine.sh          # on the device; writes <name>.plan beside the .onnx

It builds strongly typed (`--stronglyTyped`, TensorRT ≥ 9, e.g. JetPack 6), the same mode
`tensorrt_build` uses, so the engine's precision is what the ONNX graph says; with an older
`trtexec` (TensorRT 8.x: JetPack 4/5, Jetson TX2) it falls back to the builder flags of the
precision (`--fp16`, `--int8 --fp16`), and refuses W4A16, which needs strong typing. The
timing cache lives outside the output directory (`$EDGEC_TRT_TIMING_CACHE`, default
`~/.cache/edgec/tensorrt.timing.cache`) so every build on the device reuses it. Dynamic inputs
get `--minShapes/--optShapes/--maxShapes` from the optimisation profile.
"""

from __future__ import annotations

from pathlib import Path

from edgec.runtimes.tensorrt_build import Shapes

SCRIPT_NAME = "build_engine.sh"
LEGACY_FLAGS = {"fp32": "", "fp16": " --fp16", "w8a8": " --int8 --fp16"}


def trtexec_args(onnx_name: str, engine_name: str, shapes: Shapes) -> str:
    """The flags both branches share: input, output, timing cache and shape profile."""
    args = f'--onnx={onnx_name} --saveEngine={engine_name} --timingCacheFile="$CACHE"'
    for flag, index in (("minShapes", 0), ("optShapes", 1), ("maxShapes", 2)):
        if shapes:
            spec = ",".join(
                f"{name}:{'x'.join(map(str, dims[index]))}" for name, dims in shapes.items()
            )
            args += f" --{flag}={spec}"
    return args


def write_build_script(
    out_dir: Path, *, onnx_name: str, engine_name: str, precision: str, device: str, shapes: Shapes
) -> Path:
    """Write `build_engine.sh` (executable) and return its path."""
    args = trtexec_args(onnx_name, engine_name, shapes)
    if precision in LEGACY_FLAGS:
        legacy = f'exec "$TRTEXEC" {args} --buildOnly{LEGACY_FLAGS[precision]}'
    else:
        legacy = (
            f'echo "{precision} needs trtexec --stronglyTyped (TensorRT >= 9); '
            f'this trtexec has none" >&2\nexit 1'
        )
    text = f"""#!/bin/sh
# Builds the TensorRT engine {engine_name} for {device} from {onnx_name} (written by edgec).
# Precision {precision}: the ONNX types and Q/DQ nodes say it; the build is strongly typed.
# Run on the target, e.g. a Jetson with JetPack 6:   sh {SCRIPT_NAME}
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
    path = out_dir / SCRIPT_NAME
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path
