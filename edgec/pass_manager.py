"""Pass infrastructure on onnx_ir: the edgec pass base class, the pass registry, the runner.

A pass is an `onnx_ir` in-place pass registered under a namespaced id
(`cleanup::fold_constants`). It has a frozen `Options` dataclass, counts what it did in
`self.stats`, may say in `self.explanations` why it left a candidate alone (one line per site;
`edgec compile --explain PASS` prints them), and must be idempotent: run twice, the second run
reports `modified=False`.

`run_passes` runs a list of pass ids in order and records, per pass, what changed, how long it
took and (when a verifier is given) how far the outputs moved. A verifier that raises stops
the run; the error names the pass and the ones before it.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import onnx_ir as ir

from edgec.errors import EdgecError, PassError
from edgec.options import NoOptions, as_dict, make_options
from edgec.registry import Registry


class EdgecPass(ir.passes.InPlacePass):
    """Base of every edgec pass: an id, typed options, statistics and explanations."""

    id: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, options: Any = None):
        super().__init__()
        self.options = options if options is not None else self.Options()
        self.stats: collections.Counter[str] = collections.Counter()
        self.explanations: list[str] = []  # "<site>: <why it did not match>", one per candidate


PASSES: Registry[type[EdgecPass]] = Registry("pass")


def register_pass(cls: type[EdgecPass]) -> type[EdgecPass]:
    """Class decorator: registers a pass under its `id` (which must be `namespace::name`)."""
    if "::" not in cls.id:
        raise ValueError(f"pass id {cls.id!r} of {cls.__name__} must look like 'namespace::name'")
    return PASSES.register(cls.id)(cls)


def create_pass(pass_id: str, options: dict[str, Any] | None = None) -> EdgecPass:
    cls = PASSES.get(pass_id)
    return cls(make_options(cls.Options, options, f"pass {pass_id}"))


@dataclasses.dataclass
class PassRecord:
    """What one pass did: the manifest's `passes[]` entry."""

    id: str
    options: dict[str, Any]
    modified: bool
    stats: dict[str, int]
    seconds: float
    nodes_before: int
    nodes_after: int
    verification: dict[str, Any] | None = None
    explanations: list[str] = dataclasses.field(default_factory=list)


Verifier = Callable[[ir.Model, str], dict[str, Any]]
"""Called after a pass with the new model and the pass id; returns figures or raises."""


def count_nodes(model: ir.Model) -> int:
    return sum(1 for _ in model.graph.all_nodes())


def run_passes(
    model: ir.Model,
    pass_ids: list[str],
    options: dict[str, dict[str, Any]] | None = None,
    verifier: Verifier | None = None,
    dump_dir: Path | None = None,
    on_pass: Callable[[str], None] | None = None,
) -> list[PassRecord]:
    """Run `pass_ids` in order on `model` (in place) and return one record per pass."""
    options = options or {}
    unknown = sorted(set(options) - set(pass_ids))
    if unknown:
        from edgec.errors import UserError

        raise UserError(
            f"options given for pass(es) not in the pipeline: {', '.join(unknown)}",
            f"the pipeline runs: {', '.join(pass_ids)}",
        )
    records: list[PassRecord] = []
    for index, pass_id in enumerate(pass_ids):
        if on_pass:
            on_pass(pass_id)
        p = create_pass(pass_id, options.get(pass_id))
        before = count_nodes(model)
        start = time.perf_counter()
        try:
            result = p(model)
        except EdgecError:
            raise
        except Exception as exc:  # a pass bug: say which pass and what ran before it
            ran = ", ".join(pass_ids[:index]) or "none"
            raise PassError(
                f"pass {pass_id} failed: {exc!r} (passes run before it: {ran})"
            ) from exc
        seconds = time.perf_counter() - start
        record = PassRecord(
            id=pass_id,
            options=as_dict(p.options),
            modified=bool(result.modified),
            stats=dict(sorted(p.stats.items())),
            seconds=round(seconds, 4),
            nodes_before=before,
            nodes_after=count_nodes(result.model),
            explanations=list(p.explanations),
        )
        model = result.model
        if verifier is not None and record.modified:
            record.verification = verifier(model, pass_id)
        if dump_dir is not None and record.modified:
            dump_dir.mkdir(parents=True, exist_ok=True)
            safe = pass_id.replace("::", "__")
            ir.save(model, dump_dir / f"{index:02d}_{safe}.onnx")
        records.append(record)
    return records
