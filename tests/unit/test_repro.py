"""Repro folders, replay, and the property checks on an in-memory pipeline (no services)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from pipeline_props import contract as C
from pipeline_props.cli import main
from pipeline_props.errors import DivergenceError, InputError
from pipeline_props.oracles import run_oracle
from pipeline_props.repro import example_snippet, read_repro, replay, write_repro
from pipeline_props.strategies import SalesDataset, sales_datasets
from pipeline_props.testing.datasets import record_slices, shuffle_dataset, split_dataset
from pipeline_props.testing.properties import check_against_oracle, check_partition_sums
from pipeline_props.testing.profiles import examples_for
from pipeline_props.testing.protocol import PipelineUnderTest

pytestmark = pytest.mark.unit

HEADER = ",".join(C.COLUMNS).encode()
ROW = b"e1,o1,c1,p1,toys,NA,online,1,1.05,,USD,2024-01-01T00:00:00Z"


class OraclePipeline:
    """A PipelineUnderTest whose 'warehouse' is the oracle, with an optional bug."""

    name = "in-memory"

    def __init__(self, drop_last_reject: bool = False) -> None:
        self.files: dict[str, list[tuple[str, bytes]]] = {}
        self.drop_last_reject = drop_last_reject

    def prepare(self, namespace: str) -> None:
        self.files[namespace] = []

    def ingest(self, namespace: str, files: Any) -> None:
        run_oracle(files)  # refuses like the real ingest: InputError before anything is kept
        self.files[namespace] = list(files)

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> None:
        return None

    def read_tables(self, namespace: str) -> dict[str, list[tuple]]:
        tables = run_oracle(self.files[namespace]).tables
        if self.drop_last_reject and tables[C.REJECTED_ROWS]:
            tables[C.REJECTED_ROWS] = tables[C.REJECTED_ROWS][:-1]
        return tables

    def cleanup(self, namespace: str) -> None:
        self.files.pop(namespace, None)


def test_the_in_memory_pipeline_implements_the_protocol() -> None:
    assert isinstance(OraclePipeline(), PipelineUnderTest)


def test_write_and_read_back_a_repro(tmp_path: Path) -> None:
    files = (("a.csv", HEADER + b"\n" + ROW + b"\n"), ("a.csv", HEADER + b"\r\n\xff,bad\r\n"))
    folder = write_repro({"": files}, property_name="equals the oracle", divergence_text="diff",
                         dataset_repr=repr(SalesDataset(files=files)), root=tmp_path)
    assert folder.name.startswith("equals-the-oracle-")
    again = write_repro({"": files}, property_name="equals the oracle", divergence_text="diff",
                        dataset_repr="x", root=tmp_path)
    assert again == folder  # one failure, one folder
    repro = read_repro(folder)
    assert repro.datasets == {"": files}
    assert repro.property_name == "equals the oracle" and repro.divergence_text == "diff"
    for name in ("README.md", "divergence.txt", "dataset.repr.txt", "repro.json"):
        assert (folder / name).is_file()
    readme = (folder / "README.md").read_text()
    assert f"pipeline-props replay {folder}" in readme and "@example(dataset=SalesDataset(" in readme


def test_the_example_snippet_rebuilds_the_dataset() -> None:
    files = (("s.csv", HEADER + b"\n" + ROW + b'\n"\xe9\n'),)
    namespace: dict[str, Any] = {}
    snippet = example_snippet(files).replace("@example(dataset=", "value = (")
    exec(snippet, namespace)  # noqa: S102 - our own generated text
    assert namespace["value"] == SalesDataset(files=files)


def test_a_changed_repro_file_is_refused(tmp_path: Path) -> None:
    folder = write_repro({"": (("a.csv", HEADER + b"\n"),)}, property_name="p", divergence_text="",
                         dataset_repr="", root=tmp_path)
    (folder / "dataset" / "00" / "a.csv").write_bytes(b"other")
    with pytest.raises(InputError, match="sha256"):
        read_repro(folder)


def test_replay_exits_0_when_they_agree_and_1_when_they_differ(tmp_path: Path) -> None:
    files = (("a.csv", HEADER + b"\n" + ROW + b"\nx,1\n"),)
    folder = write_repro({"": files}, property_name="p", divergence_text="", dataset_repr="",
                         root=tmp_path)
    out: list[str] = []
    assert replay(folder, settings=None, pipeline=OraclePipeline(), echo=out.append) == 0
    assert replay(folder, settings=None, pipeline=OraclePipeline(drop_last_reject=True),
                  echo=out.append) == 1
    assert "missing from the pipeline" in out[-1]


def test_replay_cli_exits_2_on_a_folder_that_is_not_a_repro(tmp_path: Path) -> None:
    assert main(["replay", str(tmp_path)]) == 2


def test_a_dropped_record_shrinks_to_one_rejected_row_with_a_repro(tmp_path: Path) -> None:
    """Shrinking, the side-by-side message and the repro folder, on a cheap pipeline."""
    buggy = OraclePipeline(drop_last_reject=True)

    @settings(max_examples=100, database=None, deadline=None, report_multiple_bugs=False,
              phases=[Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(sales_datasets(max_rows=10, files=(1, 2), error_rate=0.5))
    def prop(dataset: SalesDataset) -> None:
        check_against_oracle(buggy, dataset, "ns", repro_root=tmp_path)

    with pytest.raises(DivergenceError) as info:
        prop()
    message = str(info.value)
    assert "table rejected_rows: 0 changed, 1 missing (oracle only)" in message
    assert "missing from the pipeline" in message
    assert "column" in message and "| pipeline" in message and "| oracle" in message
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1  # only the final, shrunk example is written
    repro = read_repro(folders[0])
    (files,) = repro.datasets.values()
    assert len(files) == 1 and SalesDataset(files=files).row_count <= 2


@settings(max_examples=max(10, examples_for("fast") // 6), deadline=None)
@given(sales_datasets(max_rows=12, files=(1, 2), error_rate=0.3, duplicate_rate=0.3))
def test_the_checks_hold_for_the_oracle_itself_under_every_rearrangement(dataset: SalesDataset) -> None:
    """The metamorphic helpers keep what must be kept (shuffle, split, partition sums)."""
    tables = check_against_oracle(OraclePipeline(), dataset, "ns", write_repro=False)
    if not tables:
        return
    check_partition_sums(tables, dataset)
    for name, data in dataset.files:
        head, records = record_slices(data)
        assert head + b"".join(records) == data
    shuffled = shuffle_dataset(dataset.files, [3, 1, 2], [1, 0])
    split = split_dataset(dataset.files, [1, 3])
    for variant in (shuffled, split):
        other = run_oracle(variant).tables
        for table in (C.DAILY_SALES, C.CUSTOMER_SUMMARY, C.PRODUCT_PERFORMANCE, C.INGESTION_AUDIT):
            assert sorted(other[table]) == sorted(tables[table]), (table, variant)


class InMemoryBatches(OraclePipeline):
    """Arrival batches on the oracle: ingest keeps each part at its position; an optional append-only bug."""

    def __init__(self, count_copies_twice: bool = False) -> None:
        super().__init__()
        self.count_copies_twice = count_copies_twice

    def ingest(self, namespace: str, files: Any) -> None:
        run_oracle(files)
        kept = self.files[namespace]
        for index, (name, data) in enumerate(files):
            if index >= len(kept):
                kept.append((name, data))
            elif data.count(b"\n") > 1:  # not a header-only stand-in for an earlier part
                kept[index] = (name, data)

    def transform(self, namespace: str) -> None:
        return None

    def model(self, namespace: str) -> None:
        return None

    def read_tables(self, namespace: str) -> dict[str, list[tuple]]:
        tables = run_oracle(self.files[namespace]).tables
        if self.count_copies_twice:
            audit = list(tables[C.INGESTION_AUDIT][0])
            audit[1] += audit[2]  # rows_accepted also counts the copies
            tables[C.INGESTION_AUDIT] = [tuple(audit)]
        return tables


def test_an_incremental_repro_replays_its_batches_in_arrival_order(tmp_path: Path) -> None:
    from pipeline_props.repro import INCREMENTAL_PROPERTY, arrival_plan_of

    first = (("s.b1.csv", HEADER + b"\n" + ROW + b"\n"),)
    later = (("s.b2.csv", HEADER + b"\n" + ROW + b"\n"),)  # an identical copy, in batch 2
    batches = {f"batch {k}": (later if k == 2 else first if k == 1 else ()) for k in (1, 2, 3)}
    folder = write_repro(batches, property_name=INCREMENTAL_PROPERTY, divergence_text="", dataset_repr="", root=tmp_path)
    plan = arrival_plan_of(read_repro(folder))
    assert plan is not None and plan.batches == (first, later, ())
    out: list[str] = []
    assert replay(folder, settings=None, pipeline=InMemoryBatches(), echo=out.append) == 0
    assert out[-1].startswith("3 arrival batch(es), in arrival order")
    assert replay(folder, settings=None, pipeline=InMemoryBatches(count_copies_twice=True),
                  echo=out.append) == 1
    assert "after batch 2" in out[-1] and "rows_accepted" in out[-1]
