"""The mutation suite: every deliberate pipeline bug is caught by the differential property and shrunk.

For each mutant in mutants.MUTANTS: switch it on, run the property
"pipeline tables == oracle tables" over its datasets with Hypothesis, and
assert a counterexample is found and shrunk to at most 3 rows (when the bug
needs no more). Each outcome goes to artifacts/mutations/report.json and to
the summary table at the end of the run. docs/mutations.md explains the paths.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, reject, settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine as hypothesis_engine

from mutants import MUTANTS, MiniPipeline, Mutant
from pipeline_props.compare import compare
from pipeline_props.errors import InputError, PipelineStageError
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline import model
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.mutations, pytest.mark.integration]

#: Pipeline runs one mutant's search may make (generation and shrinking), per profile.
#: A count, not a time, so the outcome does not depend on the machine's load.
MAX_RUNS = {"dev": 60, "ci": 80, "thorough": 500}
#: Safety net on Hypothesis' own shrinking time, per profile.
SHRINK_SECONDS = {"dev": 120, "ci": 300, "thorough": 600}
#: Profiles that stop shrinking once the counterexample has as few rows as the bug needs
#: (its values are then left as they are); thorough shrinks the values too.
STOP_AT_NEEDED_ROWS = {"dev": True, "ci": True, "thorough": False}
MAX_ROWS_AFTER_SHRINK = 3


def differential(pipeline: MiniPipeline, files: tuple[tuple[str, bytes], ...]) -> str | None:
    """None when the pipeline's tables equal the oracle's, else what differs."""
    try:
        expected = run_oracle(files).tables
    except InputError:
        expected = None
    try:
        actual = pipeline.run(files)
    except InputError:
        actual = None
    except PipelineStageError as exc:
        return f"pipeline failed: {exc}"
    if expected is None or actual is None:
        return None if expected is actual else "a file refused by one side only"
    divergence = compare(actual, expected)
    return None if divergence.ok else divergence.render(max_rows=6)


@contextmanager
def shrink_budget(seconds: float) -> Iterator[None]:
    # Hypothesis stops shrinking after MAX_SHRINKING_SECONDS and reports the
    # smallest failure so far; a pipeline run costs seconds, so cap it per mutant.
    old = getattr(hypothesis_engine, "MAX_SHRINKING_SECONDS", None)
    if old is None:
        yield
        return
    hypothesis_engine.MAX_SHRINKING_SECONDS = seconds  # type: ignore[misc]
    try:
        yield
    finally:
        hypothesis_engine.MAX_SHRINKING_SECONDS = old  # type: ignore[misc]


def hunt(strategy: st.SearchStrategy[SalesDataset], pipeline: MiniPipeline, *, max_examples: int,
         shrink_seconds: float, max_runs: int, stop_at_rows: int | None = None) -> dict[str, Any]:
    """Run the differential property; return whether it failed, when, and the shrunk dataset.

    After ``max_runs`` pipeline runs, or with ``stop_at_rows`` once a
    counterexample of at most that many rows is found, every new candidate is
    rejected unrun, so Hypothesis ends with the smallest failure so far. With
    ``stop_at_rows`` the shrink is for rows only: once something failed, only
    candidates with fewer rows than the smallest failure are run.
    """
    cache: dict[tuple[tuple[str, bytes], ...], str | None] = {}
    failing: list[tuple[SalesDataset, str]] = []
    stamps: dict[str, float] = {}
    fewest_rows = [1 << 30]  # rows of the smallest failing dataset so far
    started = time.perf_counter()

    @settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
              phases=(Phase.explicit, Phase.generate, Phase.shrink), report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(strategy)
    def pipeline_equals_oracle(dataset: SalesDataset) -> None:
        if dataset.files not in cache:  # shrinking revisits datasets; the pipeline is deterministic
            if "small enough" in stamps or len(cache) >= max_runs:
                reject()
            if stop_at_rows is not None and failing and dataset.row_count >= fewest_rows[0]:
                # Shrinking for rows only: a candidate that keeps as many rows as the
                # smallest failure is not worth a pipeline run. Without this the
                # shrinker spent its runs simplifying values and left 7-8 rows.
                reject()
            cache[dataset.files] = differential(pipeline, dataset.files)
        problem = cache[dataset.files]
        if problem is not None:
            stamps.setdefault("caught", time.perf_counter())
            fewest_rows[0] = min(fewest_rows[0], dataset.row_count)
            failing.append((dataset, problem))
            if stop_at_rows is not None and dataset.row_count <= stop_at_rows:
                stamps.setdefault("small enough", time.perf_counter())
        assert problem is None, problem

    caught = False
    with shrink_budget(shrink_seconds):
        try:
            pipeline_equals_oracle()
        except AssertionError:
            caught = True
    # After shrinking, Hypothesis replays the smallest failure last.
    shrunk, problem = failing[-1] if caught and failing else (None, None)
    return {
        "caught": caught,
        "seconds_to_catch": round(stamps["caught"] - started, 1) if "caught" in stamps else None,
        "seconds_total": round(time.perf_counter() - started, 1),
        "pipeline_runs": len(cache),
        "shrunk_rows": shrunk.row_count if shrunk is not None else None,
        "repro": repr(shrunk) if shrunk is not None else None,
        "divergence": problem,
    }


def _params() -> list[Any]:
    return [pytest.param(m, id=m.name) for m in MUTANTS]


@pytest.mark.parametrize("mutant", _params())
def test_mutant_is_caught(mutant: Mutant, mutation_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    profile = current_profile()
    setup = time.perf_counter()
    compiled = (mutation_env.compile(mutant.dbt_edits, monkeypatch) if mutant.dbt_edits
                else mutation_env.baseline)
    if mutant.patch is not None:
        mutant.patch(monkeypatch)
    pipeline = MiniPipeline(mutation_env.infra, compiled, **mutant.pipeline_kwargs)
    setup_seconds = time.perf_counter() - setup
    outcome = hunt(mutant.strategy, pipeline, max_examples=mutant.examples[profile],
                   shrink_seconds=SHRINK_SECONDS[profile],
                   max_runs=mutant.max_runs.get(profile, MAX_RUNS[profile]),
                   stop_at_rows=(mutant.needs_rows if STOP_AT_NEEDED_ROWS[profile] and not mutant.plain_shrink
                                 else None))
    entry = {"mutant": mutant.name, "description": mutant.description, "where": mutant.where,
             "path": mutant.path, "profile": profile, "setup_seconds": round(setup_seconds, 1),
             **outcome}
    mutation_env.record(entry)
    assert outcome["caught"], f"mutant {mutant.name} survived {mutant.examples[profile]} examples"
    if mutant.needs_rows <= MAX_ROWS_AFTER_SHRINK:
        assert outcome["shrunk_rows"] <= (mutant.max_shrunk_rows or MAX_ROWS_AFTER_SHRINK), (
            f"mutant {mutant.name}: counterexample shrunk to {outcome['shrunk_rows']} rows only:\n"
            f"{outcome['repro']}")


def test_sanity_no_mutant(mutation_env: Any) -> None:
    """Without a mutant the same path equals the oracle, and compiled dbt equals dbt build."""
    pipeline = MiniPipeline(mutation_env.infra, mutation_env.baseline)
    strategy = sales_datasets(min_rows=6, max_rows=10, files=(1, 2), error_rate=0.3,
                              duplicate_rate=0.3)
    outcome = hunt(strategy, pipeline, max_examples=2, shrink_seconds=0, max_runs=2)
    assert not outcome["caught"], outcome["divergence"]

    dataset = SalesDataset(files=(("s.csv", _SANITY_CSV),))
    schema = per_worker("pp_mutsanity")
    try:
        pipeline.stage(dataset.files, schema)
        assert not mutation_env.baseline.run(pipeline.dsn, schema).failures
        compiled = _export(pipeline, schema)
        result = model.run_dbt(pipeline.target(schema))
        assert result.success, result.failures
        built = _export(pipeline, schema)
    finally:
        from pipeline_props.pipeline import staging

        staging.drop_schema(pipeline.dsn, schema)
    expected = run_oracle(dataset.files).tables
    assert compare(compiled, built).ok, compare(compiled, built).render()
    assert compare(built, expected).ok, compare(built, expected).render()


def _export(pipeline: MiniPipeline, schema: str) -> dict[str, list[tuple]]:
    from pipeline_props.pipeline import export

    return export.export_postgres(pipeline.dsn, schema)


_SANITY_CSV = (
    b"note,event_id,order_id,customer_id,product_id,category,region,channel,quantity,unit_price,"
    b"discount,currency,event_time\n"
    b"x,e1,o1,c1,p1,toys,na,Online,3,19.99,0.125,eur,2024-03-01T23:30:00-02:00\n"
    b"y,e2,o1,c1,p1,toys,NA,online,-1,19.99,,EUR,2024-03-02T01:00:00+00:00\n"
    b"z,e3,o2,c2,p2,Toys,EMEA,store,100000,999999.99,0.001,GBP,2024-03-02 12:00:00.5Z\n"
    b"w,e1,o1,c1,p1,toys,NA,online,+3,19.990,0.125,EUR,2024-03-02T01:30:00Z\n"
    b"v,e4,o3,c3,p3,toys,NA,online,1,1.00,,USD,2024-03-02T01:30:00Z\n"
    b"u,e4,o3,c3,p3,toys,NA,online,2,1.00,,USD,2024-03-02T01:30:00Z\n"
    b"t,e5,o3,c3,p3,toys,NA,online,1234567890,1.00,,USD,2024-03-02T01:30:00Z\n"
    b"s,e6,o3,c3,p3,toys,NA,web,1,1.00,,USD,2024-03-02T01:30:00Z\n"
)
