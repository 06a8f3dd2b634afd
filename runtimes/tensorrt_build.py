"""Parse an ONNX file and build a serialized engine through TensorRT's Python API.

    result = build(sdk, onnx_path, shapes=profile_shapes(model, 8)[0], timing_cache=path)
    result.ok, result.errors, result.engine (bytes), result.layers, result.seconds

The network is always **strongly typed**: the ONNX types are the precision (an fp16 graph
runs fp16, explicit int8/int4 Q/DQ run int8/int4), so no builder flag can silently change what
the graph says. With full TensorRT the timing cache is read before and written after the
build, so later builds on the same GPU reuse the timings (TensorRT-RTX ignores timing caches).
Dynamic dimensions get one optimisation profile (`tensorrt_shapes.profile_shapes`).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from edgec.runtimes.tensorrt_sdk import Sdk
from edgec.runtimes.tensorrt_shapes import Shapes


@dataclasses.dataclass
class BuildResult:
    """What the builder said: parse/build errors, or the engine and its layer count."""

    sdk: str
    ok: bool
    stage: str  # "parse" or "build": how far it got
    errors: list[str]
    layers: int = 0
    seconds: float = 0.0
    engine: bytes | None = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {
            "sdk": self.sdk,
            "passed": self.ok,
            "stage": self.stage,
            "errors": self.errors,
            "network_layers": self.layers,
            "engine_bytes": len(self.engine) if self.engine else 0,
            "seconds": round(self.seconds, 2),
        }


def build(sdk: Sdk, onnx_path: Path, *, shapes: Shapes, timing_cache: Path | None) -> BuildResult:
    """Parse `onnx_path` and build it strongly typed; never raises on a rejected graph."""
    trt = sdk.module
    start = time.perf_counter()
    logged: list[str] = []
    logger = _collecting_logger(trt, logged)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        return BuildResult(sdk.describe(), False, "parse", errors, 0, time.perf_counter() - start)
    config = builder.create_builder_config()
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (low, opt, high) in shapes.items():
            profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)
    cache = _load_timing_cache(config, timing_cache) if sdk.builds_target_engines else None
    engine = builder.build_serialized_network(network, config)
    seconds = time.perf_counter() - start
    if engine is None:
        errors = logged or ["build_serialized_network returned no engine"]
        return BuildResult(sdk.describe(), False, "build", errors, network.num_layers, seconds)
    if cache is not None and timing_cache is not None:
        timing_cache.parent.mkdir(parents=True, exist_ok=True)
        timing_cache.write_bytes(bytes(cache.serialize()))
    layers = network.num_layers
    return BuildResult(sdk.describe(), True, "build", [], layers, seconds, bytes(engine))


def _collecting_logger(trt, messages: list[str]):
    """A TensorRT logger that keeps error messages (the builder's only account of a failure)."""
    errors = {trt.ILogger.Severity.ERROR, trt.ILogger.Severity.INTERNAL_ERROR}

    class Collecting(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)

        def log(self, severity, msg):
            if severity in errors:
                messages.append(str(msg).strip())

    return Collecting()


def _load_timing_cache(config, path: Path | None):
    data = path.read_bytes() if path is not None and path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache
