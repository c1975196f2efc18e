"""The pipeline's CSV reader: bytes -> header + records (contract section 1, SPEC section 6).

The reader works on bytes, so an invalid UTF-8 byte never moves a record
boundary. Two paths produce records and must agree exactly:

* the fast path handles every stretch of the file that holds no double quote:
  it decodes the stretch in one call, splits it on terminators and commas
  with ``str.split`` and checks UTF-8 validity once per stretch (per line only
  when the stretch holds an invalid byte);
* the careful path (:func:`_read_record`) is the state machine of RFC 4180 plus
  the contract's recovery rules; it reads every record that contains a quote,
  the header, and, in tests, every record (:func:`_iter_records_careful`).

Malformed-row descriptions are chosen in this order: the first structural
problem of the record (stray quote, text after a closing quote, unclosed
quote), else invalid UTF-8, else a field count that differs from the header's.
"""

from __future__ import annotations

import codecs
import gc
import re
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

from pipeline_props.contract import COLUMNS
from pipeline_props.errors import InputError

__all__ = ["Header", "Record", "iter_records", "parse_header", "read_file"]

_QUOTE = 0x22
_COMMA = 0x2C
_CR = 0x0D
_LF = 0x0A
_BOM = codecs.BOM_UTF8
_TRIM = " \t"
_COLUMN_SET = frozenset(COLUMNS)

# Field text up to the next delimiter, line end or quote (a fresh unquoted field),
# and up to the next delimiter or line end only (the rest of a field gone wrong).
_UNQUOTED = re.compile(rb'[^,\r\n"]*')
_REST = re.compile(rb"[^,\r\n]*")
# A record with nothing wrong in its structure: every field either unquoted
# without quotes, or quoted and closed right before a delimiter or line end.
# ("[^"]*(?:""[^"]*)*" is the unrolled, linear-time form of "(?:[^"]|"")*".)
_QUOTED = rb'"[^"]*(?:""[^"]*)*"'
_WELL_FORMED = re.compile(
    rb"(?:%s|[^,\"\r\n]*)(?:,(?:%s|[^,\"\r\n]*))*(?=[\r\n]|\Z)" % (_QUOTED, _QUOTED)
)
# The fields of a well-formed record's text: (content of a quoted field, unquoted field).
_FIELD = re.compile(r'(?:^|,)(?:"([^"]*(?:""[^"]*)*)"|([^,"\r\n]*))')
# Lone surrogates are what "surrogateescape" makes of bytes that are not UTF-8.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")

INVALID_UTF8 = "invalid UTF-8"
UNCLOSED_QUOTE = "unclosed quote at end of file"


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a file after the header (empty lines are not records)."""

    file_index: int
    source_file: str
    record_number: int
    raw: str
    fields: tuple[str, ...] | None
    malformed: str | None

    @property
    def event_id(self) -> str | None:
        """The trimmed event_id field, or None when malformed or empty."""
        fields = self.fields
        if fields is None or not fields[0]:
            return None
        return fields[0]


@dataclass(frozen=True)
class Header:
    """The header of one file and where each contract column sits in its records."""

    source_file: str
    columns: tuple[str, ...]
    positions: tuple[int, ...]
    extra_columns: tuple[str, ...]


class _RecordSlots:
    """The slots of :class:`Record`, writable.

    A frozen dataclass's ``__init__`` goes through ``object.__setattr__`` once
    per field, which cost more than half of the fast path's time per row. The
    fast path instead fills one of these with plain attribute stores and then
    turns it into a Record by assigning ``__class__`` (allowed because the two
    classes have the same slots). test_reader checks the result is an ordinary
    Record: equal, hashable, frozen.
    """

    __slots__ = Record.__slots__
    file_index: int
    source_file: str
    record_number: int
    raw: str
    fields: tuple[str, ...] | None
    malformed: str | None


_new = object.__new__


def _make_record(
    file_index: int,
    source_file: str,
    record_number: int,
    raw: str,
    fields: tuple[str, ...] | None,
    malformed: str | None,
) -> Record:
    """Record(...), built the fast path's way."""
    record = _new(_RecordSlots)
    record.file_index = file_index
    record.source_file = source_file
    record.record_number = record_number
    record.raw = raw
    record.fields = fields
    record.malformed = malformed
    record.__class__ = Record  # type: ignore[assignment]
    return record  # type: ignore[return-value]


