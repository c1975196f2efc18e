"""The Kafka message of one record (docs/architecture.md, "Kafka message").

Key: the trimmed event_id as UTF-8, or None for a malformed record or an
empty event_id. Value, in one of two forms. The compact form, for a record
whose raw text is exactly its twelve fields joined by commas (no quotes, no
padding, no extra columns, the contract's column order) from a file whose
name holds no comma or line break:

    #2,<file_index>,<record>,<file>,<raw>

and otherwise compact UTF-8 JSON (no spaces, non-ASCII kept as is)

    {"v":1,"run":...,"file":...,"file_index":...,"record":...,"raw":...,
     "malformed":...,"fields":{"event_id":...,...,"event_time":...}}

with ``fields`` null for a malformed record. :func:`encode` builds the text
itself, byte for byte what ``json.dumps(..., separators=(",", ":"),
ensure_ascii=False)`` gives for that dict (test_messages holds it to that),
because the producer encodes every row and json.dumps of a nested dict costs
several times more.

Why two forms: the transform splits a compact value on commas instead of
running a JSON parser per message, and the value is a third of the JSON's
size (1M rows: the Spark stage 1.9-2.0 s against 3.6-3.7 s on 2 cores). JSON
stays for every record that a comma split could not give back exactly.
"""

from __future__ import annotations

import json
from functools import lru_cache
from json.encoder import encode_basestring
from typing import Any, Final

from pipeline_props.contract import COLUMNS
from pipeline_props.pipeline.reader import Record

__all__ = ["COMPACT_PREFIX", "COMPACT_VERSION", "MESSAGE_VERSION", "NAMESPACE_HEADER", "decode", "encode",
           "position"]

MESSAGE_VERSION: Final = 1
#: The compact form's version, and the bytes every compact value starts with.
COMPACT_VERSION: Final = 2
COMPACT_PREFIX: Final = b"#2,"

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


@lru_cache(maxsize=256)
def _compact_parts(source_file: str, file_index: int) -> tuple[str, str] | None:
    """('#2,<file_index>,', ',<file>,'), the text around the record number; None when the name cannot be compact."""
    if "," in source_file or "\n" in source_file or "\r" in source_file:
        return None
    try:
        source_file.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (a name read with surrogateescape)
        return None
    return f"#2,{int(file_index)},", f",{source_file},"


def encode(record: Record, run_id: str) -> tuple[bytes | None, bytes]:
    """Encode a record as a Kafka (key, value) pair for run ``run_id`` (compact when it can be)."""
    fields = record.fields
    malformed = record.malformed
    if fields is not None and malformed is None:
        raw = record.raw
        parts = _compact_parts(record.source_file, record.file_index)
        # Equal to the joined fields: no field holds a comma (it would be quoted),
        # so a split on commas gives the twelve fields back exactly.
        if parts is not None and raw == ",".join(fields) and "\n" not in raw and "\r" not in raw:
            try:
                value = f"{parts[0]}{int(record.record_number)}{parts[1]}{raw}".encode("utf-8")
            except UnicodeEncodeError:
                pass  # a lone surrogate in a field: JSON escapes it
            else:
                return (fields[0].encode("utf-8") if fields[0] else None), value
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


def position(value: bytes) -> tuple[int, int] | None:
    """(file_index, record) of a message value, as the transform reads it; None when it has none."""
    if value.startswith(COMPACT_PREFIX):
        try:
            parts = value.decode("utf-8").split(",", 4)
        except UnicodeDecodeError:  # the transform reads it as JSON, which it is not
            return None
        if len(parts) != 5 or not (_canonical(parts[1]) and _canonical(parts[2])) or int(parts[1]) < 0:
            return None
        return int(parts[1]), int(parts[2])
    try:
        message = json.loads(value)
        index, record = message["file_index"], message["record"]
    except (ValueError, TypeError, KeyError):
        return None
    if not (isinstance(index, int) and isinstance(record, int)) or isinstance(index, bool) \
            or isinstance(record, bool) or index < 0 or not isinstance(message.get("file"), str):
        return None
    return index, record


def _canonical(text: str) -> bool:
    """True for an integer written as Spark's CAST to string writes it (the transform checks the same)."""
    try:
        return str(int(text)) == text
    except ValueError:
        return False


def decode(value: bytes) -> dict[str, Any]:
    """Parse a message value back into its dict (the inverse of :func:`encode`).

    A compact value gives the JSON form's dict with ``"v": 2``, no ``run``,
    ``malformed`` null and the fields split from ``raw``. Raises ValueError
    when the value is neither form.
    """
    if value.startswith(COMPACT_PREFIX):
        at = position(value)
        parts = value.decode("utf-8", "replace").split(",", 4)
        fields = parts[4].split(",") if len(parts) == 5 else []
        if at is None or len(fields) != len(COLUMNS):
            raise ValueError(f"not a compact Kafka message: {value[:80]!r}")
        return {"v": COMPACT_VERSION, "file": parts[3], "file_index": at[0], "record": at[1], "raw": parts[4],
                "malformed": None, "fields": dict(zip(COLUMNS, fields))}
    message = json.loads(value)
    if not isinstance(message, dict):
        raise ValueError(f"Kafka message value is not a JSON object: {value[:80]!r}")
    return message
