"""The Kafka message of one record (docs/architecture.md, "Kafka message").

Key: the trimmed event_id as UTF-8, or None for a malformed record or an
empty event_id. Value: compact UTF-8 JSON (no spaces, non-ASCII kept as is)

    {"v":1,"run":...,"file":...,"file_index":...,"record":...,"raw":...,
     "malformed":...,"fields":{"event_id":...,...,"event_time":...}}

with ``fields`` null for a malformed record. :func:`encode` builds the text
itself, byte for byte what ``json.dumps(..., separators=(",", ":"),
ensure_ascii=False)`` gives for that dict (test_messages holds it to that),
because the producer encodes every row and json.dumps of a nested dict costs
several times more.
"""

from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Final

from pipeline_props.contract import COLUMNS
from pipeline_props.pipeline.reader import Record

__all__ = ["MESSAGE_VERSION", "NAMESPACE_HEADER", "decode", "encode"]

MESSAGE_VERSION: Final = 1

#: Kafka header naming the namespace (dataset) a message belongs to, on topics
#: that several namespaces share (pipeline/stream.py routes rows by it). A
#: header and not a JSON field: a value too broken to parse is still routed.
NAMESPACE_HEADER: Final = "pp-namespace"

# '{"event_id":%s,"order_id":%s,...,"event_time":%s}', filled with JSON strings.
_FIELDS_TEMPLATE: Final = (
    "{" + ",".join(f"{encode_basestring(column)}:%s" for column in COLUMNS) + "}"
)


@lru_cache(maxsize=256)
def _prefix(run_id: str, source_file: str, file_index: int) -> str:
    return (
        f'{{"v":{MESSAGE_VERSION},"run":{encode_basestring(run_id)},'
        f'"file":{encode_basestring(source_file)},"file_index":{int(file_index)},"record":'
    )


# The columns _plain_fields writes, spelled out for speed; checked against the contract.
_PLAIN_COLUMNS: Final = (
    "event_id", "order_id", "customer_id", "product_id", "category", "region",
    "channel", "quantity", "unit_price", "discount", "currency", "event_time",
)  # fmt: skip
if _PLAIN_COLUMNS != COLUMNS:  # pragma: no cover - guards an edit of contract.COLUMNS
    raise RuntimeError("messages._plain_fields is out of date with contract.COLUMNS")


def encode(record: Record, run_id: str) -> tuple[bytes | None, bytes]:
    """Encode a record as a Kafka (key, value) pair for run ``run_id``."""
    fields = record.fields
    malformed = record.malformed
    head = (
        f"{_prefix(run_id, record.source_file, record.file_index)}{int(record.record_number)}"
        f',"raw":{encode_basestring(record.raw)},"malformed":'
        f'{"null" if malformed is None else encode_basestring(malformed)},"fields":'
    )
    key = None
    if fields is None:
        text = head + "null}"
    else:
        if fields[0]:
            key = fields[0].encode("utf-8")
        # JSON escapes character by character, so when the values joined by a
        # comma (never escaped) need no escaping, no single value does.
        joined = ",".join(fields)
        if len(encode_basestring(joined)) == len(joined) + 2:
            text = _plain_fields(head, *fields)
        else:
            text = f"{head}{_FIELDS_TEMPLATE % tuple(map(encode_basestring, fields))}}}"
    try:
        value = text.encode("utf-8")
    except UnicodeEncodeError:
        # Only a lone surrogate gets here (a file name read with surrogateescape);
        # "\udcff" is a valid JSON escape for it, so the message stays JSON.
        value = text.encode("utf-8", "backslashreplace")
    return key, value


def _plain_fields(
    head: str, a: str, b: str, c: str, d: str, e: str, f: str,
    g: str, h: str, i: str, j: str, k: str, m: str,
) -> str:  # fmt: skip
    # One f-string: about twice as fast as _FIELDS_TEMPLATE % fields.
    return (
        f'{head}{{"event_id":"{a}","order_id":"{b}","customer_id":"{c}","product_id":"{d}",'
        f'"category":"{e}","region":"{f}","channel":"{g}","quantity":"{h}",'
        f'"unit_price":"{i}","discount":"{j}","currency":"{k}","event_time":"{m}"}}}}'
    )


def decode(value: bytes) -> dict[str, Any]:
    """Parse a message value back into its dict (the inverse of :func:`encode`).

    Raises ValueError when the value is not JSON or not a JSON object.
    """
    message = json.loads(value)
    if not isinstance(message, dict):
        raise ValueError(f"Kafka message value is not a JSON object: {value[:80]!r}")
    return message
