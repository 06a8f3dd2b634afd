"""Why an attention pass left a candidate alone: `NoMatch(reason)` and per-site explanations.

A matcher raises `NoMatch("q is not flattened by a Reshape")`; the pass records it with
`Explanations.add(node, reason)` as one line per candidate site, which `--explain`-style
reporting prints (the pass keeps them in `explanations`; stats count them as `kept_unmatched`).
"""

from __future__ import annotations

import onnx_ir as ir


class NoMatch(Exception):
    """A candidate is not the pattern; the message says which condition failed."""


def site(node: ir.Node) -> str:
    """A node as a person finds it in a graph viewer: op type and name (or first output)."""
    name = node.name or (node.outputs[0].name if node.outputs else None) or "?"
    return f"{node.op_type} {name!r}"


class Explanations(list):
    """One line per candidate that did not match: `<site>: <reason>`."""

    def add(self, node: ir.Node, reason: NoMatch | str) -> None:
        self.append(f"{site(node)}: {reason}")
