"""Rendering drawn records to CSV bytes, counting records, and showing bytes to people.

Rendering happens last, from structured draws, so the shrinker works on the
structure and the bytes follow. :func:`count_records` is a small independent
record splitter (contract section 1 and 6) used for ``SalesDataset.row_count``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline_props import contract as c

BOM = b"\xef\xbb\xbf"
_NEEDS_QUOTES = frozenset(',"\r\n')


def render_cell(value: str, *, quote: bool = False, pad: tuple[str, str] = ("", "")) -> bytes:
    """One field: quoted when forced or needed; padding goes inside quotes (outside it would
    make a quoted field malformed)."""
    if quote or any(ch in _NEEDS_QUOTES for ch in value):
        return ('"' + pad[0] + value.replace('"', '""') + pad[1] + '"').encode()
    return (pad[0] + value + pad[1]).encode()


@dataclass(frozen=True)
class Cells:
    """How one record is written: values by column and exceptions to the plain rules."""

    values: Mapping[str, str]
    raw: Mapping[str, bytes] = field(default_factory=dict)  # column -> exact bytes
    drop: frozenset[str] = frozenset()  # columns left out (too few fields)
    more: tuple[bytes, ...] = ()  # fields appended (too many fields)
    whole: bytes | None = None  # the entire record, bypassing everything
    quote_all: bool = False
    pads: Mapping[str, tuple[str, str]] = field(default_factory=dict)


def render_record(cells: Cells, columns: Sequence[str]) -> bytes:
    """The record's bytes (no terminator) for a header with ``columns``."""
    if cells.whole is not None:
        return cells.whole
    parts: list[bytes] = []
    for name in columns:
        if name in cells.drop:
            continue
        if name in cells.raw:
            parts.append(cells.raw[name])
        else:
            parts.append(render_cell(cells.values.get(name, ""), quote=cells.quote_all,
                                     pad=cells.pads.get(name, ("", ""))))
    parts.extend(cells.more)
    return b",".join(parts)


def render_header(columns: Sequence[str], *, quote: bool = False,
                  pads: Mapping[str, tuple[str, str]] | None = None) -> bytes:
    """The header record (names may be quoted or padded: both are still exact matches)."""
    pads = pads or {}
    return b",".join(render_cell(n, quote=quote, pad=pads.get(n, ("", ""))) for n in columns)


PLAIN_HEADER = render_header(c.COLUMNS)


def count_records(data: bytes) -> int:
    """Data records in one CSV file: records after the header, empty lines not counted.

    Implements the splitting rules of contract sections 1 and 6 on bytes: a field
    is quoted when its first byte is ``"``; after a closing quote anything but a
    delimiter or terminator turns the rest of the field into unquoted text; an
    open quote at the end of the file ends the last record.
    """
    if data.startswith(BOM):
        data = data[3:]
    records = 0
    length = 0  # bytes in the current record
    i, n = 0, len(data)
    state = "start"  # start | unquoted | quoted | closed
    while i < n:
        b = data[i]
        if state == "quoted":
            if b == 0x22:
                if i + 1 < n and data[i + 1] == 0x22:
                    i += 2
                    length += 2
                    continue
                state = "closed"
            i += 1
            length += 1
            continue
        if b in (0x0A, 0x0D):
            records += length > 0
            length = 0
            state = "start"
            i += 2 if b == 0x0D and i + 1 < n and data[i + 1] == 0x0A else 1
            continue
        if b == 0x2C:
            state = "start"
        elif state == "start":
            state = "quoted" if b == 0x22 else "unquoted"
        elif state == "closed":
            state = "unquoted"
        i += 1
        length += 1
    records += length > 0
    # The first record is the header (an empty first line is a refused file).
    if not data or data[:1] in (b"\r", b"\n"):
        return 0
    return max(records - 1, 0)


def escape_text(data: bytes) -> str:
    """Bytes as readable text: printable characters as is, the rest escaped."""
    out: list[str] = []
    text = data.decode("utf-8", "surrogateescape")
    for ch in text:
        cp = ord(ch)
        if 0xDC80 <= cp <= 0xDCFF:
            out.append(f"\\x{cp - 0xDC00:02x}")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch == " " or (ch.isprintable() and unicodedata.category(ch) not in ("Zl", "Zp")):
            out.append(ch)
        elif cp == 0xFEFF:
            out.append("\\ufeff")
        elif cp <= 0xFF:
            out.append(f"\\x{cp:02x}")
        elif cp <= 0xFFFF:
            out.append(f"\\u{cp:04x}")
        else:
            out.append(f"\\U{cp:08x}")
    return "".join(out)


def display_lines(data: bytes) -> list[str]:
    """Split at line ends (keeping them, escaped) so each record reads as one line."""
    lines: list[str] = []
    start = 0
    i = 0
    while i < len(data):
        b = data[i]
        if b in (0x0A, 0x0D):
            end = i + (2 if b == 0x0D and data[i + 1 : i + 2] == b"\n" else 1)
            lines.append(escape_text(data[start:end]))
            start = i = end
            continue
        i += 1
    if start < len(data):
        lines.append(escape_text(data[start:]))
    return lines
