"""2-D axial rotary position encoding with real cos/sin tables (no complex tensors).

The official code (position_encoding.py `compute_axial_cis` / `apply_rotary_enc`) builds
complex `freqs_cis` with `torch.polar` and rotates `view_as_complex` pairs. ONNX, TensorRT and
Core ML have no complex dtype, so edgec keeps the same angles as two real tables and rotates
the interleaved pairs (x[2i], x[2i+1]) with real arithmetic:

    angle[n, i] = t_x(n)·f_i            for i < dim/4    (t_x = n mod W)
                = t_y(n)·f_(i-dim/4)     for i ≥ dim/4    (t_y = n div W)
    f_j = θ^(-4j/dim)
    (re, im) → (re·cos − im·sin, re·sin + im·cos)

Keys longer than the query grid (memory of T frames) reuse the same table for every frame
(the official `rope_k_repeat`), by broadcasting over a frame axis instead of tiling.
"""

from __future__ import annotations

import torch


def axial_angles(dim: int, end_x: int, end_y: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotation angles (end_x·end_y, dim/2) of the official axial RoPE, row-major tokens."""
    exponents = torch.arange(0, dim, 4)[: dim // 4].float() / dim
    freqs = 1.0 / (theta**exponents)
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    t_x = t % end_x
    t_y = torch.div(t, end_x, rounding_mode="floor")
    return torch.cat([torch.outer(t_x, freqs), torch.outer(t_y, freqs)], dim=-1)


def cos_sin_tables(
    dim: int, end_x: int, end_y: int, theta: float = 10000.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) tables, each (tokens, dim/2)."""
    angles = axial_angles(dim, end_x, end_y, theta)
    return torch.cos(angles), torch.sin(angles)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, N, d) by tables (N, d/2); N may be T·len(table) (T frames).

    Frames beyond the first reuse the table (the official `rope_k_repeat`).
    """
    b, h, n, d = x.shape
    tokens = cos.shape[0]
    pairs = x.reshape(b, h, -1, tokens, d // 2, 2)
    re, im = pairs[..., 0], pairs[..., 1]
    out = torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1)
    return out.reshape(b, h, n, d)
