"""edgec's latency cost model (used by `edgec.estimate`).

kernels     group ONNX nodes into fused kernels; FLOPs and bytes per kernel
hardware    the compute unit, peak and bandwidth a device profile gives
roofline    time per kernel: roofline with per-op-class efficiency and launch overhead
placement   which kernels the profile's fallbacks move off the accelerator
calibration per-device constants shipped in devices/latency_calibration.json
fit         fitting those constants to published measurements (bench/estimator.py)
"""
