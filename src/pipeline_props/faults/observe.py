"""What the fault harness reads back once the faults are healed: a topic's offsets and messages, a schema's staged positions.

These are the harness' own reads, not the pipeline's: a failure here is an
:class:`InfrastructureError` (the service is not answering), never a finding.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from pipeline_props.errors import InfrastructureError
from pipeline_props.faults.findings import Position
from pipeline_props.infra import InfrastructureManager
from pipeline_props.pipeline.messages import position


def _consumer(infra: InfrastructureManager) -> Any:
    from confluent_kafka import Consumer

    return Consumer({"bootstrap.servers": infra.kafka_bootstrap,
                     "group.id": f"pp-faults-{uuid.uuid4().hex[:6]}",
                     "enable.auto.commit": False, "log_level": 3})


def _watermarks(infra: InfrastructureManager, consumer: Any, topic: str,
                within_s: float = 45.0) -> dict[int, tuple[int, int]]:
    from confluent_kafka import KafkaException, TopicPartition

    # A broker just restarted or resumed may not know its partitions for a few
    # seconds (UNKNOWN_PARTITION, leader not available, timeouts): ask again.
    deadline = time.monotonic() + within_s
    while True:
        try:
            md = consumer.list_topics(topic, timeout=10)
            return {pid: consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)
                    for pid in md.topics[topic].partitions}
        except (KafkaException, KeyError, TypeError) as exc:
            if time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            # the harness' own read, with every fault healed: the broker is not answering
            raise InfrastructureError(
                "kafka", f"cannot read the offsets of topic {topic} in {within_s:.0f} s: {exc}",
                log_path=infra.kafka.log_path if infra.kafka else None) from None


def topic_end_offsets(infra: InfrastructureManager, topic: str) -> dict[int, int]:
    """The end (high watermark) offset of each partition of ``topic`` now."""
    consumer = _consumer(infra)
    try:
        return {pid: high for pid, (_, high) in _watermarks(infra, consumer, topic).items()}
    finally:
        consumer.close()


def topic_messages(infra: InfrastructureManager, topic: str) -> list[tuple[int, int, Position | None]]:
    """Every message in ``topic`` as (partition, offset, position); position None for a foreign one."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(infra)
    out: list[tuple[int, int, Position | None]] = []
    try:
        for pid, (low, high) in _watermarks(infra, consumer, topic).items():
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, pid, low)])
            seen = low
            deadline = time.monotonic() + 30
            while seen < high and time.monotonic() < deadline:
                for msg in consumer.consume(1000, 1.0):
                    if msg.error():
                        continue
                    seen = msg.offset() + 1
                    out.append((pid, msg.offset(), position(msg.value() or b"")))
            if seen < high:
                raise InfrastructureError(
                    "kafka", f"topic {topic} partition {pid}: read up to offset {seen} of {high} in 30 s")
    finally:
        consumer.close()
    return out


def staging_positions(infra: InfrastructureManager, schema: str) -> tuple[list[Position], int]:
    """Positions in ``schema``'s stg_events and stg_rejects (one entry per row), and the count of foreign rejects."""
    import psycopg
    from psycopg import sql

    s = sql.Identifier(schema)
    try:
        with psycopg.connect(infra.postgres_dsn, connect_timeout=10) as conn:
            rows = conn.execute(sql.SQL(
                "SELECT file_index, record_number FROM {}.stg_events UNION ALL "
                "SELECT file_index, record_number FROM {}.stg_rejects").format(s, s)).fetchall()
    except psycopg.OperationalError as exc:  # the harness' own read, faults healed: not a finding
        raise InfrastructureError("postgres", f"cannot read the staging tables of {schema}: "
                                  f"{str(exc).strip()[:300]}") from None
    own = [(int(a), int(b)) for a, b in rows if a >= 0]
    return own, sum(1 for a, _ in rows if a < 0)


__all__ = ["staging_positions", "topic_end_offsets", "topic_messages"]
