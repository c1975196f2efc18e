"""Findings classification, the scenario registry and the report (unit); the harness's bounded waits (faults)."""

from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_props.faults import FAULT_SCENARIOS, classify
from pipeline_props.faults.harness import HEADER_ONLY
from pipeline_props.faults.report import write_fault_report
from pipeline_props.faults.runner import ScenarioResult


@pytest.mark.unit
def test_clean_run_has_no_findings() -> None:
    sends = {(0, 1): 1, (0, 2): 1}
    f = classify(sends=sends, acked=sends, topic=[(0, 1), (0, 2)], staging=[(0, 2), (0, 1)])
    assert f.ok and f.first_bad_stage is None
    assert f.counts() == {"lost": 0, "duplicated": 0, "phantom": 0}


@pytest.mark.unit
def test_lost_duplicated_and_phantom_are_named_with_their_stage() -> None:
    sends = {(0, 1): 1, (0, 2): 1, (1, 1): 1}
    f = classify(sends=sends, acked=[(0, 1), (0, 2), (1, 1)],
                 topic=[(0, 1), (0, 1), (0, 2), (1, 1)],
                 staging=[(0, 1), (0, 1), (9, 9)],
                 event_ids={(0, 1): "e1", (0, 2): "e2"})
    assert f.first_bad_stage == "kafka"
    assert f.stages["kafka"].duplicated == [((0, 1), 2)]
    assert f.stages["staging"].lost == [(0, 2), (1, 1)]
    assert f.stages["staging"].duplicated == [((0, 1), 2)]
    assert f.stages["staging"].phantom == [(9, 9)]
    text = f.render()
    assert "event_id e1" in text and "phantom" in text and "kafka" in text
    assert f.counts() == {"lost": 2, "duplicated": 1, "phantom": 1}


@pytest.mark.unit
def test_unknown_outcome_may_be_missing_but_not_doubled() -> None:
    sends = {(0, 1): 1, (1, 1): 1}
    ok = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1)], staging=[(0, 1)])
    assert ok.ok  # (1, 1) was never confirmed: absent is fine
    bad = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1), (1, 1)], staging=[(0, 1), (1, 1), (1, 1)])
    assert bad.stages["staging"].duplicated == [((1, 1), 2)]
    lost = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1), (1, 1)], staging=[(0, 1)])
    assert lost.stages["staging"].lost == [(1, 1)]  # reached Kafka, so it must reach staging


@pytest.mark.unit
def test_an_unknown_outcome_that_lands_after_the_catch_up_started_is_not_due_yet() -> None:
    sends = {(0, 1): 1, (1, 1): 1}
    # (1, 1) reached the topic after the catch-up read the end offsets (a request a
    # paused broker still held): not staged yet, and not lost
    late = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1), (1, 1)], staging=[(0, 1)],
                    due_in_staging=[(0, 1)])
    assert late.ok, late.render()
    # an acknowledged record is due whatever the offsets say
    acked = classify(sends=sends, acked=[(0, 1), (1, 1)], topic=[(0, 1), (1, 1)], staging=[(0, 1)],
                     due_in_staging=[(0, 1)])
    assert acked.stages["staging"].lost == [(1, 1)]
    # due and missing: lost; due and staged twice: duplicated
    lost = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1), (1, 1)], staging=[(0, 1), (0, 1)],
                    due_in_staging=[(0, 1), (1, 1)])
    assert lost.stages["staging"].lost == [(1, 1)]
    assert lost.stages["staging"].duplicated == [((0, 1), 2)]


@pytest.mark.unit
def test_rerun_of_the_producer_may_double_the_topic_not_staging() -> None:
    sends = {(0, 1): 2}
    f = classify(sends=sends, acked=[(0, 1)], topic=[(0, 1), (0, 1)], staging=[(0, 1)])
    assert f.ok


@pytest.mark.unit
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), max_size=20),
       st.lists(st.tuples(st.integers(0, 3), st.integers(1, 5)), max_size=20))
def test_classification_is_exact(sent: list, staged: list) -> None:
    sends = {p: 1 for p in sent}
    f = classify(sends=sends, acked=sends, staging=staged)
    s = f.stages["staging"]
    assert set(s.lost) == set(sends) - set(staged)
    assert set(s.phantom) == set(staged) - set(sends)
    assert {p for p, _ in s.duplicated} == {p for p in staged if staged.count(p) > 1}
    assert f.ok == (set(staged) == set(sends) and len(staged) == len(set(staged)))


