"""The errors edgec raises, and the exit code each one maps to.

A `UserError` is something the user can fix (bad path, bad model, unsupported op, bad option):
the CLI prints its message and a hint and exits with code 2. Anything else that escapes is a
bug in edgec and exits with code 1.
"""

from __future__ import annotations


class EdgecError(Exception):
    """Base class of every error edgec raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  how to fix: {self.hint}"


class UserError(EdgecError):
    """The input or the options are wrong; the message says what and how to fix it."""

    exit_code = 2


class ModelLoadError(UserError):
    """A model file is missing, corrupt, unsafe to load, or does not fit the architecture."""


class CheckpointMismatchError(ModelLoadError):
    """A state_dict does not fit the architecture: names the missing/unexpected/mis-shaped keys."""

    def __init__(
        self,
        arch: str,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        hint: str | None = None,
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [f"checkpoint does not match architecture {arch!r}:"]
        for title, keys in (("missing keys", missing), ("unexpected keys", unexpected)):
            if keys:
                shown = ", ".join(keys[:12]) + (
                    f", … ({len(keys) - 12} more)" if len(keys) > 12 else ""
                )
                lines.append(f"  {title} ({len(keys)}): {shown}")
        if mismatched:
            shown = "; ".join(
                f"{k}: checkpoint {list(a)} vs model {list(b)}" for k, a, b in mismatched[:8]
            )
            more = f"; … ({len(mismatched) - 8} more)" if len(mismatched) > 8 else ""
            lines.append(f"  mis-shaped keys ({len(mismatched)}): {shown}{more}")
        super().__init__(
            "\n".join(lines),
            hint or "check --arch (and --num-classes for a fine-tuned head) against the checkpoint",
        )


class UnsupportedOpsError(UserError):
    """A graph holds ops a target cannot run; lists all of them at once with their nodes."""

    def __init__(self, target: str, ops: dict[str, list[str]], hint: str | None = None):
        self.target, self.ops = target, ops
        parts = []
        for op, nodes in sorted(ops.items()):
            names = ", ".join(nodes[:3]) + (
                f", … ({len(nodes) - 3} more)" if len(nodes) > 3 else ""
            )
            parts.append(f"  {op} ({len(nodes)} node{'s' if len(nodes) != 1 else ''}: {names})")
        super().__init__(f"{target} cannot run these ops:\n" + "\n".join(parts), hint)


class VerificationError(UserError):
    """A compiled graph does not compute what its reference computes (beyond the bound)."""


class PassError(EdgecError):
    """A pass failed or broke the graph; names the pass and the passes that ran before it."""
