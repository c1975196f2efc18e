"""Reading a topic's watermarks, with the broker's transient refusals asked again.

A topic's metadata can name a leader before that broker has taken the
partition's leadership (KRaft applies the metadata record a moment later), so
a watermark read right after the topic was created can be refused with
NOT_LEADER_FOR_PARTITION or LEADER_NOT_AVAILABLE. Those errors are retriable:
the read is asked again, within the caller's time budget, and only an error
that outlives it (or is not retriable) reaches the caller.
"""

from __future__ import annotations

import time
from typing import Any

# Refusals a healthy broker gives for a moment after a topic is created or a
# leader moves; librdkafka marks most but not all of them retriable.
_TRANSIENT = frozenset({"NOT_LEADER_FOR_PARTITION", "LEADER_NOT_AVAILABLE", "UNKNOWN_TOPIC_OR_PART",
                        "_UNKNOWN_PARTITION", "_UNKNOWN_TOPIC", "_TRANSPORT", "_TIMED_OUT"})
_BACKOFF_S = 0.2


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a Kafka refusal worth asking again."""
    error = exc.args[0] if exc.args else None
    if error is None or not hasattr(error, "code"):
        return False
    retriable = getattr(error, "retriable", None)
    return bool(retriable and retriable()) or error.name() in _TRANSIENT


def read_watermarks(consumer: Any, topic: str, timeout: float) -> dict[int, tuple[int, int]]:
    """Partition -> (low, high) watermark of ``topic``, asking again on transient refusals.

    ``timeout`` bounds the whole read; a refusal still there when it runs out,
    or one that is not transient, is raised as the ``KafkaException`` it was.
    """
    from confluent_kafka import KafkaException, TopicPartition

    if timeout <= 0:
        raise ValueError(f"timeout={timeout!r} must be positive")
    deadline = time.monotonic() + timeout
    while True:
        left = max(deadline - time.monotonic(), 0.1)
        try:
            md = consumer.list_topics(topic, timeout=left)
            return {pid: consumer.get_watermark_offsets(TopicPartition(topic, pid), timeout=left)
                    for pid in sorted(md.topics[topic].partitions)}
        except KafkaException as exc:
            if not is_transient(exc) or time.monotonic() + _BACKOFF_S >= deadline:
                raise
            time.sleep(_BACKOFF_S)
