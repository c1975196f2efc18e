"""Reusable property checks for any :class:`~pipeline_props.testing.protocol.PipelineUnderTest`.

Each check runs one or more datasets through the pipeline and the DuckDB
oracle and raises :class:`~pipeline_props.errors.DivergenceError` when a
property does not hold. The message shows the differing rows side by side per
table and the dataset's readable repr; on the example Hypothesis reports (its
final, shrunk one) or outside Hypothesis, the dataset is also written to
``artifacts/repros/<id>/`` with the command that replays it.

Properties (docs/properties.md):

* :func:`check_against_oracle`: every output table equals the oracle's and
  the audit's conservation holds;
* :func:`check_partition_sums`: daily_sales summed over regions and
  categories equals per-day totals computed over the whole dataset;
* :func:`check_same_marts`: two runs of differently arranged data (shuffled,
  split, more partitions) agree on what must be invariant;
* :func:`check_ingest_twice`: ingesting a file twice only adds duplicates
  and re-rejections.

Running a pipeline on a dataset is :mod:`pipeline_props.testing.runs`
(``run_pipeline``, ``fresh_namespace``); datasets and their rearrangements
(``split_dataset``, ``shuffle_dataset``) are :mod:`pipeline_props.testing.datasets`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline_props import contract as C
from pipeline_props.compare import Divergence, TableSet, compare, compare_tables
from pipeline_props.errors import DivergenceError, InputError
from pipeline_props.protocol import Files, PipelineUnderTest, pipeline_name
from pipeline_props.testing.datasets import Dataset, _files_of, _repr_of
from pipeline_props.testing.runs import _writes_repros, fresh_namespace, run_pipeline

__all__ = [
    "check_against_oracle",
    "check_conservation",
    "check_ingest_twice",
    "check_partition_sums",
    "check_same_marts",
    "daily_totals",
]

_AUDIT = C.OUTPUT_TABLES[C.INGESTION_AUDIT]
_MARTS = (C.DAILY_SALES, C.CUSTOMER_SUMMARY, C.PRODUCT_PERFORMANCE)


def _fail(
    property_name: str,
    problem: str,
    datasets: Mapping[str, Dataset],
    *,
    pipeline: PipelineUnderTest | None,
    repro_root: Path | str | None,
    divergence: Divergence | None = None,
    write_repro: bool = True,
) -> DivergenceError:
    """Build the DivergenceError (and write the repro when this is the reported example)."""
    from pipeline_props.testing import repros as repro

    shown = "\n\n".join(
        f"dataset {label}:\n{_repr_of(ds)}" if len(datasets) > 1 else f"dataset:\n{_repr_of(ds)}"
        for label, ds in datasets.items()
    )
    message = f"property {property_name!r} does not hold for pipeline " \
              f"{pipeline_name(pipeline)!r}:\n{problem}\n\n{shown}"
    folder: Path | None = None
    if write_repro and _writes_repros():
        folder = repro.write_repro(
            {label: _files_of(ds) for label, ds in datasets.items()},
            property_name=property_name,
            divergence_text=problem,
            dataset_repr=shown,
            pipeline=pipeline_name(pipeline),
            root=repro_root,
        )
        message += f"\n\nrepro written to {folder}\nreplay: {repro.replay_command(folder)}"
    error = DivergenceError(message)
    error.divergence = divergence  # type: ignore[attr-defined]
    error.repro_dir = folder  # type: ignore[attr-defined]
    return error


def check_conservation(tables: TableSet) -> list[str]:
    """Problems with ingestion_audit's arithmetic (empty when it holds).

    rows_read = accepted + duplicate + rejected; rows_rejected is the sum of
    the per-reason counts and the number of rejected_rows, per reason too;
    accepted events are the daily_sales line_count total.
    """
    audit_rows = tables.get(C.INGESTION_AUDIT, [])
    if len(audit_rows) != 1:
        return [f"ingestion_audit has {len(audit_rows)} rows, expected exactly 1"]
    a = dict(zip(_AUDIT, audit_rows[0]))
    problems = []
    if a["rows_read"] != a["rows_accepted"] + a["rows_duplicate"] + a["rows_rejected"]:
        problems.append(f"rows_read {a['rows_read']} != accepted {a['rows_accepted']} + duplicate "
                        f"{a['rows_duplicate']} + rejected {a['rows_rejected']}")
    per_reason = {r: a[f"rejected_{r.lower()}"] for r in C.REASONS}
    if sum(per_reason.values()) != a["rows_rejected"]:
        problems.append(f"per-reason counts {per_reason} do not add up to rows_rejected {a['rows_rejected']}")
    reason_at = C.OUTPUT_TABLES[C.REJECTED_ROWS].index("reason")
    listed = Counter(row[reason_at] for row in tables.get(C.REJECTED_ROWS, []))
    for reason, n in per_reason.items():
        if listed.get(reason, 0) != n:
            problems.append(f"audit says {n} {reason}, rejected_rows lists {listed.get(reason, 0)}")
    lines = sum(row[-1] for row in tables.get(C.DAILY_SALES, []))
    if lines != a["rows_accepted"]:
        problems.append(f"daily_sales line_count total {lines} != rows_accepted {a['rows_accepted']}")
    return problems


#: One thread for the oracle, so that it runs while the pipeline works.
_ORACLE_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pp-oracle")


def _oracle_tables(files: Files) -> TableSet | InputError:
    """The oracle's tables, or the InputError with which it refused the dataset."""
    from pipeline_props.oracles import run_oracle

    try:
        return run_oracle(files).tables
    except InputError as refused:
        return refused


