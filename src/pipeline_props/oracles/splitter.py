"""The oracle's own CSV record splitter (contract section 1 and SPEC section 6).

Why not DuckDB's CSV reader: the contract defines what happens to *bad*
records, and no general CSV reader follows those rules. A stray quote inside
an unquoted field, text after a closing quote, a quoted field left open to the
end of the file (the whole rest of the file is then one malformed record),
bytes that are not valid UTF-8 (judged per record, never moving a record
boundary), and the exact raw text of every record (terminator excluded,
invalid bytes shown as U+FFFD) must all be reproduced precisely, and
DuckDB's reader either repairs, skips, re-synchronises or refuses such input.
So the oracle splits records itself, from the contract's text, and leaves all
typing and validation to SQL.

This module is written independently of ``pipeline_props.pipeline``: it is
the reference the pipeline's reader is compared against.

Records are found on bytes (delimiter, quote and terminators are ASCII): a
record ends at ``\\r\\n``, ``\\r`` or ``\\n`` outside quotes, or at the end of
the file. A field is quoted when its first byte is ``"``; ``""`` inside it is
one quote. Once a field has gone wrong (a quote inside an unquoted field, or
anything but a delimiter or line end after a closing quote) the rest of it is
unquoted text up to the next delimiter or line end. Empty lines are skipped
and not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from pipeline_props import contract
from pipeline_props.errors import InputError

BOM = b"\xef\xbb\xbf"
_TRIM = b" \t"
_QUOTE = 0x22
_COMMA = 0x2C
_CR = 0x0D
_LF = 0x0A

#: Bytes up to the first quote or line end: a record with no quote before its
#: line end is a plain record, split on commas in one step.
_PLAIN = re.compile(rb'[^"\r\n]*')
#: An unquoted field (or the gone-wrong rest of a field).
_UNQUOTED = re.compile(rb"[^,\r\n]*")
#: A closed quoted field. The possessive quantifiers matter: without them,
#: `"a""` at the end of the file would backtrack into a closed field `"a"`
#: followed by a stray quote instead of an escaped quote in an open field.
_QUOTED = re.compile(rb'"([^"]*+(?:""[^"]*+)*+)"')


class Record(NamedTuple):
    """One counted record of a file (the header excluded)."""

    file_index: int
    file_name: str
    record_number: int
    #: The record's bytes without terminator, decoded with U+FFFD replacement.
    raw: str
    #: Unquoted, trimmed field values, or None when the record is malformed.
    fields: tuple[str, ...] | None
    #: Why the record is MALFORMED_ROW (a short description), or None.
    malformed: str | None


@dataclass(frozen=True)
class Header:
    """A file's accepted header."""

    #: Trimmed column names in file order.
    names: tuple[str, ...]
    #: Offset (in the BOM-less bytes) of the first byte after the header record.
    body_start: int

    @property
    def extra_columns(self) -> tuple[str, ...]:
        """Columns that are not in the contract (schema drift), in file order."""
        return tuple(n for n in self.names if n not in contract.COLUMNS)


def strip_bom(data: bytes) -> bytes:
    """The file's bytes without a UTF-8 byte-order mark at the very start."""
    return data[len(BOM) :] if data.startswith(BOM) else data


def _after_terminator(data: bytes, end: int) -> int:
    """Offset after the terminator at ``end`` (``end`` itself at end of file)."""
    if end >= len(data):
        return len(data)
    if data[end] == _CR and end + 1 < len(data) and data[end + 1] == _LF:
        return end + 2
    return end + 1


def _scan(data: bytes, pos: int) -> tuple[int, int, list[bytes] | None, str | None]:
    """Read the non-empty record starting at ``pos``.

    Returns (end of record text, start of the next record, raw field bytes
    (still untrimmed) or None when a quote is left open, problem or None).
    """
    n = len(data)
    end = _PLAIN.match(data, pos).end()  # type: ignore[union-attr]
    if end == n or data[end] != _QUOTE:
        return end, _after_terminator(data, end), data[pos:end].split(b","), None

    fields: list[bytes] = []
    problem: str | None = None
    start = pos
    while True:
        if start < n and data[start] == _QUOTE:
            m = _QUOTED.match(data, start)
            if m is None:
                return n, n, None, "quoted field still open at end of file"
            value = m.group(1).replace(b'""', b'"')
            end = m.end()
            if end < n and data[end] not in (_COMMA, _CR, _LF):
                problem = problem or "text after a closing quote"
                end = _UNQUOTED.match(data, end).end()  # type: ignore[union-attr]
        else:
            end = _UNQUOTED.match(data, start).end()  # type: ignore[union-attr]
            value = data[start:end]
            if b'"' in value:
                problem = problem or "quote inside an unquoted field"
        fields.append(value)
        if end < n and data[end] == _COMMA:
            start = end + 1
            continue
        return end, _after_terminator(data, end), fields, problem


