"""Self-check on the cluster: configurations that production teams get wrong must be caught.

* Replication: ``acks=1`` with ``unclean.leader.election.enable=true`` and
  ``min.insync.replicas=1`` (topic-level settings, which override the brokers'
  defaults for that topic alone). The leader acknowledges a write alone; when
  it dies before its followers copied it, the new leader never had it. The
  machine starts every schedule with the leader's followers paused
  (SIGSTOP) and may kill the leader: it must find acknowledged records lost
  in the topic and shrink to a short schedule.
* A consumer that commits its offsets before the sink commits: a crash in
  between loses the batch for good (the next run starts after it).

Each self-check has its control: the same schedules with the sound
configuration pass, so a failure is the configuration's, not the harness'.
"""

from __future__ import annotations

import json
import re
import threading
import time
from typing import Any

import pytest
from hypothesis import Phase
from test_state_machine import _run, _settings

from pipeline_props.faults.cluster import CLUSTER_PRODUCER_CONFIG
from pipeline_props.faults.harness import FaultHarness
from pipeline_props.faults.stream_run import StreamOutcome, short_error

from .machine import ClusterFaultMachine, cluster_machine

pytestmark = [pytest.mark.cluster, pytest.mark.faults, pytest.mark.slow]

BROKEN_REPLICATION = {
    "producer_config": {**CLUSTER_PRODUCER_CONFIG, "acks": "1", "enable.idempotence": False},
    "topic_config": {"min.insync.replicas": "1", "unclean.leader.election.enable": "true"},
}
#: The fault both replication tests draw: followers stopped, the leader alone; recovery fails it over.
ISOLATED_LEADER = ("kafka_isolated_leader_kill",)
#: Generation then shrinking, the same examples every run (the finding must not depend on luck).
_FIND_AND_SHRINK = {"phases": [Phase.generate, Phase.shrink], "database": None, "derandomize": True}
MAX_SHRUNK_STEPS = 6


def _steps(exc: BaseException) -> list[str]:
    """The steps of the falsifying schedule Hypothesis reported (``state.rule(...)`` lines)."""
    text = "\n".join([str(exc), *getattr(exc, "__notes__", [])])
    return [ln.strip() for ln in text.splitlines() if re.match(r"\s*state\.(?!teardown)\w+\(", ln)]


def _reported(exc: BaseException) -> list[tuple[BaseException, list[str]]]:
    """Each failure Hypothesis reported, with the steps of its schedule.

    One failure is the exception itself. Distinct failures (the same loss seen
    after recovery and at teardown) come as an ExceptionGroup, each with its
    own schedule. A FlakyFailure (an ExceptionGroup too) is a loss that a replay
    did not repeat: whether the records die with the leader also depends on
    which node is the active controller when it is killed. Its schedule, as
    found and unshrunk, is on the group.
    """
    if isinstance(exc, BaseExceptionGroup):
        return [(leaf, steps or _steps(exc)) for inner in exc.exceptions for leaf, steps in _reported(inner)]
    return [(exc, _steps(exc))]


def test_lost_acks_under_leader_kills_are_found_and_shrunk(cluster_infra: Any, cluster_injector: Any) -> None:
    """acks=1 + unclean election + min.insync.replicas=1: the machine finds lost records, shrunk to <= 6 steps."""
    broken = cluster_machine(ISOLATED_LEADER, **BROKEN_REPLICATION)
    with pytest.raises((AssertionError, BaseExceptionGroup)) as info:
        _run(broken, cluster_infra, cluster_injector, _settings(6, 4, **_FIND_AND_SHRINK))
    found = _reported(info.value)
    for failure, steps in found:
        assert isinstance(failure, AssertionError), f"not a finding: {failure!r}"
        message = str(failure)
        assert "lost" in message and "kafka" in message, message
        print("shrunk schedule:\n  " + "\n  ".join(steps))
        assert 0 < len(steps) <= MAX_SHRUNK_STEPS, f"not shrunk to a short schedule: {steps}"


