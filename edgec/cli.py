"""`edgec` command line: argument parsing and printing only; the work is in edgec.commands."""

from __future__ import annotations

import argparse
import sys
import traceback
from typing import Any

from edgec import __version__
from edgec.errors import EdgecError
from edgec.json_text import json_text


def _compile_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="zoo/timm name, checkpoint, .pt2, TorchScript or .onnx")
    p.add_argument("--config", help="TOML file with a [compile] table (flags override it)")
    p.add_argument("--target", help="device profile or alias (default: host); see `edgec targets`")
    p.add_argument(
        "--runtime",
        help="one of the target's other runtimes (`edgec targets` lists them), e.g. onnxruntime "
        "for android; default: the target's",
    )
    p.add_argument(
        "--precision",
        help="fp32, fp16, w8a8, w4a8 (docs/quantization.md) or int-only (docs/integer.md); "
        "default: the target's",
    )
    p.add_argument(
        "--calib", metavar="PATH", help="calibration data: image folder, .npz images or tensors"
    )
    p.add_argument(
        "--calib-count",
        type=int,
        help="calibration samples to use, spread evenly over the data (default 128)",
    )
    p.add_argument(
        "--accuracy-budget",
        type=float,
        metavar="POINTS",
        help="max top-1 agreement loss vs float (calibration data); sensitive layers fall back",
    )
    p.add_argument(
        "--input-size",
        type=_sizes,
        metavar="C,H,W",
        help="export size: C,H,W for images, C,D,H,W for volumes (default: the model's own)",
    )
    p.add_argument(
        "--preprocessing",
        metavar="FILE.json",
        help="the checkpoint's own preprocessing (mean, std, interpolation, crop_pct, scale) "
        "where it differs from its architecture's; docs/cli.md",
    )
    p.add_argument("--out", help="output directory (default: out/<model>.<target>)")
    p.add_argument("--pipeline", help="named pass pipeline (default: the target's)")
    p.add_argument(
        "--pass-option",
        action="append",
        default=[],
        metavar="PASS:KEY=VALUE",
        help="set an option of one pass, e.g. cleanup::fold_constants:size_limit=1000000",
    )
    p.add_argument("--verify", action="store_true", default=None, help="verify after every pass")
    p.add_argument(
        "--explain",
        action="append",
        metavar="PASS",
        help="after compiling, say what PASS did and why each candidate it left did not match",
    )
    p.add_argument("--dump-ir", metavar="DIR", help="write the graph after every changing pass")
    p.add_argument("--dynamic-batch", action="store_true", default=None, help="free batch size")
    p.add_argument("--ort-format", action="store_true", default=None, help="also write a .ort")
    p.add_argument("--min-ios", help="Core ML deployment target: ios17 (default) or ios18")
    p.add_argument("--verify-images", metavar="PATH", help="images (folder or .npz) to verify on")
    p.add_argument(
        "--verify-count",
        type=int,
        help="how many verification images, spread evenly over the data (default 4)",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="threads for latency measurement (default: the target profile's, 1 for host)",
    )
    p.add_argument("--latency-runs", type=int, help="timed runs (default 100)")
    p.add_argument(
        "--no-measure", dest="measure", action="store_false", default=None, help="skip latency"
    )


def _sizes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of sizes like 3,224,224"
        ) from None


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="architecture of a checkpoint (a zoo or timm model name)")
    p.add_argument("--num-classes", type=int, help="classes of a fine-tuned head")
    p.add_argument(
        "--allow-pickle",
        action="store_true",
        default=None,
        help="load a whole pickled nn.Module (runs code from the file: only for trusted files)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgec", description="Edge-deployment compiler for efficient vision transformers."
    )
    parser.add_argument("--version", action="version", version=f"edgec {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    compile_p = sub.add_parser("compile", help="compile a model into a runtime artifact")
    _compile_args(compile_p)
    _model_args(compile_p)
    inspect_p = sub.add_parser("inspect", help="ops, parameters, MACs and supporting targets")
    inspect_p.add_argument("model")
    inspect_p.add_argument(
        "--int-only",
        action="store_true",
        help="only check that the graph is integer-only between input quantize and output "
        "dequantize (lists every float tensor/op inside)",
    )
    _model_args(inspect_p)
    profile_p = sub.add_parser(
        "profile",
        help="re-measure the artifact in a compile's output, or estimate it on a device",
    )
    profile_p.add_argument(
        "directory", help="a compile's output directory (with --device: or an .onnx file)"
    )
    profile_p.add_argument("--threads", type=int, default=None)
    profile_p.add_argument("--runs", type=int, default=100)
    profile_p.add_argument(
        "--device", help="estimate latency on this target with the cost model (no measuring)"
    )
    profile_p.add_argument(
        "--runtime",
        help="with --device: estimate for one of the device's other runtimes, e.g. onnxruntime",
    )
    profile_p.add_argument("--precision", help="precision of the estimate (default: the target's)")
    profile_p.add_argument(
        "--tensorrt-profile",
        metavar="JSON",
        help="per-layer times trtexec --exportProfile measured on the device (TensorRT outputs)",
    )
    eval_p = sub.add_parser("eval", help="task metrics of a compiled artifact on real data")
    eval_p.add_argument("directory", help="an `edgec compile` output directory")
    eval_p.add_argument("--data", required=True, help="images (folder/.npz, + labels) or tensors")
    eval_p.add_argument("--reference", help="the float model: a compile output dir or .onnx")
    eval_p.add_argument(
        "--count",
        type=int,
        default=10_000,
        help="samples to use, spread evenly over the data (default all, at most 10000)",
    )
    sub.add_parser("zoo", help="list the built-in models")
    sub.add_parser("targets", help="list device profiles and their aliases")
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from edgec import commands

    try:
        result = commands.run(args)
    except EdgecError as exc:
        print(f"edgec: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("edgec: interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print("edgec: internal error (a bug in edgec; please report it)", file=sys.stderr)
        return 1
    _print(result, args.json)
    return 0


def _print(result: Any, as_json: bool) -> None:
    text = json_text(result.data, indent=2) if as_json else result.text
    try:
        print(text)
    except BrokenPipeError:  # `edgec zoo | head`: the reader left; that is not an error
        sys.stderr.close()


if __name__ == "__main__":
    sys.exit(main())
