"""Two incremental-model bugs, caught by the incremental-marts property and shrunk to the rows and the split.

Each is a patched copy of the dbt project (selected with PIPELINE_PROPS_DBT_DIR)
run through the real path: the reference pipeline with incremental marts on
the session's shared stream (Kafka, the long-lived Spark query, the Postgres
sink), the incremental project compiled by dbt. The search is a plain
Hypothesis search and shrink of the property's own strategies
(tests/properties/test_incremental_properties.py); the outcome goes to
artifacts/mutations/report.json and the suite's summary table, as in
test_full_path.py.

* ``accepted_events_append_only``: int_accepted_events appends what it
  recomputes (incremental_strategy append, no unique key): an event accepted
  in one batch is not taken back when a conflicting version arrives later, and
  an identical copy arriving later adds the event again.
* ``rejected_rows_null_key``: rejected_rows' unique key includes event_id,
  which is NULL for a row without a readable event id; ``(key) IN (...)``
  never matches NULL, so such a row emitted again is inserted again
  (dbt-core #7873).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from mutants import dbt_variant

from pipeline_props.errors import DivergenceError, InputError
from pipeline_props.pipeline import model
from pipeline_props.pipeline.compiled_incremental import IncrementalProject
from pipeline_props.pipeline.incremental import IncrementalPipeline
from pipeline_props.pipeline.reference import postgres_target
from pipeline_props.pipeline.stream import SharedStream
from pipeline_props.strategies import SalesDataset
from pipeline_props.testing.arrivals import ArrivalPlan, plan_arrivals
from pipeline_props.testing.incremental import check_incremental, incremental_cases
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.mutations, pytest.mark.integration]

SCHEMA = per_worker("pp_incremental_mutants")
#: The property's cases (tests/properties/test_incremental_properties.py), datasets of up to 6 rows.
CASES = incremental_cases(max_rows=6)  # fewer rows: a shorter shrink
EXAMPLES = {"dev": 40, "ci": 100, "thorough": 400}
#: Whether the search shrinks, per profile: in ci it only has to catch the bug (the
#: shrink to 2 rows in 2 batches took 70-170 s, past the ci budget); dev and thorough shrink.
SHRINKS = {"dev": True, "ci": False, "thorough": True}

_APPEND_CONFIG = "{{ pipeline_props.incremental_config('event_id', tombstones=true) }}"
_APPEND_MUTANT = ("{% if pipeline_props.incremental_mode() %}{{ config(materialized='incremental', "
                  "incremental_strategy='append', unlogged=false, "
                  "post_hook=['delete from {{ this }} where pp_tombstone']) }}{% endif %}")


@dataclass(frozen=True)
class IncrementalBug:
    name: str
    description: str
    edits: tuple[tuple[str, str, str], ...]


BUGS = (
    IncrementalBug("accepted_events_append_only",
                   "int_accepted_events only appends (no unique key): a conflicting or identical version "
                   "arriving later does not replace the accepted one",
                   (("models/intermediate/int_accepted_events.sql", _APPEND_CONFIG, _APPEND_MUTANT),)),
    IncrementalBug("rejected_rows_null_key",
                   "rejected_rows' unique key includes the nullable event_id (dbt-core #7873)",
                   (("models/marts/rejected_rows.sql", "incremental_config(['file_index', 'record_number'])",
                     "incremental_config(['event_id', 'file_index', 'record_number'])"),)),
)


@pytest.fixture
def cleanup_schema(infrastructure: Any) -> Iterator[None]:
    yield
    infrastructure.drop_schema(SCHEMA)


@pytest.mark.parametrize("bug", [pytest.param(b, id=b.name) for b in BUGS])
def test_incremental_bug_is_caught_and_shrunk(bug: IncrementalBug, infrastructure: Any,
                                              shared_stream: SharedStream, mutation_env: Any,
                                              monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                              cleanup_schema: None) -> None:
    project = dbt_variant(model.dbt_project_dir(), tmp_path / "project", bug.edits)
    monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
    compiled = IncrementalProject.compile(postgres_target(infrastructure, SCHEMA), infrastructure.postgres_dsn)
    pipeline = IncrementalPipeline(infrastructure, partitions=2, schema=SCHEMA, stream=shared_stream,
                                   model_mode="compiled", compiled=compiled)
    shrinks = SHRINKS[current_profile()]
    outcome = search(pipeline, EXAMPLES[current_profile()], shrink=shrinks)
    mutation_env.record({"mutant": bug.name, "description": bug.description, "where": "dbt incremental",
                         "path": "full", "profile": current_profile(), **outcome})
    assert outcome["caught"], f"{bug.name} survived {outcome['pipeline_runs']} examples"
    if not shrinks:
        return
    assert outcome["shrunk_rows"] == 2 and outcome["shrunk_batches"] == 2, (
        f"{bug.name}: shrunk to {outcome['shrunk_rows']} rows in {outcome['shrunk_batches']} batches:\n"
        f"{outcome['repro']}\n{outcome['divergence']}")


def search(pipeline: IncrementalPipeline, max_examples: int, *, shrink: bool = True) -> dict[str, Any]:
    """Hypothesis' search and shrink of the incremental property; when it caught, shrank, and to what."""
    stamps: dict[str, float] = {}
    failing: list[tuple[SalesDataset, ArrivalPlan]] = []
    runs = [0]

    @settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
              phases=(Phase.generate, Phase.shrink) if shrink else (Phase.generate,),
              report_multiple_bugs=False, suppress_health_check=list(HealthCheck), print_blob=False)
    @given(case=CASES)
    def incremental_marts(case: tuple[SalesDataset, int, list[int]]) -> None:
        dataset, k, deal = case
        try:
            plan = plan_arrivals(dataset.files, deal, k)
        except InputError:
            return
        runs[0] += 1
        try:
            check_incremental(pipeline, dataset, plan, write_repro=False)
        except DivergenceError:
            stamps.setdefault("caught", time.perf_counter())
            failing.append((dataset, plan))
            raise

    started = time.perf_counter()
    caught, problem = False, ""
    try:
        incremental_marts()
    except DivergenceError as exc:
        caught, problem = True, str(exc)
    ended = time.perf_counter()
    shrunk = failing[-1] if caught else None  # Hypothesis replays the smallest failure last
    return {
        "caught": caught,
        "seconds_to_catch": round(stamps["caught"] - started, 1) if caught else None,
        "seconds_to_shrink": round(ended - stamps["caught"], 1) if caught else None,
        "seconds_total": round(ended - started, 1),
        "pipeline_runs": runs[0],
        "shrunk_rows": shrunk[0].row_count if shrunk else None,
        "shrunk_batches": sum(1 for b in shrunk[1].batches if b) if shrunk else None,
        "repro": f"{shrunk[0]!r}\n{shrunk[1].describe()}" if shrunk else None,
        "divergence": problem[:3000] if caught else None,
    }