def test_the_same_schedules_lose_nothing_with_acks_all_and_min_isr_2(cluster_infra: Any,
                                                                    cluster_injector: Any) -> None:
    """Control: the sound configuration under the same fault menu (a paused ISR makes produces time out, unacked)."""
    sound = cluster_machine(ISOLATED_LEADER, producer_config={**CLUSTER_PRODUCER_CONFIG, "message.timeout.ms": 10000})
    _run(sound, cluster_infra, cluster_injector,
         _settings(3, 4, phases=[Phase.generate], database=None, derandomize=True))


class OffsetsFirstHarness(FaultHarness):
    """A consumer that keeps its offsets in a Kafka consumer group and reads each range as a Spark batch.

    With ``commit_first`` it commits the range's end offset before the sink
    writes (the bug); otherwise after the sink's COMMIT (at-least-once, made
    exactly-once by the sink's ledger and keys).
    """

    commit_first = True

    def run_stream(self, timeout_s: float | None = None) -> StreamOutcome:
        from confluent_kafka import Consumer, TopicPartition

        from pipeline_props.pipeline import transform

        t0 = time.monotonic()
        consumer = Consumer({"bootstrap.servers": self.injector.kafka_bootstrap, "group.id": f"pp-of-{self.ns}",
                             "enable.auto.commit": False, "log_level": 0})
        try:
            committed = consumer.committed([TopicPartition(self.ns, 0)], timeout=10)[0].offset
            start = max(committed, 0)
            end = consumer.get_watermark_offsets(TopicPartition(self.ns, 0), timeout=10)[1]
            if end <= start:
                return StreamOutcome(True, time.monotonic() - t0)
            done = [TopicPartition(self.ns, 0, end)]
            if self.commit_first:
                consumer.commit(offsets=done, asynchronous=False)
            df = (self.infra.spark.read.format("kafka")
                  .option("kafka.bootstrap.servers", self.injector.kafka_bootstrap)
                  .option("assign", json.dumps({self.ns: [0]}))
                  .option("startingOffsets", json.dumps({self.ns: {"0": start}}))
                  .option("endingOffsets", json.dumps({self.ns: {"0": end}})).load())
            # one ledger row per offset range: a replayed range is a new batch id, deduped by the keys
            self._sink(threading.Event())(transform.transform(df), start * 1_000_000 + end)
            if not self.commit_first:
                consumer.commit(offsets=done, asynchronous=False)
            return StreamOutcome(True, time.monotonic() - t0)
        except Exception as exc:  # noqa: BLE001 - a failed run is an outcome, as in FaultHarness
            return StreamOutcome(False, time.monotonic() - t0, short_error(exc))
        finally:
            consumer.close()


def _offsets_machine(commit_first: bool) -> type[ClusterFaultMachine]:
    harness = type("Harness", (OffsetsFirstHarness,), {"commit_first": commit_first})
    return type("OffsetsMachine", (cluster_machine(("spark_crash_before_write",)),), {"harness_cls": harness})


def test_a_consumer_that_commits_offsets_before_the_sink_is_caught(cluster_infra: Any, cluster_injector: Any) -> None:
    """Offsets committed first, then a crash before the write: the batch is lost for good, caught in staging."""
    with pytest.raises(AssertionError) as info:
        _run(_offsets_machine(True), cluster_infra, cluster_injector, _settings(2, 2, **_FIND_AND_SHRINK))
    message = str(info.value)
    assert "staging" in message and "lost" in message, message
    steps = _steps(info.value)
    print("shrunk schedule:\n  " + "\n  ".join(steps))
    assert 0 < len(steps) <= MAX_SHRUNK_STEPS, steps


def test_the_same_consumer_committing_after_the_sink_loses_nothing(cluster_infra: Any, cluster_injector: Any) -> None:
    """Control: commit after the sink's COMMIT; the same schedules hold."""
    _run(_offsets_machine(False), cluster_infra, cluster_injector,
         _settings(2, 4, phases=[Phase.generate], database=None, derandomize=True))