def _read_record(data: bytes, pos: int) -> tuple[int, int, list[bytes], str | None]:
    """Read one record starting at ``pos`` (not a terminator) with the careful state machine.

    Returns (end of the record's bytes, start of the next record, the field
    values unquoted but not trimmed, the first structural problem or None).
    """
    end = len(data)
    values: list[bytes] = []
    problem: str | None = None
    p = pos
    while True:
        if p < end and data[p] == _QUOTE:
            pieces: list[bytes] = []
            q = p + 1
            while True:
                c = data.find(b'"', q)
                if c < 0:
                    # Still open at the end of the file: the rest is this record.
                    pieces.append(data[q:])
                    values.append(b"".join(pieces))
                    return end, end, values, problem or UNCLOSED_QUOTE
                pieces.append(data[q:c])
                if c + 1 < end and data[c + 1] == _QUOTE:
                    pieces.append(b'"')
                    q = c + 2
                    continue
                p = c + 1
                break
            if p < end and data[p] not in (_COMMA, _CR, _LF):
                if problem is None:
                    problem = f"text after closing quote in field {len(values) + 1}"
                rest_end = _REST.match(data, p).end()  # type: ignore[union-attr]
                pieces.append(data[p:rest_end])
                p = rest_end
            values.append(b"".join(pieces))
        else:
            e = _UNQUOTED.match(data, p).end()  # type: ignore[union-attr]
            if e < end and data[e] == _QUOTE:
                if problem is None:
                    problem = f"quote inside unquoted field {len(values) + 1}"
                e = _REST.match(data, e).end()  # type: ignore[union-attr]
            values.append(data[p:e])
            p = e
        if p >= end:
            return end, end, values, problem
        c = data[p]
        if c == _COMMA:
            p += 1
            continue
        record_end = p
        p += 2 if c == _CR and p + 1 < end and data[p + 1] == _LF else 1
        return record_end, p, values, problem


def _refuse(source_file: str, problem: str) -> InputError:
    return InputError(source_file, problem)


def parse_header(data: bytes, source_file: str) -> tuple[Header, int]:
    """Read and check the header of a file's bytes.

    Returns the header and the byte offset where the records start. Raises
    :class:`InputError` naming the file and the problem when the file must be
    refused (SPEC section 6): no bytes after the BOM, an empty first record, a
    malformed header record (invalid UTF-8 included), an empty or repeated
    name after trimming, or a missing required column.
    """
    start = len(_BOM) if data.startswith(_BOM) else 0
    if start >= len(data):
        what = "file has no bytes after the byte-order mark" if start else "file is empty"
        raise _refuse(source_file, f"{what}; a header record is required")
    if data[start] in (_CR, _LF):
        raise _refuse(source_file, "the first record (the header) is empty")
    record_end, next_pos, values, problem = _read_record(data, start)
    if problem is not None:
        raise _refuse(source_file, f"header record is malformed: {problem}")
    try:
        data[start:record_end].decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = data[start + exc.start : start + exc.end]
        raise _refuse(
            source_file,
            f"header record is malformed: invalid UTF-8 (bytes {bad.hex(' ')} at byte "
            f"{start + exc.start} of the file)",
        ) from None
    names = tuple(value.decode("utf-8").strip(_TRIM) for value in values)
    index: dict[str, int] = {}
    for i, name in enumerate(names):
        if not name:
            raise _refuse(
                source_file, f"header column {i + 1} has an empty name; header has: {_show(names)}"
            )
        if name in index:
            raise _refuse(
                source_file,
                f"header name {name!r} repeats (columns {index[name] + 1} and {i + 1}); "
                f"header has: {_show(names)}",
            )
        index[name] = i
    missing = [column for column in COLUMNS if column not in index]
    if missing:
        listed = ", ".join(repr(column) for column in missing)
        noun = "column" if len(missing) == 1 else "columns"
        raise _refuse(
            source_file,
            f"required {noun} {listed} missing from header; header has: {_show(names)}",
        )
    header = Header(
        source_file=source_file,
        columns=names,
        positions=tuple(index[column] for column in COLUMNS),
        extra_columns=tuple(name for name in names if name not in _COLUMN_SET),
    )
    return header, next_pos


