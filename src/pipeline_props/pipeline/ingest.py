"""Ingest stage: CSV files -> one Kafka message per record, through an idempotent producer.

Every header is checked before anything is sent, so a refused file sends
nothing. The producer runs with ``acks=all`` and idempotence, batched; a
message whose delivery fails is retried (``retry_rounds`` rounds after
librdkafka's own retries) and finally reported with its positions, never
dropped silently. An idle producer is reused by the next call with the same
settings (only one that ended with everything acknowledged and nothing
queued). This is the only module that talks to the Kafka client
library, so swapping it is local.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from pipeline_props.contract import COLUMNS
from pipeline_props.errors import InputError, PipelineStageError, UsageError
from pipeline_props.pipeline.messages import COMPACT_PREFIX, decode, encode
from pipeline_props.pipeline.reader import Header, Record, iter_records, parse_header
from pipeline_props.pipeline.watermarks import read_watermarks

log = logging.getLogger(__name__)

#: Producer settings; callers may override any of them (a fault test turns idempotence off).
PRODUCER_DEFAULTS: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    "linger.ms": 25,
    "batch.size": 1_000_000,
    "batch.num.messages": 100_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "message.timeout.ms": 120_000,
    "socket.keepalive.enable": True,
    "log_level": 3,
    # Delivery callbacks for failures only: a Python call per acknowledged message
    # costs ~1 us. After a complete flush every message not reported failed was
    # acknowledged, so the acked count is still exact.
    "delivery.report.only.error": True,
}


#: Idle producers by configuration, reused across ingest calls: a new idempotent
#: producer spends ~0.5 s getting its producer id before the first send, most
#: of a small dataset's ingest. Only a producer whose call ended with every
#: message acknowledged and nothing queued comes back here.
_IDLE_PRODUCERS: dict[tuple[tuple[str, str], ...], list[Any]] = {}
_IDLE_LOCK = threading.Lock()


class _Producer:
    """A confluent-kafka Producer and whether librdkafka reported a fatal error on it."""

    def __init__(self, config: dict[str, Any]) -> None:
        from confluent_kafka import Producer

        fatal: list[bool] = []
        self._fatal = fatal

        # A closure, not a bound method: the client must not hold a reference
        # back to this object, or a dropped producer lives (and keeps retrying)
        # until the cycle collector runs.
        def on_error(err: Any) -> None:
            if err.fatal():
                fatal.append(True)

        # librdkafka's log lines go through Python logging, served on poll(): an
        # idle producer whose broker went away does not write to stderr meanwhile.
        self.producer = Producer({"logger": log, **config, "error_cb": on_error})

    @property
    def fatal(self) -> bool:
        return bool(self._fatal)

    def crash(self, grace_s: float) -> None:
        """What a killed producer process leaves behind: whatever went out within ``grace_s``.

        The queue and the requests in flight are purged (their acknowledgements
        are void, nothing is retried), so nothing this producer was handed
        arrives later, except a request already on the wire.
        """
        self.producer.flush(grace_s)
        self.producer.purge(in_queue=True, in_flight=True, blocking=True)
        self.producer.poll(0)


def _take_producer(config: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], _Producer]:
    key = tuple(sorted((k, repr(v)) for k, v in config.items()))
    with _IDLE_LOCK:
        idle = _IDLE_PRODUCERS.get(key)
        if idle:
            return key, idle.pop()
    return key, _Producer(config)


def _give_back(key: tuple[tuple[str, str], ...], held: _Producer) -> None:
    held.producer.poll(0)  # serve pending events (logs, errors), so len() counts messages and requests
    if held.fatal or len(held.producer) != 0:
        return  # dropped: a later run must not inherit its state or its queue
    with _IDLE_LOCK:
        idle = _IDLE_PRODUCERS.setdefault(key, [])
        if not idle:
            idle.append(held)


@dataclass
class IngestStats:
    """What the ingest stage did."""

    files: int = 0
    records: int = 0
    malformed: int = 0
    acked: int = 0
    seconds: float = 0.0
    headers: list[Header] = field(default_factory=list)
    #: (file name, rows read, malformed rows, empty values per contract column among well-formed rows)
    per_file: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rows_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def check_headers(files: Sequence[tuple[str, bytes]]) -> list[Header]:
    """Parse every header first: one refused file refuses the run before anything is sent."""
    return [parse_header(data, name)[0] for name, data in files]


def read_dataset_files(paths: Sequence[str | Path]) -> list[tuple[str, bytes]]:
    """Read input files as (base name, bytes), with an InputError naming a missing file."""
    out = []
    for p in paths:
        path = Path(p)
        try:
            out.append((path.name, path.read_bytes()))
        except FileNotFoundError:
            raise InputError(path, "file not found") from None
        except IsADirectoryError:
            raise InputError(path, "is a directory, expected a CSV file") from None
        except PermissionError:
            raise InputError(path, "permission denied") from None
    return out


def ingest_files(
    files: Sequence[tuple[str, bytes]],
    *,
    bootstrap_servers: str,
    topic: str,
    run_id: str,
    producer_config: dict[str, Any] | None = None,
    messages_out: IO[str] | None = None,
    retry_rounds: int = 3,
    on_progress: Callable[[int], None] | None = None,
    stop_after: int | None = None,
    crash_grace_s: float = 0.2,
    arrival_order: Sequence[int] | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> IngestStats:
    """Send every record of ``files`` (dataset order, file_index = position) to ``topic``.

    ``messages_out`` receives each message as a JSON line (the run's
    kafka_messages.jsonl). ``stop_after`` hands only that many records to the
    client, gives it ``crash_grace_s`` to send them and then drops its queue
    and the requests in flight, as a killed process would (the fault tests'
    "producer killed mid-file": which of those records arrive is unknown, but
    none arrives after the call returns unless it was already on the wire).
    ``arrival_order`` sends the messages in another order, each record keeping
    its file and record number: message ``i`` (dataset order) goes out ranked
    by ``(arrival_order[i % len(arrival_order)], i)`` (the order-independence
    property; the whole dataset is held in memory then). ``headers`` go on
    every message (a shared topic carries each message's namespace there).
    """
    if arrival_order and stop_after is not None:
        raise UsageError("ingest_files: give arrival_order or stop_after, not both "
                         f"(arrival_order={list(arrival_order)[:5]}, stop_after={stop_after})")
    started = time.perf_counter()
    headers_read = check_headers(files)
    stats = IngestStats(files=len(files), headers=headers_read)
    config = {**PRODUCER_DEFAULTS, **(producer_config or {}), "bootstrap.servers": bootstrap_servers}
    producer_key, held = _take_producer(config)
    outbox = _Outbox(held.producer, topic, headers, messages_out)
    held_back: list[tuple[bytes | None, bytes]] | None = [] if arrival_order else None

    for file_index, (name, data) in enumerate(files):
        stopped = _send_file(outbox, name, data, file_index, headers_read[file_index], stats, run_id=run_id,
                             held_back=held_back, on_progress=on_progress, stop_after=stop_after)
        if stopped:
            held.crash(crash_grace_s)  # never given back: the "process" is gone
            stats.records = outbox.sent
            stats.seconds = time.perf_counter() - started
            return stats

    if held_back:
        _emit_in_arrival_order(outbox, held_back, arrival_order or ())
    _deliver(outbox, retry_rounds)
    stats.acked = outbox.acked
    stats.seconds = time.perf_counter() - started
    _give_back(producer_key, held)
    if on_progress:
        on_progress(outbox.sent)
    return stats


class _Failures:
    """The delivery reports of failed messages, and how many there were in all.

    Its bound ``on_delivery`` is what the client holds per message: it must not
    reach the producer (see :class:`_Producer`), so it lives apart from :class:`_Outbox`.
    """

    def __init__(self) -> None:
        self.pending: list[tuple[bytes | None, bytes, str]] = []
        self.count = 0

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.count += 1
            self.pending.append((msg.key(), msg.value(), str(err)))


class _Outbox:
    """The sending side of one ingest call: every message produced, and what became of it."""

    def __init__(self, producer: Any, topic: str, headers: Sequence[tuple[str, bytes]] | None,
                 messages_out: IO[str] | None) -> None:
        from confluent_kafka import KafkaException

        self._kafka_error = KafkaException
        self.producer = producer
        self.topic = topic
        self.headers = list(headers) if headers else None
        self.messages_out = messages_out
        self.failures = _Failures()
        self._on_delivery = self.failures.on_delivery
        #: Every produce() gets exactly one delivery report: after a complete flush
        #: acked = produced - reported failures (success reports may be switched off).
        self.produced = 0
        #: Messages emitted (first sends only, not retries).
        self.sent = 0

    @property
    def acked(self) -> int:
        return self.produced - self.failures.count

    def send(self, key: bytes | None, value: bytes) -> None:
        """Hand one message to the client, waiting while its local queue is full."""
        while True:
            try:
                self.producer.produce(self.topic, value=value, key=key, headers=self.headers,
                                      on_delivery=self._on_delivery)
                self.produced += 1
                return
            except BufferError:
                self.producer.poll(0.05)  # local queue full: serve deliveries, then retry
            except self._kafka_error as exc:
                raise PipelineStageError("ingest", f"cannot produce to {self.topic}: {exc}") from exc

    def emit(self, key: bytes | None, value: bytes) -> None:
        """Send a message for the first time (and write it to ``messages_out``)."""
        self.send(key, value)
        if self.messages_out is not None:
            text = value.decode("utf-8")
            # One JSON value a line: a JSON message as it is, a compact one as a JSON string.
            self.messages_out.write((json.dumps(text, ensure_ascii=False) if value.startswith(COMPACT_PREFIX)
                                     else text) + "\n")
        self.sent += 1


def _send_file(outbox: _Outbox, name: str, data: bytes, file_index: int, header: Header, stats: IngestStats, *,
               run_id: str, held_back: list[tuple[bytes | None, bytes]] | None,
               on_progress: Callable[[int], None] | None, stop_after: int | None) -> bool:
    """Encode and send (or hold back, for an arrival order) one file's records, profiling them into ``stats``.

    True when ``stop_after`` records have been sent: the caller then crashes the
    producer, and this file's profile is not added.
    """
    nulls = {c: 0 for c in COLUMNS}
    rows = malformed = 0
    for record in iter_records(data, source_file=name, file_index=file_index):
        rows += 1
        if record.fields is None:
            malformed += 1
        elif "" in record.fields:  # most records have no empty value: skip the per-column loop
            for col, value in zip(COLUMNS, record.fields):
                if value == "":
                    nulls[col] += 1
        key, value = encode(record, run_id)
        if held_back is not None:
            held_back.append((key, value))
            continue
        outbox.emit(key, value)
        if outbox.sent % 10_000 == 0:
            outbox.producer.poll(0)
            if on_progress:
                on_progress(outbox.sent)
        if stop_after is not None and outbox.sent >= stop_after:
            return True
    stats.records += rows
    stats.malformed += malformed
    stats.per_file.append({"name": name, "file_index": file_index, "rows_read": rows,
                           "rows_malformed": malformed, "null_counts": nulls,
                           "extra_columns": list(header.extra_columns), "columns": list(header.columns)})
    return False


def _emit_in_arrival_order(outbox: _Outbox, held_back: list[tuple[bytes | None, bytes]],
                           arrival_order: Sequence[int]) -> None:
    """Send the held-back messages, message ``i`` ranked by ``(arrival_order[i % len], i)``."""
    order = tuple(arrival_order)
    ranks = sorted(range(len(held_back)), key=lambda i: (order[i % len(order)], i))
    for i in ranks:
        outbox.emit(*held_back[i])


def _deliver(outbox: _Outbox, retry_rounds: int) -> None:
    """Flush, resend what failed for up to ``retry_rounds`` rounds; PipelineStageError if any is still unacknowledged."""
    _flush(outbox.producer, outbox.topic)
    failed = outbox.failures.pending
    for attempt in range(retry_rounds):
        if not failed:
            break
        retry, failed[:] = list(failed), []
        time.sleep(min(2.0 * (attempt + 1), 5.0))
        for key, value, _ in retry:
            outbox.send(key, value)
        _flush(outbox.producer, outbox.topic)
    if failed:
        positions = ", ".join(_position(v) for _, v, _ in failed[:10])
        raise PipelineStageError(
            "ingest", f"{len(failed)} message(s) not acknowledged by Kafka after {retry_rounds} "
            f"retry rounds (first: {positions}; last error: {failed[-1][2]})",
            hint="check the broker (pipeline-props services status); nothing was dropped silently")


def _flush(producer: Any, topic: str, timeout: float = 180.0) -> None:
    remaining = producer.flush(timeout)
    if remaining:
        raise PipelineStageError(
            "ingest", f"{remaining} message(s) to {topic} still queued after {timeout:.0f} s",
            hint="is the broker up? `pipeline-props services status`")


def _position(value: bytes) -> str:
    try:
        msg = decode(value)
        return f"{msg['file']} record {msg['record']}"
    except (ValueError, KeyError, TypeError):
        return "<undecodable>"


def topic_watermarks(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
    """Partition -> (low, high) watermark of ``topic`` now."""
    from confluent_kafka import Consumer, KafkaException

    consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": f"pp-offsets-{topic}",
                         "enable.auto.commit": False, "log_level": 3})
    try:
        return read_watermarks(consumer, topic, timeout)
    except KafkaException as exc:
        raise PipelineStageError("ingest", f"cannot read the offsets of topic {topic}: {exc}") from exc
    finally:
        consumer.close()


def topic_end_offsets(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> dict[int, int]:
    """Partition -> high watermark of ``topic`` now: everything produced so far ends before it."""
    return {pid: high for pid, (_, high) in topic_watermarks(bootstrap_servers, topic, timeout).items()}


def count_topic_messages(bootstrap_servers: str, topic: str, timeout: float = 10.0) -> int:
    """Messages in ``topic`` (sum over partitions of high - low watermarks)."""
    return sum(high - low for low, high in topic_watermarks(bootstrap_servers, topic, timeout).values())


def iter_jsonl(lines: Iterable[str]) -> Iterable[dict[str, Any]]:
    """Decode a kafka_messages.jsonl artifact: each line's message as a dict, whichever its form (messages.decode)."""
    for line in lines:
        if line.strip():
            value = json.loads(line)
            yield decode(value.encode("utf-8")) if isinstance(value, str) else value


__all__ = ["IngestStats", "PRODUCER_DEFAULTS", "Record", "check_headers", "count_topic_messages",
           "ingest_files", "topic_end_offsets", "topic_watermarks", "iter_jsonl", "read_dataset_files"]
