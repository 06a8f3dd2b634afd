"""`format_stats(stats)`: the text report of a `GraphStats` that `edgec inspect` prints.

Summary lines (graph, inputs and outputs, node count, parameters, MACs, other ops, shapes),
then the op histogram with MACs and their share per op type, the heaviest nodes by MACs, and
the contraction nodes the MAC total leaves out. Numbers are printed in full with thousands
separators and abbreviated (K, M, G; KiB, MiB, GiB).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgec.graph_stats import GraphStats

__all__ = ["format_stats"]


def format_stats(stats: GraphStats, *, top: int = 10, max_listed: int = 20) -> str:
    """A readable text report: summary lines, the op histogram with MACs per op type, the
    `top` heaviest nodes, and the nodes the MAC total leaves out (the first `max_listed`)."""
    lines: list[str] = []
    opsets = ", ".join(f"{d} {v}" for d, v in stats.opset_imports.items())
    head = [f"ir {stats.ir_version}", f"opsets {opsets}"]
    if stats.producer:
        head.insert(0, f"producer {stats.producer}")
    lines.append(f"graph    {stats.graph_name or '(unnamed)'}  ({' · '.join(head)})")
    for title, infos in (("inputs", stats.inputs), ("outputs", stats.outputs)):
        for i, t in enumerate(infos):
            shape = "?" if t.shape is None else "[" + ", ".join(str(d) for d in t.shape) + "]"
            lines.append(f"{title if i == 0 else '':<8} {t.name}  {t.dtype} {shape}")
    sub = f", {stats.subgraph_node_count} in subgraphs" if stats.subgraph_node_count else ""
    lines.append(f"nodes    {stats.node_count:,} ({len(stats.op_histogram)} op types{sub})")
    by_dtype = ", ".join(f"{d} {n:,}" for d, n in stats.parameters_by_dtype.items())
    lines.append(
        f"params   {stats.parameter_count:,} ({_human(stats.parameter_count)}) in "
        f"{stats.parameter_tensors} tensors, {_human_bytes(stats.parameter_bytes)}"
        + (f"  [{by_dtype}]" if by_dtype else "")
    )
    if stats.excluded_elements:
        lines.append(
            f"         not counted: {stats.excluded_elements:,} int64/bool constant "
            "elements (shapes, indices)"
        )
    n_unc = len(stats.uncounted)
    counted = (
        f"all {len(stats.mac_nodes)} contraction nodes counted"
        if not n_unc
        else (
            f"{len(stats.mac_nodes) - n_unc} of {len(stats.mac_nodes)} contraction nodes counted, "
            f"{n_unc} NOT counted (see below)"
        )
    )
    lines.append(f"MACs     {stats.macs:,} ({_human(stats.macs)}); {counted}")
    other = f"other    {stats.other_ops:,} ({_human(stats.other_ops)}) element ops"
    if stats.other_ops_uncounted_nodes:
        other += f"; {stats.other_ops_uncounted_nodes} nodes not counted (shape unknown)"
    lines.append(other)
    if stats.unmodelled_ops:
        lines.append(
            "         no cost model for: "
            + ", ".join(f"{op} ×{n}" for op, n in stats.unmodelled_ops.items())
        )
    if stats.dims:
        lines.append("dims     " + ", ".join(f"{k}={v}" for k, v in stats.dims.items()))
    lines.append(f"shapes   {stats.shape_inference}")

    if stats.op_histogram:
        width = max(len(op) for op in stats.op_histogram)
        lines += ["", f"{'op':<{width}}  {'count':>6}  {'MACs':>9}  {'share':>6}"]
        for op, count in stats.op_histogram.items():
            row = f"{op:<{width}}  {count:>6}"
            if op in stats.macs_by_op:
                macs = stats.macs_by_op[op]
                row += f"  {_human(macs):>9}  {_share(macs, stats.macs):>6}"
            lines.append(row)

    heaviest = sorted((n for n in stats.mac_nodes if n.macs), key=lambda n: -n.macs)[:top]
    if heaviest:
        width = max(len(n.name) for n in heaviest)
        lines += ["", f"top {len(heaviest)} nodes by MACs"]
        lines += [
            f"  {n.name:<{width}}  {n.op_type:<13} {_human(n.macs):>9}  "
            f"{_share(n.macs, stats.macs):>6}"
            for n in heaviest
        ]
    if stats.uncounted:
        lines += ["", f"MACs not counted for {n_unc} nodes:"]
        lines += [f"  {n.name} ({n.op_type}): {n.reason}" for n in stats.uncounted[:max_listed]]
        if n_unc > max_listed:
            lines.append(f"  … and {n_unc - max_listed} more (GraphStats.uncounted lists all)")
    return "\n".join(lines)


def _human(n: int) -> str:
    for factor, unit in ((1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {unit}"
    return str(n)


def _human_bytes(n: int) -> str:
    for factor, unit in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {unit}"
    return f"{n} B"


def _share(part: int, total: int) -> str:
    return f"{100 * part / total:.1f}%" if total else "-"