def _show(names: tuple[str, ...]) -> str:
    return ", ".join(repr(name) for name in names)


def _careful_record(
    data: bytes,
    pos: int,
    header: Header,
    file_index: int,
    source_file: str,
    record_number: int,
) -> tuple[Record, int]:
    """Build the Record starting at ``pos`` with the careful state machine; also return the next offset.

    A record whose structure is sound (the common case) is read by two
    regular expressions instead of the state machine's loop per field.
    """
    count = len(header.columns)
    fields: tuple[str, ...] | None = None
    problem: str | None = None
    well_formed = _WELL_FORMED.match(data, pos)
    if well_formed is not None:
        record_end = well_formed.end()
        if record_end == len(data):
            next_pos = record_end
        elif data[record_end] == _CR and data[record_end + 1 : record_end + 2] == b"\n":
            next_pos = record_end + 2
        else:
            next_pos = record_end + 1
        raw_bytes = data[pos:record_end]
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raw = raw_bytes.decode("utf-8", "replace")
            problem = INVALID_UTF8
        else:
            values = _split_well_formed(raw, count)
            if len(values) != count:
                problem = f"field count {len(values)}, header has {count}"
            else:
                picked = (values[i] for i in header.positions)
                if " " in raw or "\t" in raw:
                    fields = tuple([value.strip(_TRIM) for value in picked])
                else:
                    fields = tuple(picked)
        return _make_record(file_index, source_file, record_number, raw, fields, problem), next_pos
    record_end, next_pos, values, problem = _read_record(data, pos)
    raw_bytes = data[pos:record_end]
    try:
        raw = raw_bytes.decode("utf-8")
    except UnicodeDecodeError:
        raw = raw_bytes.decode("utf-8", "replace")
        problem = problem or INVALID_UTF8
    if problem is None and len(values) != count:
        problem = f"field count {len(values)}, header has {count}"
    if problem is None:
        # Each value is a slice of valid UTF-8 cut at ASCII bytes, so valid itself.
        fields = tuple(values[i].decode("utf-8").strip(_TRIM) for i in header.positions)
    return _make_record(file_index, source_file, record_number, raw, fields, problem), next_pos


def _split_well_formed(raw: str, count: int) -> list[str]:
    """The unquoted (untrimmed) fields of a record that matched _WELL_FORMED."""
    if raw[0] == '"' and raw[-1] == '"':
        # Every field quoted (a writer that quotes everything), and if the only
        # quotes are those around the fields, splitting on '","' is exact.
        inner = raw[1:-1]
        if inner.count('"') == 2 * (count - 1):
            values = inner.split('","')
            if len(values) == count:
                return values
    if '""' not in raw:
        return [quoted or unquoted for quoted, unquoted in _FIELD.findall(raw)]
    return [
        quoted.replace('""', '"') if quoted else unquoted
        for quoted, unquoted in _FIELD.findall(raw)
    ]


def _decode_stretch(stretch: bytes) -> tuple[str, bool, bool]:
    """Decode a stretch without quotes for the fast path.

    Returns its text with every terminator turned into ``\n``, whether it
    holds bytes that are not UTF-8 (then kept as lone surrogates by
    "surrogateescape", one per byte), and whether any field in it may need
    trimming.
    """
    try:
        text = stretch.decode("utf-8")
        has_invalid = False
    except UnicodeDecodeError:
        text = stretch.decode("utf-8", "surrogateescape")
        has_invalid = True
    if "\r" in text:
        # "\r\n" first, so that it stays one terminator.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    needs_trim = (
        "\t" in text
        or " ," in text
        or ", " in text
        or " \n" in text
        or "\n " in text
        or text.startswith(" ")
        or text.endswith(" ")
    )
    return text, has_invalid, needs_trim


