"""Latency readers: when each message reached Kafka, which micro-batch carried it, when the sink committed it."""

import bisect
import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path



log = logging.getLogger(__name__)

__all__ = ["checkpoint_batch_ends", "ledger_commit_times", "read_message_timestamps", "staging_latencies"]



def read_message_timestamps(bootstrap_servers: str, topic: str, *, max_messages: int = 2_000_000,
                            timeout: float = 60.0) -> list[tuple[int, int, float]]:
    """(partition, offset, epoch seconds) of every message in ``topic``, read without a consumer group."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"pp-latency-{topic}",
                         "enable.auto.commit": False, "log_level": 3,
                         "fetch.max.bytes": 52_428_800})
    out: list[tuple[int, int, float]] = []
    try:
        md = consumer.list_topics(topic, timeout=10)
        todo: dict[int, int] = {}
        assign = []
        for p in md.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                todo[p] = high
                assign.append(TopicPartition(topic, p, low))
        if not assign:
            return out
        consumer.assign(assign)
        deadline = time.monotonic() + timeout
        while todo and len(out) < max_messages and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=50_000, timeout=1.0):
                if msg.error():
                    continue
                p, off = msg.partition(), msg.offset()
                out.append((p, off, msg.timestamp()[1] / 1000.0))
                if p in todo and off + 1 >= todo[p]:
                    del todo[p]
    finally:
        consumer.close()
    return out


def checkpoint_batch_ends(checkpoint_dir: Path, topic: str) -> dict[int, dict[int, int]]:
    """batch_id -> {partition: end offset (exclusive)} from a Spark checkpoint's ``offsets/`` log."""
    ends: dict[int, dict[int, int]] = {}
    folder = checkpoint_dir / "offsets"
    for f in folder.iterdir():
        if not f.name.isdigit():
            continue
        lines = f.read_text(encoding="utf-8").splitlines()
        for line in lines[2:]:
            try:
                offsets = json.loads(line)
            except ValueError:
                continue
            if isinstance(offsets, dict) and topic in offsets:
                ends[int(f.name)] = {int(p): int(o) for p, o in offsets[topic].items()}
    if not ends:
        raise ValueError(f"no offsets for {topic} in {folder}")
    return ends


def ledger_commit_times(dsn: str, schema: str) -> dict[int, float]:
    """batch_id -> committed_at (epoch seconds) from the staging batch ledger."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(sql.SQL("SELECT batch_id, extract(epoch FROM committed_at)::float8 FROM {}.batch_ledger")
                            .format(sql.Identifier(schema))).fetchall()
    return {int(b): float(t) for b, t in rows}


def staging_latencies(stamps: Iterable[tuple[int, int, float]], ends: Mapping[int, Mapping[int, int]],
                      commits: Mapping[int, float]) -> list[float]:
    """Per message: commit time of the batch whose offset range holds it minus its timestamp.

    Batches are ordered by id; batch b holds offsets [end(b-1), end(b)) of each
    partition. Messages of batches missing from the ledger are skipped.
    """
    batch_ids = sorted(ends)
    per_part: dict[int, tuple[list[int], list[int]]] = {}
    for p in {p for e in ends.values() for p in e}:
        pairs = [(ends[b][p], b) for b in batch_ids if p in ends[b]]
        per_part[p] = ([o for o, _ in pairs], [b for _, b in pairs])
    out = []
    for p, off, ts in stamps:
        if p not in per_part:
            continue
        offs, bids = per_part[p]
        i = bisect.bisect_right(offs, off)  # first batch whose end offset is > off
        if i < len(bids) and bids[i] in commits:
            out.append(commits[bids[i]] - ts)
    return out


