"""The one cluster test of the ci profile: the topology comes up, survives a leader kill mid-produce, goes down.

A cluster of its own (own state file, ports 1000 above the configured
cluster ports), so it never touches a cluster a person started. No Spark
session in this process: the Spark standalone part is checked through the
master's own status (both workers ALIVE); the pipeline on the cluster is
tested by the ``slow`` tests of this package (thorough profile, or ``-m cluster``).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from pipeline_props.infra import _process, admin
from pipeline_props.infra.cluster import ClusterServices

pytestmark = [pytest.mark.cluster, pytest.mark.faults]

MESSAGES = 20_000


def _own_cluster(settings: Any, state_dir: Path) -> ClusterServices:
    infra = settings.infrastructure
    shifted = dataclasses.replace(infra, cluster_kafka_port=infra.cluster_kafka_port + 1000,
                                  cluster_spark_port=infra.cluster_spark_port + 1000,
                                  cluster_postgres_port=infra.cluster_postgres_port + 1000)
    return ClusterServices(dataclasses.replace(settings, infrastructure=shifted), state_dir=state_dir)


def _produce_through_a_leader_kill(svc: ClusterServices, topic: str) -> tuple[set[int], int]:
    """Produce MESSAGES numbered records (acks=all, idempotent); SIGKILL the leader once the first landed."""
    from confluent_kafka import Producer

    kafka = svc.kafka
    assert kafka is not None
    acked: set[int] = set()
    failed: list[str] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is None:
            acked.add(int(msg.value()))
        else:
            failed.append(str(err))

    prod = Producer({"bootstrap.servers": svc.bootstrap_servers, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5, "batch.num.messages": 500, "message.timeout.ms": 60000, "log_level": 0})
    leader = kafka.broker(kafka.partition_leaders(topic)[0])
    for i in range(MESSAGES // 4):
        prod.produce(topic, value=str(i).encode(), on_delivery=on_delivery)
    _process.wait_until(lambda: prod.poll(0.05) >= 0 and len(acked) > 100, 30, 0.0)
    leader.kill()  # mid-produce: the first acks are back, the rest is in flight or not sent yet
    killed_at = len(acked)
    for i in range(MESSAGES // 4, MESSAGES):
        prod.produce(topic, value=str(i).encode(), on_delivery=on_delivery)
        prod.poll(0)
    assert prod.flush(90) == 0, "records still in flight 90 s after the leader kill"
    assert not failed, f"deliveries failed: {failed[:3]}"
    # mid-produce: at least 3/4 of the records were handed to the producer after the kill
    assert 0 < killed_at <= MESSAGES // 4, f"the leader was not killed mid-produce (at {killed_at} acks)"
    return acked, leader.node_id


def _read_all(svc: ClusterServices, topic: str) -> list[int]:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": svc.bootstrap_servers, "group.id": "pp-smoke",
                         "enable.auto.commit": False, "log_level": 0})
    try:
        high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=30)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        seen: list[int] = []
        deadline = time.monotonic() + 60
        while len(seen) < high and time.monotonic() < deadline:
            seen += [int(m.value()) for m in consumer.consume(5000, 1.0) if not m.error()]
        return seen
    finally:
        consumer.close()


def test_cluster_comes_up_keeps_every_acked_record_through_a_leader_kill_and_goes_down(pp_settings: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="pp-cluster-smoke-") as state_dir:
        svc = _own_cluster(pp_settings, Path(state_dir))
        t0 = time.monotonic()
        try:
            svc.up()
            statuses = svc.status()
            assert all(s.healthy for s in statuses), statuses
            assert svc.spark is not None and svc.spark.alive_workers() == 2
            topic = "pp_smoke"
            admin.create_topics(svc.bootstrap_servers, topic)
            assert svc.kafka is not None
            replicas, isr = svc.kafka.partition_replicas(topic)[0]
            assert len(replicas) == 3 and len(isr) == 3, (replicas, isr)
            acked, killed = _produce_through_a_leader_kill(svc, topic)
            new_leader = svc.kafka.wait_for_leaders(topic, avoid=[killed])[0]
            seen = _read_all(svc, topic)
            lost = acked - set(seen)
            doubled = len(seen) - len(set(seen))
            assert not lost and not doubled, f"lost {len(lost)}, duplicated {doubled}"
            assert len(acked) == MESSAGES and new_leader != killed
            pids, ports = svc.pids(), svc.ports()
        finally:
            busy = svc.down()
        assert not busy, f"ports still open after down: {busy}"
        assert not [p for p in pids if _process.pid_alive(p)], "processes left after down"
        assert not any(_process.port_open(p) for p in ports)
        print(f"cluster smoke: {time.monotonic() - t0:.0f} s")
