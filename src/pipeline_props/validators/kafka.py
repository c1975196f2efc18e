"""Kafka stage: every record became one message, every message is in the topic and decodes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pipeline_props.contract import COLUMNS
from pipeline_props.pipeline.messages import COMPACT_PREFIX, COMPACT_VERSION, decode
from pipeline_props.validators.base import (
    PIPELINE,
    BaseDataValidator,
    CheckResult,
    Equation,
    StageResult,
    conservation_check,
    count,
    optional_count,
    raw_rows_read,
    register_validator,
)

MESSAGE_VERSION = 1
_COMPACT = COMPACT_PREFIX.decode()
_KEYS = frozenset({"v", "run", "file", "file_index", "record", "raw", "malformed", "fields"})
_EXAMPLES = 5  # bad messages quoted in the details


@register_validator
class KafkaStreamValidator(BaseDataValidator):
    """Checks ``validation_data["kafka"]``.

    Required: ``messages_produced`` (acknowledged by the broker),
    ``messages_in_topic``, ``rows_read`` (records the ingest read). Optional:
    ``partitions`` (reported), ``messages`` (an iterable of message values as
    bytes, JSON text or already-decoded dicts, e.g. the lines of
    kafka_messages.jsonl): when given, a ``schema_compliance`` check decodes
    each one against the message shape of docs/architecture.md.
    """

    stage = "kafka"

    def validate(self, data: Mapping[str, Any]) -> StageResult:
        """Row-count conservation raw -> producer -> topic, and message decoding when messages are given."""
        payload = self.payload(data)
        where = "validation_data['kafka']"
        produced = count(payload, "messages_produced", where)
        in_topic = count(payload, "messages_in_topic", where)
        rows_read = count(payload, "rows_read", where)
        equations = [
            Equation("kafka.messages_produced", produced, "kafka.rows_read", rows_read),
            Equation("kafka.messages_in_topic", in_topic, "kafka.messages_produced", produced),
        ]
        raw_total = raw_rows_read(data)
        if raw_total is not None:
            equations.insert(0, Equation("kafka.rows_read", rows_read, "raw.rows_read", raw_total))
        partitions = optional_count(payload, "partitions", where)
        checks = [conservation_check(equations, extra={"partitions": partitions})]
        messages = payload.get("messages")
        if messages is not None:
            checks.insert(0, _decode_check(messages, produced))
        return StageResult.from_checks(self.stage, checks)


def message_problem(value: bytes | str | Mapping[str, Any]) -> str | None:
    """Why ``value`` is not a well-formed pipeline message (docs/architecture.md), or None.

    Bytes or text are either form of the message (a kafka_messages.jsonl line
    holds a compact one as a JSON string); a mapping is a decoded one, as
    ``messages.decode`` gives it (version 2 has no ``run``).
    """
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            return f"not UTF-8 ({exc.__class__.__name__})"
    if isinstance(value, str) and not value.startswith(_COMPACT):
        try:
            value = json.loads(value)
        except ValueError as exc:
            return f"not UTF-8 JSON ({exc.__class__.__name__})"
    if isinstance(value, str) and value.startswith(_COMPACT):
        try:
            value = decode(value.encode("utf-8"))
        except ValueError:
            return "not a compact message (five parts, integers as written by the producer, twelve fields)"
    if not isinstance(value, Mapping):
        return "not a JSON object"
    compact = value.get("v") == COMPACT_VERSION and not isinstance(value.get("v"), bool)
    expected = _KEYS - {"run"} if compact else _KEYS
    if set(value) != expected:
        return f"keys {sorted(value)}, expected {sorted(expected)}"
    if not compact and (value["v"] != MESSAGE_VERSION or isinstance(value["v"], bool)):
        return f"v is {value['v']!r}, expected {MESSAGE_VERSION} or {COMPACT_VERSION}"
    for key in sorted(expected & {"run", "file", "raw"}):
        if not isinstance(value[key], str):
            return f"{key} is not a string"
    for key, least in (("file_index", 0), ("record", 1)):
        n = value[key]
        if isinstance(n, bool) or not isinstance(n, int) or n < least:
            return f"{key} is {n!r}, expected an integer >= {least}"
    malformed, fields = value["malformed"], value["fields"]
    if (malformed is None) == (fields is None):
        return "exactly one of malformed and fields must be null"
    if malformed is not None and not isinstance(malformed, str):
        return "malformed is not a string"
    if fields is not None:
        if not isinstance(fields, Mapping) or set(fields) != set(COLUMNS):
            return "fields does not hold exactly the twelve contract columns"
        if not all(isinstance(v, str) for v in fields.values()):
            return "a field value is not a string"
    return None


def _decode_check(messages: Iterable[Any], produced: int) -> CheckResult:
    total = bad = 0
    examples: list[dict[str, Any]] = []
    for value in messages:
        total += 1
        problem = message_problem(value)
        if problem is not None:
            bad += 1
            if len(examples) < _EXAMPLES:
                examples.append({"message": total, "problem": problem})
    return CheckResult(
        check_name="schema_compliance",
        passed=bad == 0,
        score=(total - bad) / total if total else 1.0,
        details={
            "kind": PIPELINE,
            "messages_checked": total,
            "messages_produced": produced,
            "messages_undecodable": bad,
            "examples": examples,
        },
    )
