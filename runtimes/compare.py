"""Output comparison for every verification: ONNX vs PyTorch, pass vs pass, runtime vs runtime.

The fp32 bound is the architecture's verification policy: for every output,

    max |actual - reference| <= bound * max(1, max |reference|)      (bound = 5e-5)

i.e. an absolute tolerance for outputs of magnitude ≤ 1 that grows with the output's largest
magnitude beyond that — unless the model itself is ill-conditioned on the inputs: when the
reference is PyTorch fp32 and PyTorch's own fp32 result is `noise` away from its float64
result (`noise_floor`, per output), no fp32 implementation can be held closer than that, and
the budget is `max(bound·max(1, max|ref|), 2·noise)` (recorded as `fp32_noise`).
Cosine similarity (flattened, float64) is reported for every output;
quantized results are judged by it (`min_cosine`) and task metrics, never by the fp32 bound,
so pass `bound=None, min_cosine=...` for those.

Names or shapes that do not match fail the comparison with a reason that says which.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

DEFAULT_BOUND = 5e-5


@dataclasses.dataclass
class OutputComparison:
    """One output: the error, the budget it was held to, and the verdict."""

    name: str
    passed: bool
    max_abs: float | None = None
    mean_abs: float | None = None
    max_ref: float | None = None
    allowed: float | None = None
    fp32_noise: float | None = None
    cosine: float | None = None
    shape: tuple[int, ...] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["shape"] = list(self.shape) if self.shape is not None else None
        return out


@dataclasses.dataclass
class Comparison:
    """All outputs of one comparison; `passed` only if every output passed and names match."""

    outputs: list[OutputComparison]
    bound: float | None
    min_cosine: float | None = None
    missing: list[str] = dataclasses.field(default_factory=list)
    unexpected: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when names match and every compared output is within its budget."""
        return not self.missing and not self.unexpected and all(o.passed for o in self.outputs)

    def failures(self) -> list[str]:
        """One line per problem, for error messages."""
        lines = []
        if self.missing:
            lines.append(f"outputs missing from the result: {', '.join(self.missing)}")
        if self.unexpected:
            lines.append(f"outputs not in the reference: {', '.join(self.unexpected)}")
        lines += [f"{o.name}: {o.reason}" for o in self.outputs if not o.passed]
        return lines

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for manifests and reports."""
        return {
            "passed": self.passed,
            "bound": self.bound,
            "min_cosine": self.min_cosine,
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "outputs": [o.to_dict() for o in self.outputs],
        }


def compare_outputs(
    reference: dict[str, np.ndarray],
    actual: dict[str, np.ndarray],
    bound: float | None = DEFAULT_BOUND,
    *,
    min_cosine: float | None = None,
    noise_floor: dict[str, float] | None = None,
) -> Comparison:
    """Compare `actual` against `reference` output by output (see the module docstring).

    Args:
        reference: output name → array from the reference (PyTorch, or the previous stage).
        actual: output name → array from the thing being verified.
        bound: relative-to-magnitude absolute bound; None to skip the absolute check.
        min_cosine: when set, each output also needs cosine similarity ≥ this.
        noise_floor: output name → max |PyTorch fp32 − PyTorch fp64| on the same inputs.
    """
    noise_floor = noise_floor or {}
    missing = [n for n in reference if n not in actual]
    unexpected = [n for n in actual if n not in reference]
    outputs = [
        _compare_one(
            name,
            np.asarray(reference[name]),
            np.asarray(actual[name]),
            bound,
            min_cosine,
            noise_floor.get(name),
        )
        for name in reference
        if name in actual
    ]
    return Comparison(outputs, bound, min_cosine, missing, unexpected)


def _compare_one(
    name: str,
    ref: np.ndarray,
    act: np.ndarray,
    bound: float | None,
    min_cosine: float | None,
    noise: float | None,
) -> OutputComparison:
    if ref.shape != act.shape:
        return OutputComparison(
            name, False, reason=f"shape {list(act.shape)} != reference shape {list(ref.shape)}"
        )
    r = ref.astype(np.float64, copy=False)
    a = act.astype(np.float64, copy=False)
    same = (r == a) | (np.isnan(r) & np.isnan(a))
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - r))
    finite_ref = np.abs(r[np.isfinite(r)])
    max_ref = float(finite_ref.max()) if finite_ref.size else 0.0
    max_abs = float(diff.max()) if diff.size else 0.0
    mean_abs = float(diff.mean()) if diff.size else 0.0
    cosine = _cosine(r, a)
    allowed = bound * max(1.0, max_ref) if bound is not None else None
    budget = f"{bound:g}·max(1, {max_ref:.3g})" if bound is not None else ""
    if allowed is not None and noise is not None and 2 * noise > allowed:
        allowed, budget = 2 * noise, f"2 × PyTorch's own fp32-vs-fp64 difference {noise:.3g}"
    reasons = []
    if not np.isfinite(max_abs):
        reasons.append("non-finite values differ (NaN/Inf where the reference has none)")
    elif allowed is not None and max_abs > allowed:
        reasons.append(f"max|Δ| {max_abs:.3g} > allowed {allowed:.3g} (= {budget})")
    if min_cosine is not None and not cosine >= min_cosine:
        reasons.append(f"cosine {cosine:.6f} < {min_cosine}")
    return OutputComparison(
        name=name,
        passed=not reasons,
        max_abs=max_abs,
        mean_abs=mean_abs,
        max_ref=max_ref,
        allowed=allowed,
        fp32_noise=noise,
        cosine=cosine,
        shape=tuple(int(d) for d in ref.shape),
        reason="; ".join(reasons),
    )


def _cosine(r: np.ndarray, a: np.ndarray) -> float:
    r, a = r.ravel(), a.ravel()
    if not (np.isfinite(r).all() and np.isfinite(a).all()):
        return float("nan")
    if np.array_equal(r, a):
        return 1.0
    nr, na = float(np.linalg.norm(r)), float(np.linalg.norm(a))
    if nr == 0.0 or na == 0.0:
        return 0.0
    return float(np.clip(np.dot(r, a) / (nr * na), -1.0, 1.0))
