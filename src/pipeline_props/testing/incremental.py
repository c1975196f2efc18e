"""The incremental-marts property: k arrival batches, k incremental runs, each equal to the oracle.

:func:`check_incremental` feeds an :class:`~pipeline_props.pipeline.incremental.ArrivalPlan`
to a pipeline with incremental marts, batch by batch, and checks:

1. after every batch, every table equals the oracle over everything arrived
   so far (rejected_rows with its positions), and the audit's conservation holds;
2. at the end, the tables equal a full refresh of the same namespace
   (``pipeline.full_refresh``, when the pipeline has one);
3. at the end, the marts and audit equal the oracle over the original
   dataset, rejected rows modulo position (the batches only cut files).

A failure raises DivergenceError with the batches, the step that diverged and
the rows side by side (docs/properties.md, "Incremental marts").
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pipeline_props import contract as C
from pipeline_props.compare import Divergence, TableSet, compare, compare_tables
from pipeline_props.protocol import StagedPipeline
from pipeline_props.testing import properties as P
from pipeline_props.testing.arrivals import ArrivalPlan, Step, run_arrivals
from pipeline_props.testing.datasets import Dataset, _files_of
from pipeline_props.testing.repros import INCREMENTAL_PROPERTY
from pipeline_props.testing.runs import _reported_build, fresh_namespace

__all__ = ["UNREADABLE_ROWS", "arrival_events", "check_incremental", "check_incremental_case", "incremental_cases"]

_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pp-incremental-oracle")


#: Records without a readable event id (event_id NULL in rejected_rows): an empty event_id and two
#: malformed records. The dataset strategies make few of them; a NULL in a unique key needs two.
UNREADABLE_ROWS: tuple[bytes, ...] = (
    b",o9,c9,p9,toys,NA,online,1,1.00,,USD,2024-01-01T00:00:00Z",
    b"e9,o9,c9",
    b'e9,"o9"x,c9,p9,toys,NA,online,1,1.00,,USD,2024-01-01T00:00:00Z',
)


def incremental_cases(**dataset_options: Any) -> Any:
    """(dataset, k, shifts) for :func:`plan_arrivals`: the dataset, plus 0-3 records without an event id
    in a file of their own, k in 1..5 (shrinking to 2) and a deal of the records.

    ``dataset_options`` go to ``sales_datasets`` (default: up to 12 rows in 1-2
    files, error rate 0.2, duplicate rate 0.4: versions and copies to spread).
    """
    from hypothesis import strategies as st

    from pipeline_props.strategies import SalesDataset, sales_datasets

    options = {"min_rows": 0, "max_rows": 12, "files": (1, 2), "error_rate": 0.2, "duplicate_rate": 0.4,
               **dataset_options}
    header = (",".join(C.COLUMNS) + "\n").encode()

    def combine(dataset: Any, unreadable: list[bytes]) -> Any:
        if not unreadable:
            return dataset
        extra = ("no_event_id.csv", header + b"".join(r + b"\n" for r in unreadable))
        return SalesDataset(files=(*dataset.files, extra))

    datasets = st.builds(combine, sales_datasets(**options),
                         st.lists(st.sampled_from(UNREADABLE_ROWS), max_size=3))
    return st.tuples(datasets, st.integers(0, 4).map(lambda i: (2, 3, 1, 4, 5)[i]),
                     st.lists(st.integers(0, 4), min_size=1, max_size=24))


def _oracle(files: Sequence[tuple[str, bytes]]) -> TableSet:
    from pipeline_props.oracles import run_oracle

    return run_oracle(files).tables


def arrival_events(plan: ArrivalPlan) -> list[str]:
    """Labels of what a plan exercises: events whose versions or copies arrive in different batches."""
    from pipeline_props.oracles.duckdb_oracle import (
        _build,  # the oracle's own duplicate verdicts
    )

    batch_of_file = [k for k, batch in enumerate(plan.batches) for _ in batch]
    labels = [f"{len(plan.batches)} batch(es)"]
    if any(not b for b in plan.batches[1:]):
        labels.append("a batch with nothing new (rerun)")
    con, _ = _build(plan.files)
    try:
        has_versions = con.execute("SELECT count(*) FROM information_schema.tables "
                                   "WHERE table_name = 'versions'").fetchone()[0]
        rows = con.execute("SELECT c.event_id, c.file_index, v.verdict FROM candidates AS c "
                           "JOIN versions AS v USING (rid)").fetchall() if has_versions else []
        unreadable = [r[0] for r in con.execute("SELECT source_file FROM rejected WHERE event_id IS NULL").fetchall()]
    finally:
        con.close()
    batch_of_name = {name: k for k, batch in enumerate(plan.batches) for name, _ in batch}
    if len({batch_of_name.get(name) for name in unreadable}) > 1:
        labels.append("rows without an event id in different batches")
    spread: dict[tuple[str, bool], set[int]] = {}
    for event_id, file_index, verdict in rows:
        spread.setdefault((event_id, verdict == "conflict"), set()).add(batch_of_file[file_index])
    if any(len(b) > 1 for (_, conflict), b in spread.items() if conflict):
        labels.append("conflicting versions in different batches")
    if any(len(b) > 1 for (_, conflict), b in spread.items() if not conflict):
        labels.append("identical copies in different batches")
    return labels


def _against_whole_dataset(final: TableSet, whole: TableSet) -> list[str]:
    """Marts and audit equal the oracle over the unsplit dataset; rejected rows modulo position."""
    tables = (C.DAILY_SALES, C.CUSTOMER_SUMMARY, C.PRODUCT_PERFORMANCE, C.INGESTION_AUDIT)
    div = Divergence(diffs={t: compare_tables(t, final.get(t, []), whole.get(t, [])) for t in tables})
    problems = [] if div.ok else [div.render().replace("pipeline and oracle",
                                                       "after the last batch, pipeline and the oracle over the whole dataset")]
    got = P._rejections_modulo_position(final.get(C.REJECTED_ROWS, []))
    want = P._rejections_modulo_position(whole.get(C.REJECTED_ROWS, []))
    if got != want:
        problems.append("rejected_rows modulo position differ from the oracle over the whole dataset:\n"
                        f"  pipeline only: {sorted((got - want).elements(), key=repr)}\n"
                        f"  oracle only: {sorted((want - got).elements(), key=repr)}")
    return problems


def _render_step(step: Step) -> str:
    return step.divergence.render().replace("pipeline and oracle", f"after batch {step.step}, pipeline and oracle")


def check_incremental(pipeline: StagedPipeline, dataset: Dataset, plan: ArrivalPlan, namespace: str | None = None,
                      *, repro_root: Path | str | None = None, write_repro: bool = True) -> list[Step]:
    """The incremental-marts property for ``dataset`` arriving as ``plan`` (see the module docstring).

    Returns the steps when everything held; raises DivergenceError otherwise.
    The namespace is prepared here and cleaned up at the end.
    """
    files = _files_of(dataset)
    namespace = namespace or fresh_namespace()
    futures: dict[int, Future[TableSet]] = {
        k: _POOL.submit(_oracle, plan.arrived(k)) for k in range(len(plan.batches))}
    whole: Future[TableSet] = _POOL.submit(_oracle, files)

    problems: list[str] = []
    divergence: Divergence | None = None
    pipeline.prepare(namespace)
    try:
        with _reported_build(pipeline):
            steps = run_arrivals(pipeline, namespace, plan, expected=lambda k: futures[k].result(),
                                 keep_going=True)
            for step in steps:
                if step.model_error:
                    problems.append(f"after batch {step.step}, the model stage failed: {step.model_error}")
                if not step.divergence.ok:
                    problems.append(_render_step(step))
                    divergence = divergence or step.divergence
                problems += [f"conservation after batch {step.step}: {p}" for p in P.check_conservation(step.tables)]
                if problems:
                    break
            final = steps[-1].tables
            if not problems and callable(getattr(pipeline, "full_refresh", None)):
                pipeline.full_refresh(namespace)
                refreshed = pipeline.read_tables(namespace)
                again = compare(final, refreshed)
                if not again.ok:
                    divergence = again
                    problems.append(again.render().replace(
                        "pipeline and oracle", f"{len(steps)} incremental run(s) and one full refresh")
                        .replace("| pipeline", "| incremental").replace("| oracle", "| full refresh"))
    finally:
        pipeline.cleanup(namespace)
    if not problems:
        problems += _against_whole_dataset(final, whole.result())
    if problems:
        datasets = {f"batch {k + 1}": batch for k, batch in enumerate(plan.batches)}
        text = f"arrival batches ({len(plan.batches)}):\n{plan.describe()}\n\n" + "\n".join(problems)
        raise P._fail(INCREMENTAL_PROPERTY, text, datasets, pipeline=pipeline, repro_root=repro_root,
                      divergence=divergence, write_repro=write_repro)
    return steps


def check_incremental_case(pipeline: StagedPipeline, case: tuple[Any, int, list[int]]) -> list[Step] | None:
    """The property for one :func:`incremental_cases` example, its labels given to ``hypothesis.event``.

    A dataset whose header the pipeline refuses (InputError while planning)
    is labelled ``refused file`` and skipped (None).
    """
    from hypothesis import event

    from pipeline_props.errors import InputError
    from pipeline_props.testing.arrivals import plan_arrivals

    dataset, k, deal = case
    try:
        plan = plan_arrivals(dataset.files, deal, k)
    except InputError:
        event("refused file")
        return None
    for label in arrival_events(plan):
        event(label)
    return check_incremental(pipeline, dataset, plan, fresh_namespace())
