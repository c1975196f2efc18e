"""The team's conftest: its pipeline as a fixture, on the services of the pipeline-props plugin."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from csv_lines import CsvLinesPipeline


@pytest.fixture(scope="session")
def csv_lines_pipeline(kafka_bootstrap: str, postgres_dsn: str) -> Iterator[CsvLinesPipeline]:
    """The pipeline with its own topic, schema and dbt views, for the whole session."""
    pipeline = CsvLinesPipeline(kafka_bootstrap, postgres_dsn, schema=f"csvl_{uuid.uuid4().hex[:8]}").setup()
    yield pipeline
    pipeline.teardown()
