"""Bugs that only the full path shows, caught and shrunk through the real ReferencePipeline.

Unlike test_mutants.py (cheap stand-in paths, a run budget and a rows-only
shrink), each search here is a plain Hypothesis search of the main property
(``check_against_oracle`` over the main property's own strategy) against the
real ReferencePipeline on the session's shared stream: Kafka, the long-lived
Spark query, the Postgres sink, the compiled dbt project. Nothing stops the
shrinker early, and the example it reports runs the real ``dbt build``.

For each bug the outcome (seconds to catch, seconds to shrink, rows and the
repro) goes to artifacts/mutations/report.json and the suite's summary table;
docs/properties.md has the figures. Times are reported, never asserted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from mutants import dbt_variant
from pipeline_props.errors import DivergenceError
from pipeline_props.pipeline import model, staging
from pipeline_props.pipeline.compiled import CompiledProject
from pipeline_props.pipeline.reference import ReferencePipeline, postgres_target
from pipeline_props.pipeline.stream import SharedStream
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.xdist import per_worker

pytestmark = [pytest.mark.mutations, pytest.mark.integration]

SCHEMA = per_worker("pp_fullpath_mutants")
#: The main full-path property's strategy (tests/properties/test_pipeline_properties.py).
DIRTY = sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)
EXAMPLES = {"dev": 60, "ci": 200, "thorough": 1000}


def _sink_swaps_order_and_customer(mp: pytest.MonkeyPatch) -> None:
    """The sink's COPY column list is out of step with its data: order_id and customer_id swapped."""
    original = staging.split_rows

    def split_rows(table: pa.Table) -> tuple[pa.Table, pa.Table]:
        valid, rejects = original(table)
        names = ["customer_id" if n == "order_id" else "order_id" if n == "customer_id" else n
                 for n in valid.column_names]
        return valid.rename_columns(names), rejects

    mp.setattr(staging, "split_rows", split_rows)


@dataclass(frozen=True)
class FullPathBug:
    name: str
    description: str
    where: str
    patch: Callable[[pytest.MonkeyPatch], None] | None = None
    dbt_edits: tuple[tuple[str, str, str], ...] = ()


BUGS = (
    FullPathBug("sink_columns_swapped", "the staging sink loads order_id into customer_id and back "
                "(COPY column list out of step with the data)", "staging sink",
                patch=_sink_swaps_order_and_customer),
    FullPathBug("return_rate_inverted", "product_performance divides units sold by units returned",
                "dbt product_performance.sql",
                dbt_edits=(("models/marts/product_performance.sql",
                            "ratio_4('units_returned', 'units_sold')", "ratio_4('units_sold', 'units_returned')"),)),
)


@pytest.fixture(scope="module")
def base_target(infrastructure: Any) -> model.WarehouseTarget:
    return postgres_target(infrastructure, SCHEMA)


@pytest.fixture
def cleanup_schema(infrastructure: Any, shared_stream: SharedStream) -> Iterator[None]:
    yield
    shared_stream.pause()
    infrastructure.drop_schema(SCHEMA)


@pytest.mark.parametrize("bug", [pytest.param(b, id=b.name,
                                              # one bug per path in ci: the dbt one runs in thorough
                                              marks=[pytest.mark.slow] if b.name == "return_rate_inverted" else [])
                                 for b in BUGS])
def test_full_path_bug_is_caught_and_shrunk(bug: FullPathBug, infrastructure: Any, shared_stream: SharedStream,
                                            base_target: model.WarehouseTarget, mutation_env: Any,
                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                            cleanup_schema: None) -> None:
    if bug.dbt_edits:
        project = dbt_variant(model.dbt_project_dir(), tmp_path / "project", bug.dbt_edits)
        monkeypatch.setenv(model.DBT_DIR_ENV, str(project))
    compiled = CompiledProject.compile(base_target)
    if bug.patch is not None:
        bug.patch(monkeypatch)
    pipeline = ReferencePipeline(infrastructure, partitions=2, schema=SCHEMA, stream=shared_stream,
                                 model_mode="compiled", compiled=compiled)
    outcome = search(pipeline, EXAMPLES[current_profile()])
    mutation_env.record({"mutant": bug.name, "description": bug.description, "where": bug.where,
                         "path": "full", "profile": current_profile(), **outcome})
    assert outcome["caught"], f"{bug.name} survived {outcome['pipeline_runs']} full-path examples"
    assert outcome["shrunk_rows"] == 1, f"{bug.name}: shrunk to {outcome['shrunk_rows']} rows:\n{outcome['repro']}"


def search(pipeline: ReferencePipeline, max_examples: int) -> dict[str, Any]:
    """Hypothesis' search and shrink of the main property; when it caught, shrank, and to what."""
    stamps: dict[str, float] = {}
    failing: list[SalesDataset] = []
    runs = [0]

    @settings(max_examples=max_examples, database=None, derandomize=True, deadline=None,
              phases=(Phase.generate, Phase.shrink), report_multiple_bugs=False,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(DIRTY)
    def every_table_equals_the_oracle(dataset: SalesDataset) -> None:
        from pipeline_props.testing.properties import check_against_oracle

        runs[0] += 1
        try:
            check_against_oracle(pipeline, dataset, write_repro=False)
        except DivergenceError:
            stamps.setdefault("caught", time.perf_counter())
            failing.append(dataset)
            stamps["last failure"] = time.perf_counter()
            raise

    started = time.perf_counter()
    caught = False
    try:
        every_table_equals_the_oracle()
    except DivergenceError as exc:
        caught = True
        problem = str(exc)
    ended = time.perf_counter()
    shrunk = failing[-1] if caught else None  # Hypothesis replays the smallest failure last
    return {
        "caught": caught,
        "seconds_to_catch": round(stamps["caught"] - started, 1) if caught else None,
        "seconds_to_shrink": round(ended - stamps["caught"], 1) if caught else None,
        "seconds_total": round(ended - started, 1),
        "pipeline_runs": runs[0],
        "shrunk_rows": shrunk.row_count if shrunk is not None else None,
        "repro": repr(shrunk) if shrunk is not None else None,
        "divergence": problem[:2000] if caught else None,
    }
