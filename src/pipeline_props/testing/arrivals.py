"""Arrival batches: a dataset dealt into k batches, and the pipeline's tables after each batch.

* :func:`plan_arrivals`: a dataset's records dealt into k arrival batches
  (each file's records split over the batches, one part file per file and
  batch), and :class:`ArrivalPlan`, which knows every part's file_index in
  the whole arrival sequence;
* :func:`run_arrivals`: ingest batch 1, catch up, build the marts, read
  them; batch 2, ...; one :class:`Step` per batch with the tables and the
  expected tables over everything arrived so far;
* :func:`run_stages_in_batches`: the same for the ``run`` job (runner.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline_props import contract as C
from pipeline_props.compare import Divergence, TableSet, compare
from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.protocol import StagedPipeline
from pipeline_props.strategies import PLAIN_HEADER

if TYPE_CHECKING:
    from pipeline_props.pipeline.ingest import IngestStats
    from pipeline_props.pipeline.streaming_query import TransformStats

__all__ = ["ArrivalPlan", "Step", "plan_arrivals", "run_arrivals", "run_stages_in_batches"]

Files = Sequence[tuple[str, bytes]]
#: A header-only file: sends nothing, but takes a file_index (see ArrivalPlan.ingest_files).
_HEADER_ONLY = PLAIN_HEADER + b"\n"
_STAND_IN = "(arrived earlier"


@dataclass(frozen=True)
class ArrivalPlan:
    """A dataset as k arrival batches: each batch's part files, in arrival order.

    A part's file_index is its position in the whole arrival sequence (batch
    1's parts, then batch 2's, ...), so the oracle over the parts arrived so
    far numbers every record as the pipeline does. A batch may be empty (a run
    with no new data).
    """

    batches: tuple[tuple[tuple[str, bytes], ...], ...]

    @property
    def files(self) -> list[tuple[str, bytes]]:
        """Every part, in arrival order: the whole dataset as it arrived."""
        return [f for batch in self.batches for f in batch]

    def arrived(self, step: int) -> list[tuple[str, bytes]]:
        """The parts of batches 0..``step``."""
        return [f for batch in self.batches[: step + 1] for f in batch]

    def ingest_files(self, step: int) -> list[tuple[str, bytes]]:
        """Batch ``step``'s parts behind header-only stand-ins for the earlier parts.

        Ingest numbers files by their position in the list it is given; a
        header-only file sends no message, so the stand-ins only move the
        batch's parts to their file_index in the arrival sequence.
        """
        earlier = sum(len(b) for b in self.batches[:step])
        return [(f"{_STAND_IN} {i})", _HEADER_ONLY) for i in range(earlier)] + list(self.batches[step])

    def describe(self) -> str:
        """One line per batch: its parts and their record counts."""
        from pipeline_props.testing.datasets import record_slices

        lines = []
        for k, batch in enumerate(self.batches):
            parts = ", ".join(f"{name} ({len(record_slices(data)[1])} record(s))" for name, data in batch)
            lines.append(f"  batch {k + 1}: {parts or 'nothing new'}")
        return "\n".join(lines)


def plan_arrivals(files: Files, shifts: Sequence[int], k: int) -> ArrivalPlan:
    """Deal every file's records into ``k`` batches: record ``i`` (counted over the dataset) goes to
    batch ``(i + shifts[i % len(shifts)]) % k``, so ``shifts=[0]`` deals them round robin.

    One part file per (file, batch) with records, named ``<stem>.b<batch>.<suffix>``,
    holding the file's header and those records in file order; a file
    without records goes whole to the batch of its position. Raises
    InputError for a refused header (as the pipeline and the oracle would).
    """
    from pipeline_props.testing.datasets import record_slices

    if k < 1:
        raise UsageError(f"plan_arrivals: k={k} must be at least 1")
    shift = list(shifts) or [0]
    batches: list[list[tuple[str, bytes]]] = [[] for _ in range(k)]
    counter = 0
    for name, data in files:
        head, records = record_slices(data)
        if not records:
            batches[(counter + shift[counter % len(shift)]) % k].append((name, data))
            continue
        if not head.endswith((b"\n", b"\r")):
            head += b"\n"
        owners = []
        for _ in records:
            owners.append((counter + shift[counter % len(shift)]) % k)
            counter += 1
        stem, dot, suffix = name.rpartition(".")
        for b in range(k):
            mine = [r for r, owner in zip(records, owners) if owner == b]
            if mine:
                part = f"{stem}.b{b + 1}.{suffix}" if dot else f"{name}.b{b + 1}"
                batches[b].append((part if k > 1 else name, head + b"".join(mine)))
    return ArrivalPlan(tuple(tuple(b) for b in batches))


@dataclass
class Step:
    """One arrival batch through the pipeline: its tables against the oracle over everything arrived so far."""

    step: int
    parts: list[str]
    rows_arrived: int
    tables: TableSet
    expected: TableSet
    divergence: Divergence
    seconds: dict[str, float] = field(default_factory=dict)
    #: The model stage's error (failing dbt data tests, say) when the run went on after it.
    model_error: str | None = None
    #: The batch's ingest stats (None for a batch with nothing new) and transform stats.
    ingest: Any = None
    transform: Any = None

    @property
    def ok(self) -> bool:
        return self.divergence.ok and self.model_error is None

    def summary(self) -> dict[str, Any]:
        """The step for reports (JSON): counts, verdict, the divergence rendered."""
        audit = dict(zip(C.OUTPUT_TABLES[C.INGESTION_AUDIT], (self.tables.get(C.INGESTION_AUDIT) or [()])[0]))
        return {"step": self.step, "parts": self.parts, "rows_arrived": self.rows_arrived,
                "held": self.ok, "rows": {t: len(r) for t, r in self.tables.items()},
                "audit": {k: int(v) for k, v in audit.items()},
                "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
                "model_error": self.model_error,
                "divergence": None if self.ok else self.divergence.render(max_rows=20)}


def run_arrivals(pipeline: StagedPipeline, namespace: str, plan: ArrivalPlan, *,
                 expected: Callable[[int], TableSet] | None = None,
                 on_step: Callable[[Step], None] | None = None,
                 keep_going: bool = False) -> list[Step]:
    """Every batch of ``plan`` through ``pipeline`` (prepared ``namespace``), the marts read after each.

    The caller prepares and cleans up the namespace. ``expected(k)`` (default:
    the DuckDB oracle over ``plan.arrived(k)``) gives the expected tables after
    batch ``k`` (0-based); an empty batch still runs the transform and the
    model (a rerun with no new data). With ``keep_going`` a model stage that
    fails (its data tests, say) is recorded in the step and the tables are
    read all the same.
    """
    if expected is None:
        from pipeline_props.oracles import run_oracle

        def expected(k: int) -> TableSet:
            return run_oracle(plan.arrived(k)).tables

    from pipeline_props.testing.datasets import record_slices

    steps: list[Step] = []
    for k, batch in enumerate(plan.batches):
        seconds: dict[str, float] = {}
        t0 = time.perf_counter()
        istats = pipeline.ingest(namespace, plan.ingest_files(k)) if batch else None
        seconds["ingest"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tstats = pipeline.transform(namespace)
        seconds["transform"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model_error = None
        try:
            pipeline.model(namespace)
        except PipelineStageError as exc:
            if not keep_going:
                raise
            model_error = str(exc)
        seconds["model"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tables = pipeline.read_tables(namespace)
        seconds["export"] = time.perf_counter() - t0
        want = expected(k)
        step = Step(step=k + 1, parts=[n for n, _ in batch],
                    rows_arrived=sum(len(record_slices(d)[1]) for _, d in batch),
                    tables=tables, expected=want, divergence=compare(tables, want), seconds=seconds,
                    model_error=model_error, ingest=istats, transform=tstats)
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return steps


def run_stages_in_batches(
    pipeline: StagedPipeline, namespace: str, plan: ArrivalPlan, *, progress: Callable[[str, str], None] | None = None,
) -> tuple[IngestStats, TransformStats, TableSet, list[Step]]:
    """The ``run`` job's stages over ``plan``'s batches: (ingest stats, transform stats, last tables, steps).

    The stats add up every batch's (the header-only stand-ins left out), so
    the validators see the whole dataset; the caller prepares the namespace.
    """
    from pipeline_props.pipeline.ingest import IngestStats
    from pipeline_props.pipeline.streaming_query import TransformStats

    def on_step(step: Step) -> None:
        if progress is not None:
            progress(f"batch {step.step}/{len(plan.batches)}", "done")
            if step.step < len(plan.batches):
                progress(f"batch {step.step + 1}/{len(plan.batches)}", "start")

    if progress is not None:
        progress(f"batch 1/{len(plan.batches)}", "start")
    steps = run_arrivals(pipeline, namespace, plan, on_step=on_step, keep_going=True)
    istats = IngestStats()
    for step in steps:
        if step.ingest is not None:
            real = [f for f in step.ingest.per_file if not str(f["name"]).startswith(_STAND_IN)]
            istats.files += len(real)
            istats.records += step.ingest.records
            istats.malformed += step.ingest.malformed
            istats.acked += step.ingest.acked
            istats.seconds += step.ingest.seconds
            istats.per_file.extend(real)
            istats.headers.extend(step.ingest.headers[len(step.ingest.headers) - len(real):])
    tstats = TransformStats(rows=sum(max(s.transform.rows, 0) for s in steps),
                            batches=sum(max(s.transform.batches, 0) for s in steps),
                            seconds=sum(s.transform.seconds for s in steps))
    return istats, tstats, steps[-1].tables, steps