def _iter_body(
    data: bytes,
    start: int,
    header: Header,
    *,
    source_file: str,
    file_index: int,
    fast: bool,
) -> Iterator[Record]:
    """Records from ``start`` to the end of ``data``.

    With ``fast``, each stretch of lines without a quote is split with
    ``str.split`` and only a record holding a quote goes through the careful
    state machine; without it, every record does.
    """
    count = len(header.columns)
    positions = header.positions
    identity = positions == tuple(range(count))
    pick = itemgetter(*positions)
    new = _new
    slots = _RecordSlots
    end = len(data)
    pos = start
    record_number = 0
    while pos < end:
        if fast:
            quote = data.find(b'"', pos)
            if quote < 0:
                stretch_end = end
            else:
                # Start of the line holding the quote: after the last terminator before it.
                line_start = max(data.rfind(b"\n", pos, quote), data.rfind(b"\r", pos, quote)) + 1
                stretch_end = max(line_start, pos)
            if stretch_end > pos:
                text, has_invalid, needs_trim = _decode_stretch(data[pos:stretch_end])
                pos = stretch_end
                for line in text.split("\n"):
                    if not line:
                        continue  # an empty line, or what follows the final terminator
                    record_number += 1
                    # _make_record, inlined: this loop runs once per row.
                    record = new(slots)
                    record.file_index = file_index
                    record.source_file = source_file
                    record.record_number = record_number
                    if has_invalid and _ESCAPED_BYTE.search(line) is not None:
                        record.raw = line.encode("utf-8", "surrogateescape").decode(
                            "utf-8", "replace"
                        )
                        record.fields = None
                        record.malformed = INVALID_UTF8
                    else:
                        record.raw = line
                        parts = line.split(",")
                        if len(parts) != count:
                            record.fields = None
                            record.malformed = f"field count {len(parts)}, header has {count}"
                        elif needs_trim:
                            record.fields = tuple([value.strip(_TRIM) for value in pick(parts)])
                            record.malformed = None
                        else:
                            record.fields = tuple(parts) if identity else pick(parts)
                            record.malformed = None
                    record.__class__ = Record
                    yield record  # type: ignore[misc]
            if quote < 0:
                return
        else:
            c = data[pos]
            if c == _CR or c == _LF:
                pos += 2 if c == _CR and pos + 1 < end and data[pos + 1] == _LF else 1
                continue  # an empty line
        record_number += 1
        record, pos = _careful_record(data, pos, header, file_index, source_file, record_number)
        yield record


def iter_records(data: bytes, *, source_file: str, file_index: int = 0) -> Iterator[Record]:
    """Check the header of a file's bytes, then return an iterator over its records.

    The header is checked before this returns, so a refused file raises
    :class:`InputError` before any record exists. ``source_file`` is the base
    name recorded in each record.
    """
    header, start = parse_header(data, source_file)
    return _iter_body(
        data, start, header, source_file=source_file, file_index=file_index, fast=True
    )


def _iter_records_careful(data: bytes, *, source_file: str, file_index: int = 0) -> Iterator[Record]:
    """Like :func:`iter_records` but every record goes through the careful state machine (tests)."""
    header, start = parse_header(data, source_file)
    return _iter_body(
        data, start, header, source_file=source_file, file_index=file_index, fast=False
    )


def read_file(path: str | Path, *, file_index: int = 0) -> tuple[Header, list[Record]]:
    """Read a whole CSV file: its header and all its records.

    Raises :class:`InputError` naming the path when the file cannot be read or
    is refused.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(path, f"cannot read the file: {exc.strerror or exc}") from None
    try:
        header, start = parse_header(data, path.name)
    except InputError as exc:
        raise InputError(path, exc.problem) from None
    records = _iter_body(
        data, start, header, source_file=path.name, file_index=file_index, fast=True
    )
    # Building a million tracked objects would trigger full collections over
    # and over, for nothing: records hold no cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return header, list(records)
    finally:
        if was_enabled:
            gc.enable()