def check_against_oracle(
    pipeline: PipelineUnderTest,
    dataset: Dataset,
    namespace: str | None = None,
    *,
    repro_root: Path | str | None = None,
    property_name: str = "equals the oracle",
    write_repro: bool = True,
) -> TableSet:
    """Property 1: every output table equals the oracle's, value by value; conservation holds.

    ``dataset`` is a :class:`~pipeline_props.strategies.SalesDataset` or a
    sequence of (name, bytes). A file the oracle refuses must be refused by
    the pipeline too (InputError from ``ingest``); then the empty TableSet is
    returned. Returns the pipeline's tables when everything held; raises
    DivergenceError otherwise (``.divergence`` and ``.repro_dir`` attached).
    ``write_repro=False`` writes no repro (``replay`` uses it).
    """
    files = _files_of(dataset)
    namespace = namespace or fresh_namespace()
    # The oracle runs beside the pipeline: the pipeline mostly waits on its
    # services, and DuckDB releases the GIL while it works.
    oracle = _ORACLE_POOL.submit(_oracle_tables, files)
    try:
        actual = run_pipeline(pipeline, namespace, files)
    except InputError:
        if isinstance(oracle.result(), InputError):
            _event("refused file")
            return {}
        raise
    expected = oracle.result()
    if isinstance(expected, InputError):
        raise _fail(property_name, f"the oracle refuses the dataset ({expected}), the pipeline "
                    "accepted it", {"": dataset}, pipeline=pipeline, repro_root=repro_root,
                    write_repro=write_repro) from None
    divergence = compare(actual, expected)
    problems = [] if divergence.ok else [divergence.render()]
    problems += [f"conservation: {p}" for p in check_conservation(actual)]
    if problems:
        raise _fail(property_name, "\n".join(problems), {"": dataset}, pipeline=pipeline,
                    repro_root=repro_root, divergence=None if divergence.ok else divergence,
                    write_repro=write_repro)
    _audit_events(actual)
    return actual


def daily_totals(files: Files) -> dict[date, tuple[Decimal, Decimal, int, int, int]]:
    """Per sale_date over the whole dataset: (gross, returns, units sold, units returned, lines).

    Computed by one query grouped by sale_date alone over the oracle's
    accepted events, not from its daily_sales (the TLP-style partition check
    compares the two groupings).
    """
    from pipeline_props.oracles import accepted_daily_totals

    rows = accepted_daily_totals(files)
    return {r[0]: (Decimal(r[1]), Decimal(r[2]), int(r[3]), int(r[4]), int(r[5])) for r in rows}


def check_partition_sums(
    tables: TableSet, dataset: Dataset, *, pipeline: PipelineUnderTest | None = None,
    repro_root: Path | str | None = None,
) -> None:
    """Property 5: ``tables``' daily_sales summed over regions equals :func:`daily_totals`.

    Also: net = gross - returns per day, and the net total is the same over
    daily_sales, customer_summary and product_performance (three partitions
    of one sum).
    """
    files = _files_of(dataset)
    cols = C.OUTPUT_TABLES[C.DAILY_SALES]
    got: dict[date, list[Any]] = {}
    for row in tables.get(C.DAILY_SALES, []):
        r = dict(zip(cols, row))
        if r["net_revenue_usd"] != r["gross_revenue_usd"] - r["returns_usd"]:
            got.setdefault(r["sale_date"], [Decimal("NaN")] * 5)  # forces a reported difference
        acc = got.setdefault(r["sale_date"], [Decimal("0.00"), Decimal("0.00"), 0, 0, 0])
        for i, name in enumerate(("gross_revenue_usd", "returns_usd", "units_sold", "units_returned",
                                  "line_count")):
            acc[i] += r[name]
    want = daily_totals(files)
    problems = []
    names = "gross, returns, units sold, units returned, lines"
    for day in sorted(set(got) | set(want)):
        g = tuple(got.get(day, ())) or None
        w = want.get(day)
        if g != w:
            problems.append(f"  {day}: summed over regions ({names}) = {g}, whole dataset = {w}")
    net_at = {t: C.OUTPUT_TABLES[t].index("net_revenue_usd") for t in _MARTS}
    nets = {t: sum((row[net_at[t]] for row in tables.get(t, [])), Decimal("0.00")) for t in _MARTS}
    if len(set(nets.values())) > 1:
        problems.append(f"  net revenue totals differ between tables: {nets}")
    if problems:
        raise _fail("partition sums", "daily totals differ:\n" + "\n".join(problems), {"": dataset},
                    pipeline=pipeline, repro_root=repro_root)