@pytest.mark.unit
def test_registry_has_the_seed_scenarios_with_every_field() -> None:
    for name in ("kafka_service_stop", "kafka_pause", "postgres_restart", "spark_driver_crash",
                 "spark_driver_kill", "spark_driver_kill_after_write",
                 "spark_crash_after_write", "producer_crash", "network_latency", "network_partition",
                 "packet_loss", "corrupt_messages", "disk_full", "postgres_disk_full", "memory_pressure"):
        s = FAULT_SCENARIOS[name]
        assert all([s.description, s.error_type, s.component, s.failure_point, s.expected_behavior,
                    s.recovery_mechanism]), name
        assert s.error_type in ("service", "network", "data", "resource")


@pytest.mark.unit
def test_report_fails_a_scenario_that_lost_or_duplicated(tmp_path) -> None:
    good = ScenarioResult("postgres_restart", True, 1.0, 0, 0, 0, True, "", 3.0)
    bad = ScenarioResult("producer_crash", True, 1.0, 0, 2, 0, False, "", 3.0)
    assert good.passed and not bad.passed
    import json

    data = json.loads(write_fault_report([good, bad], tmp_path).read_text())
    assert data["passed"] is False
    assert [s["passed"] for s in data["scenarios"]] == [True, False]

# Whole scenarios on the real services run from tests/integration/error_scenario_tests.py
# (class ErrorScenarioTests) and `pipeline-props errors`: each costs a dbt build, too much for
# the 4-minute ci budget of tests/faults.


class _StuckSink:
    """A foreachBatch sink whose callback does not return until ``release`` is set."""

    release = threading.Event()

    def __init__(self, dsn: str, schema: str) -> None:
        self.schema = schema

    def __call__(self, df: object, batch_id: int) -> None:
        self.release.wait(600)


@pytest.mark.faults
def test_a_query_that_cannot_stop_fails_loudly_instead_of_hanging(infrastructure, fault_injector) -> None:
    """query.stop() waits for the Python callback: the harness bounds that wait and raises."""
    from pipeline_props.errors import PipelineStageError
    from pipeline_props.faults import FaultHarness
    from pipeline_props.pipeline.reference import ReferencePipeline

    pipeline = ReferencePipeline(infrastructure, partitions=1, sink_factory=_StuckSink)
    h = FaultHarness(infrastructure, fault_injector, pipeline=pipeline, stop_timeout_s=3)
    _StuckSink.release.clear()
    h.prepare()
    # spark_query_stop: the harness stops the query while this batch's callback runs (and hangs)
    stop_id = fault_injector.inject_service_failure("spark", "query_stop")
    try:
        h.produce(HEADER_ONLY + b"not,a,valid,row\n")
        with pytest.raises(PipelineStageError, match="did not stop within 3 s"):
            h.run_stream()
    finally:
        fault_injector.recover_from_error(stop_id)
        _StuckSink.release.set()
        for q in infrastructure.spark.streams.active:
            q.stop()
        h.cleanup()


@pytest.mark.faults
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting the tmpfs under the tablespace needs root")
def test_postgres_disk_full_fails_the_write_loudly_and_loses_nothing(infrastructure, fault_injector) -> None:
    """Staging tables on a full tmpfs tablespace: the sink's write fails, the replay after freeing it is exact."""
    import psycopg

    from pipeline_props.faults import run_scenario

    r = run_scenario("postgres_disk_full", infrastructure, injector=fault_injector, rows=30)
    # the fault did something: the stream failed on the full tablespace, and Postgres said so
    assert "stream with the tablespace full: failed" in r.fault_observed, r.fault_observed
    assert "could not extend file" in r.fault_observed, r.fault_observed
    assert "No space left on device" in r.fault_observed, r.fault_observed
    assert (r.recovered, r.records_lost, r.records_duplicated, r.records_phantom, r.tables_equal) == (
        True, 0, 0, 0, True), f"{r.error}\n{r.notes}"
    assert r.passed, r.error
    # cleanup: no tablespace of ours and no tmpfs left behind
    with psycopg.connect(infrastructure.postgres_dsn) as conn:
        left = conn.execute("SELECT spcname FROM pg_tablespace WHERE spcname LIKE 'pp_ts_%'").fetchall()
    assert left == []
    assert "/tablespaces/pp_ts_" not in open("/proc/mounts").read()
