"""edgec's latency cost model (used by `edgec.estimate`).

kernels     group ONNX nodes into fused kernels; FLOPs and bytes per kernel
fusion      what each kind of runtime fuses (accelerators; ONNX Runtime's CPU provider)
hardware    the compute unit, peak and bandwidth a device profile gives
roofline    time per kernel: roofline with per-op-class efficiency and launch overhead
placement   which kernels the profile's fallbacks move off the accelerator
calibration per-device constants shipped in devices/latency_calibration.json
fit         fitting those constants to published measurements (bench/estimator.py)
host_micro  micro-benchmarks (small ONNX graphs in ORT) that calibrate the host
host_calibration  the host's constants: measured at first use, cached on disk
cpu_time    interleaved timing that also records each call's CPU time (shared machines)
"""
