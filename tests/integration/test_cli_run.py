"""`pipeline-props run` as a user runs it: a refused file (exit 2, nothing sent) and the happy path.

The refused-file tests call ``pipeline_props.cli.main`` in process (the header
check runs before any service is touched) and then ask the real broker
whether anything was written. The happy path runs the console entry point in
a subprocess, as a user would, and checks the artifacts folder it leaves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from pipeline_props.cli import main
from pipeline_props.compare import compare_tables, read_table_csv
from pipeline_props.contract import COLUMNS, OUTPUT_TABLES
from pipeline_props.errors import InputError
from pipeline_props.infra import InfrastructureManager
from pipeline_props.oracles import run_oracle
from pipeline_props.pipeline.ingest import count_topic_messages, iter_jsonl
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.strategies import DataGenerationConfig, DataGenerator

pytestmark = pytest.mark.integration

GOOD_ROW = "E1,O1,C1,P1,Books,NA,online,2,10.00,,USD,2024-03-01T10:00:00Z"
GOOD = (",".join(COLUMNS) + "\n" + GOOD_ROW + "\n").encode()
#: currency dropped from the header and the row
MISSING_COLUMN = (",".join(c for c in COLUMNS if c != "currency") + "\n"
                  + "E1,O1,C1,P1,Books,NA,online,2,10.00,,2024-03-01T10:00:00Z\n").encode()
#: region named twice (the second time with spaces, which trimming removes)
REPEATED_NAME = (",".join(COLUMNS) + ", region \n" + GOOD_ROW + ",EMEA\n").encode()

REFUSED = {
    "missing_column": ("no_currency.csv", MISSING_COLUMN, ["'currency'", "missing"]),
    "repeated_name": ("twice_region.csv", REPEATED_NAME, ["'region'", "repeats"]),
}


def _topics(bootstrap: str) -> set[str]:
    return set(AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(timeout=10).topics)


@pytest.mark.parametrize("case", list(REFUSED))
@pytest.mark.parametrize("with_good_file_first", [False, True])
def test_refused_file_exits_2_and_sends_nothing(
    case: str, with_good_file_first: bool, infrastructure: InfrastructureManager,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    name, data, problem_words = REFUSED[case]
    bad = tmp_path / name
    bad.write_bytes(data)
    inputs = [bad]
    if with_good_file_first:  # a good file before the bad one sends nothing either
        good = tmp_path / "good.csv"
        good.write_bytes(GOOD)
        inputs = [good, bad]
    artifacts = tmp_path / "artifacts"
    before = _topics(infrastructure.kafka_bootstrap)

    argv = ["run", "--artifacts-dir", str(artifacts)]
    for path in inputs:
        argv += ["--input", str(path)]
    rc = main(argv)

    err = " ".join(capsys.readouterr().err.split())  # rich may wrap the message
    assert rc == 2, err
    assert name in err and all(word in err for word in problem_words), err
    assert "good.csv" not in err
    new_topics = _topics(infrastructure.kafka_bootstrap) - before
    assert not new_topics, f"a refused run created topics {new_topics}"
    assert not artifacts.exists() or not any(artifacts.iterdir())


def test_refused_file_leaves_a_prepared_topic_empty(infrastructure: InfrastructureManager) -> None:
    """The ingest stage itself: with the topic already there, a refused second file sends nothing at all."""
    pipeline = ReferencePipeline(infrastructure)
    namespace = f"pp_t_refused_{uuid.uuid4().hex[:8]}"
    pipeline.prepare(namespace)
    try:
        for name, data, problem_words in REFUSED.values():
            with pytest.raises(InputError) as info:
                pipeline.ingest(namespace, [("good.csv", GOOD), (name, data)])
            assert info.value.file == name
            assert all(word in info.value.problem for word in problem_words)
        assert count_topic_messages(infrastructure.kafka_bootstrap, namespace) == 0
    finally:
        pipeline.cleanup(namespace)


SECRET = f"pp-secret-{uuid.uuid4().hex}"
RECORDS = 60
SEED = 7


def test_cli_run_happy_path_writes_the_artifacts(infrastructure: InfrastructureManager, tmp_path: Path) -> None:
    """`pipeline-props run --test happy_path` in a subprocess: exit 0, HELD, every artifact, no secret."""
    artifacts = tmp_path / "artifacts"
    config = tmp_path / "pp.yaml"
    # A password in the settings (the local backend ignores it) must not reach any artifact.
    config.write_text(f"infrastructure:\n  postgres_password: {SECRET}\n", encoding="utf-8")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("E2E_CONFIG", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline_props.cli", "run", "--test", "happy_path",
         "--record-count", str(RECORDS), "--seed", str(SEED),
         "--artifacts-dir", str(artifacts), "--config", str(config)],
        capture_output=True, text=True, env=env, timeout=1500, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "HELD" in proc.stdout
    assert SECRET not in output
    # a quiet terminal: the summary only (no progress display on a pipe); the rest is in logs/
    assert proc.stderr.strip() == "", proc.stderr[-2000:]
    assert not any(word in proc.stdout for word in ("WARN", "log4j", "INFO")), proc.stdout

    runs = list(artifacts.iterdir())
    assert len(runs) == 1, runs
    run = runs[0]
    assert (run / "logs" / "pipeline-props.log").stat().st_size > 0  # Spark's banners, the INFO logs
    files = list(DataGenerator(DataGenerationConfig(seed=SEED)).generate_test_scenario_data(
        "happy_path", RECORDS).files)
    oracle = run_oracle(files)
    rows_read = oracle.tables["ingestion_audit"][0][0]

    # input/: the dataset exactly as ingested
    assert {p.name: p.read_bytes() for p in (run / "input").iterdir()} == dict(files)

    # kafka_messages.jsonl: one message per record, each position once
    lines = (run / "kafka_messages.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == rows_read
    messages = list(iter_jsonl(lines))
    positions = Counter((m["file_index"], m["record"]) for m in messages)
    assert max(positions.values()) == 1
    versions = {m["v"] for m in messages}
    assert 2 in versions and versions <= {1, 2}  # plain records compact, the rest JSON
    assert len({m["run"] for m in messages if m["v"] == 1}) <= 1

    # warehouse/ and expected/: the five tables each, equal (the run HELD), expected = the oracle's
    for folder in ("warehouse", "expected"):
        assert {p.name for p in (run / folder).glob("*.csv")} == {f"{t}.csv" for t in OUTPUT_TABLES}
    for table in OUTPUT_TABLES:
        warehouse = read_table_csv(run / "warehouse" / f"{table}.csv", table)
        expected = read_table_csv(run / "expected" / f"{table}.csv", table)
        assert compare_tables(table, warehouse, expected).ok, table
        assert compare_tables(table, expected, oracle.tables[table]).ok, table
    assert not (run / "divergence.txt").exists()

    report = json.loads((run / "validation_report.json").read_text(encoding="utf-8"))
    assert report["overall_passed"] is True

    perf = json.loads((run / "performance_metrics.json").read_text(encoding="utf-8"))
    assert perf["rows_read"] == rows_read
    for stage in ("ingest", "transform", "model", "export", "total"):
        assert perf["stages"][stage]["seconds"] >= 0, stage

    meta_text = (run / "metadata.json").read_text(encoding="utf-8")
    meta = json.loads(meta_text)
    assert meta["run_id"] == run.name
    assert meta["scenario"] == "happy_path" and meta["seed"] == SEED
    assert meta["config"]["infrastructure"]["postgres_password"] == "***"
    for path in run.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path

    # the run cleaned up after itself: no topic left on the broker
    assert meta["namespace"] not in _topics(infrastructure.kafka_bootstrap)