def _rejections_modulo_position(rows: list[tuple]) -> Counter[tuple]:
    cols = C.OUTPUT_TABLES[C.REJECTED_ROWS]
    keep = [cols.index(c) for c in ("event_id", "reason", "raw_record")]
    return Counter(tuple(row[i] for i in keep) for row in rows)


def check_same_marts(
    first: TableSet,
    second: TableSet,
    datasets: Mapping[str, Dataset],
    *,
    property_name: str,
    positions_invariant: bool,
    pipeline: PipelineUnderTest | None = None,
    repro_root: Path | str | None = None,
) -> None:
    """Properties 2 and 3: two arrangements of one dataset give the same invariant tables.

    The marts and ingestion_audit must be equal; rejected_rows too when
    ``positions_invariant`` (shuffling keeps each record's file and number
    only if the caller kept them, so it says), else rejected_rows is compared
    modulo position: as a multiset of (event_id, reason, raw_record).
    """
    tables = (*_MARTS, C.INGESTION_AUDIT) + ((C.REJECTED_ROWS,) if positions_invariant else ())
    divergence = Divergence(diffs={t: compare_tables(t, second.get(t, []), first.get(t, [])) for t in tables})
    problems = [] if divergence.ok else [divergence.render().replace("pipeline and oracle",
                                                                      "the two runs")]
    if not positions_invariant:
        a = _rejections_modulo_position(first.get(C.REJECTED_ROWS, []))
        b = _rejections_modulo_position(second.get(C.REJECTED_ROWS, []))
        if a != b:
            problems.append("rejected_rows modulo position differ:\n"
                            f"  only in {list(datasets)[0]}: {sorted((a - b).elements(), key=repr)}\n"
                            f"  only in {list(datasets)[-1]}: {sorted((b - a).elements(), key=repr)}")
    if problems:
        labels = list(datasets)
        raise _fail(property_name, f"({labels[-1]} shown as 'pipeline', {labels[0]} as 'oracle')\n"
                    + "\n".join(problems), datasets, pipeline=pipeline, repro_root=repro_root,
                    divergence=divergence)


def check_ingest_twice(
    once: TableSet,
    twice: TableSet,
    dataset: Dataset,
    *,
    pipeline: PipelineUnderTest | None = None,
    repro_root: Path | str | None = None,
) -> None:
    """Property 4: the same files ingested twice only add duplicates and re-rejections.

    Against the tables of one ingestion: the marts are equal; rows_read
    doubles, rows_accepted stays, every extra accepted copy is a duplicate,
    every rejected row appears twice.
    """
    problems: list[str] = []
    divergence = Divergence(diffs={t: compare_tables(t, twice.get(t, []), once.get(t, [])) for t in _MARTS})
    if not divergence.ok:
        problems.append(divergence.render().replace("pipeline and oracle", "twice and once"))
    if len(once.get(C.INGESTION_AUDIT, [])) == 1 and len(twice.get(C.INGESTION_AUDIT, [])) == 1:
        a1 = dict(zip(_AUDIT, once[C.INGESTION_AUDIT][0]))
        a2 = dict(zip(_AUDIT, twice[C.INGESTION_AUDIT][0]))
        expected = {k: 2 * v for k, v in a1.items()}
        expected["rows_accepted"] = a1["rows_accepted"]
        expected["rows_duplicate"] = 2 * a1["rows_duplicate"] + a1["rows_accepted"]
        for key, want in expected.items():
            if a2[key] != want:
                problems.append(f"ingestion_audit.{key}: twice = {a2[key]}, expected {want} "
                                f"(once = {a1[key]})")
    else:
        problems.append("ingestion_audit does not have exactly one row")
    r1 = _rejections_modulo_position(once.get(C.REJECTED_ROWS, []))
    r2 = _rejections_modulo_position(twice.get(C.REJECTED_ROWS, []))
    if r2 != r1 + r1:
        problems.append(f"rejected_rows: twice = {sorted(r2.elements(), key=repr)}, "
                        f"expected every rejection of once twice: {sorted(r1.elements(), key=repr)}")
    if problems:
        raise _fail("idempotence", "\n".join(problems), {"once": dataset}, pipeline=pipeline,
                    repro_root=repro_root, divergence=divergence)


def _event(label: str) -> None:
    try:
        from hypothesis import event

        event(label)
    except Exception:  # outside a Hypothesis test
        pass


def _audit_events(tables: TableSet) -> None:
    rows = tables.get(C.INGESTION_AUDIT) or []
    if not rows:
        return
    a = dict(zip(_AUDIT, rows[0]))
    _event(f"rows read: {_bucket(a['rows_read'])}")
    for reason in C.REASONS:
        if a[f"rejected_{reason.lower()}"]:
            _event(f"rejected {reason}")
    if a["rows_duplicate"]:
        _event("duplicates accepted once")


def _bucket(n: int) -> str:
    if n == 0:
        return "0"
    if n < 10:
        return "1-9"
    if n < 100:
        return "10-99"
    return "100+"