def read_header(file_name: str, data: bytes) -> Header:
    """Parse and check the header of a file's BOM-less bytes.

    Raises :class:`InputError` naming the file and the problem when the file
    must be refused (SPEC section 6).
    """
    if not data:
        raise InputError(file_name, "file has no bytes (after the byte-order mark): no header")
    if data[0] in (_CR, _LF):
        raise InputError(file_name, "header record is empty")
    end, body_start, fields, problem = _scan(data, 0)
    if fields is None or problem is not None:
        raise InputError(file_name, f"header record is malformed: {problem}")
    try:
        names = tuple(f.decode("utf-8").strip(" \t") for f in fields)
    except UnicodeDecodeError:
        raise InputError(file_name, "header record is not valid UTF-8") from None
    for i, name in enumerate(names):
        if not name:
            raise InputError(file_name, f"header name {i + 1} is empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(file_name, f"header name {name!r} repeats")
        seen.add(name)
    missing = [c for c in contract.COLUMNS if c not in seen]
    if missing:
        raise InputError(file_name, f"required column(s) missing from the header: {', '.join(missing)}")
    return Header(names, body_start)


def split_records(
    file_index: int, file_name: str, data: bytes, header: Header
) -> Iterator[Record]:
    """Every counted record after the header of a file's BOM-less bytes."""
    ncols = len(header.names)
    n = len(data)
    pos = header.body_start
    number = 0
    while pos < n:
        if data[pos] in (_CR, _LF):  # an empty line: skipped, not counted
            pos = _after_terminator(data, pos)
            continue
        end, nxt, fields, problem = _scan(data, pos)
        number += 1
        raw_bytes = data[pos:end]
        pos = nxt
        try:
            raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            problem = problem or "bytes that are not valid UTF-8"
        raw = raw_bytes.decode("utf-8", "replace")
        if problem is None and fields is not None and len(fields) != ncols:
            problem = f"field count {len(fields)}, header has {ncols}"
        if problem is not None or fields is None:
            yield Record(file_index, file_name, number, raw, None, problem)
        else:
            values = tuple(f.strip(_TRIM).decode("utf-8") for f in fields)
            yield Record(file_index, file_name, number, raw, values, None)


def needs_full_split(data: bytes) -> bool:
    """False when records are simply the ``\\n``-separated lines of ``data``.

    That holds for BOM-less bytes with no quote, no ``\\r`` and valid UTF-8;
    such files can be split by DuckDB itself (the oracle's fast path).
    """
    if b'"' in data or b"\r" in data:
        return True
    if data.isascii():  # valid UTF-8 without decoding (and allocating) the whole file
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def split_file(file_index: int, file_name: str, data: bytes) -> tuple[Header, list[Record]]:
    """Header and records of one file's bytes (BOM allowed): the slow, exact path."""
    body = strip_bom(data)
    header = read_header(file_name, body)
    return header, list(split_records(file_index, file_name, body, header))


def record_slices(data: bytes) -> tuple[bytes, list[bytes]]:
    """A file's bytes as (BOM + header record with its terminator, each counted record's bytes).

    A record's bytes run from its first byte to the start of the next record
    (its terminator and any empty lines after it included), so the slices
    concatenate back to the file. Raises InputError for a refused header.
    """
    bom = BOM if data.startswith(BOM) else b""
    body = data[len(bom):]
    header = read_header("x.csv", body)
    slices: list[bytes] = []
    pos = start = header.body_start
    while pos < len(body):
        if body[pos] in (0x0D, 0x0A):
            pos = _after_terminator(body, pos)
            continue
        _, pos, _, _ = _scan(body, pos)
        slices.append(body[start:pos])
        start = pos
    head = bom + body[: header.body_start]
    if slices:
        slices[-1] += body[start:]
    else:  # only empty lines after the header
        head += body[start:]
    return head, slices


__all__ = [
    "BOM",
    "Header",
    "Record",
    "record_slices",
    "needs_full_split",
    "read_header",
    "split_file",
    "split_records",
    "strip_bom",
]
