"""Which pipeline ``--dbt-mode incremental`` builds per warehouse, and which one a repro replays through."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from pipeline_props import contract as C
from pipeline_props.errors import UsageError
from pipeline_props.pipeline import factory
from pipeline_props.repro import (
    INCREMENTAL_PROPERTY,
    read_repro,
    recorded_warehouse,
    write_repro,
)

pytestmark = pytest.mark.unit

FILES = [("a.csv", (",".join(C.COLUMNS) + "\n").encode())]


@pytest.mark.parametrize("warehouse", factory.WAREHOUSES)
def test_every_warehouse_has_an_incremental_pipeline_whose_repros_replay_there(tmp_path: Path,
                                                                              warehouse: str) -> None:
    module, name = factory._INCREMENTAL[warehouse]
    cls = getattr(importlib.import_module(module), name)
    assert callable(getattr(cls, "full_refresh", None)) and callable(getattr(cls, "model", None))
    folder = write_repro({"batch 1": FILES}, property_name=INCREMENTAL_PROPERTY, divergence_text="x",
                         dataset_repr="x", pipeline=cls.name, root=tmp_path)
    # postgres: None, the settings' warehouse (postgres by default)
    assert recorded_warehouse(read_repro(folder)) == (None if warehouse == "postgres" else warehouse)


def test_an_unknown_warehouse_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown warehouse 'oracle'"):
        factory.make_incremental_pipeline(None, "oracle")


@pytest.mark.parametrize(("pipeline", "warehouse"), [
    ("reference (incremental marts)", None),
    ("reference", None),
    ("duckdb-warehouse", "duckdb"),
    ("duckdb-warehouse (incremental marts)", "duckdb"),
    ("snowflake-warehouse (incremental marts)", "snowflake"),
])
def test_a_repro_names_the_warehouse_it_was_recorded_on(tmp_path: Path, pipeline: str, warehouse: str | None) -> None:
    folder = write_repro({"batch 1": FILES}, property_name=INCREMENTAL_PROPERTY, divergence_text="x",
                         dataset_repr="x", pipeline=pipeline, root=tmp_path)
    assert recorded_warehouse(read_repro(folder)) == warehouse
