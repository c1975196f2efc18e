"""File- and row-level formatting, and rendering one file's rows to bytes.

Formatting never changes what a row means (contract section 1): BOM, line
ends, quoting, padding with spaces and tabs, column order, extra columns
(ignored, reported as schema drift) and empty lines. The default of each is
the plain form, so it all shrinks away.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st

from pipeline_props import contract as c
from pipeline_props.strategies._records import note
from pipeline_props.strategies._render import BOM, Cells, render_header, render_record
from pipeline_props.strategies._text import CONTROLS, TEXT_CHAR

# --- formats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    """File-level formatting; the default is the plain form."""

    bom: bool = False
    line_end: str = "\n"  # "\n", "\r\n", "\r" or "mixed"
    final_terminator: bool = True
    columns: tuple[str, ...] = c.COLUMNS  # header order, extra columns included
    quote_header: bool = False
    pad_header: bool = False
    trailing_blank: int = 0
    repeat_previous: bool = False  # this file is the previous one again (same name, bytes)


PLAIN_FORMAT = FileFormat()
_MIXED = ("\r\n", "\n", "\r")  # never "\r" then "\n": that would be one CRLF terminator
# Header names match exactly after trimming spaces and tabs only: a name that a
# normalising or case-folding reader would take for event_id is an extra column.
_LOOKALIKE_NAMES = ("Event_ID", "event_id\u00a0", "\uff45vent_id", "event_\u0131d",
                    "\u200bevent_id")
_EXTRA_NAMES = ("note", "store_id", *_LOOKALIKE_NAMES, "ünïcode", "x,y", 'say "hi"', "_")


@st.composite
def _format_draw(draw: st.DrawFn) -> FileFormat:
    if not draw(st.integers(0, 2)):
        return PLAIN_FORMAT
    columns = list(draw(st.permutations(c.COLUMNS)))
    extras = draw(st.lists(st.sampled_from(_EXTRA_NAMES), max_size=2, unique=True))
    for name in extras:
        columns.insert(draw(st.integers(0, len(columns))), name)
    fmt = FileFormat(
        bom=draw(st.booleans()),
        line_end=draw(st.sampled_from(("\n", "\r\n", "\r", "mixed"))),
        final_terminator=not draw(st.booleans()),
        columns=tuple(columns),
        quote_header=draw(st.booleans()),
        pad_header=draw(st.booleans()),
        trailing_blank=draw(st.integers(0, 2)),
    )
    return fmt


_FORMATS = _format_draw()


def _format_events(fmt: FileFormat) -> None:
    if fmt.bom:
        note("format: BOM")
    note({"\n": "format: LF", "\r\n": "format: CRLF", "\r": "format: CR",
          "mixed": "format: mixed line ends"}[fmt.line_end])
    if not fmt.final_terminator:
        note("format: no final terminator")
    extra = set(fmt.columns) - set(c.COLUMNS)
    if extra:
        note("format: extra columns")
    if extra & set(_LOOKALIKE_NAMES):
        note("format: lookalike header name")
    if tuple(n for n in fmt.columns if n in c.COLUMNS) != c.COLUMNS:
        note("format: shuffled columns")
    if fmt.quote_header or fmt.pad_header:
        note("format: quoted or padded header")
    if fmt.trailing_blank:
        note("format: empty lines")


@dataclass(frozen=True)
class _Look:
    """Row-level formatting."""

    quote_all: bool = False
    pads: tuple[tuple[str, tuple[str, str]], ...] = ()
    extras: tuple[str, ...] = ()  # values for extra columns, by position
    blank_before: int = 0


PLAIN_LOOK = _Look()
_PADS = (" ", "\t", "  ", " \t")
_EXTRA_VALUES = ("x", "", "a,b", 'q"uote', "line\nbreak", "cr\r\nlf", "\u00e9t\u00e9")
_CONTROL_CHARS = st.sampled_from([ch for chars in CONTROLS.values() for ch in chars])


@st.composite
def _with_control(draw: st.DrawFn) -> str:
    return draw(st.text(TEXT_CHAR, max_size=3)) + draw(_CONTROL_CHARS)


# Extra columns are ignored, so any text is fine there, control characters included.
# (Composites, not st.tuples or st.builds: those add spans to Hypothesis' explain phase.)
_EXTRA_TEXT = st.one_of(st.sampled_from(_EXTRA_VALUES), st.text(TEXT_CHAR, max_size=6),
                        _with_control())


_PAD = st.sampled_from(("", *_PADS))


@st.composite
def _pad_item(draw: st.DrawFn) -> tuple[str, tuple[str, str]]:
    return draw(st.sampled_from(c.COLUMNS)), (draw(_PAD), draw(_PAD))


_PAD_ITEMS = _pad_item()


@st.composite
def _look_draw(draw: st.DrawFn) -> _Look:
    if not draw(st.integers(0, 2)):
        return PLAIN_LOOK
    pads = draw(st.lists(_PAD_ITEMS, max_size=3, unique_by=lambda item: item[0]))
    return _Look(
        quote_all=draw(st.booleans()),
        pads=tuple(sorted(pads)),
        extras=tuple(draw(st.lists(_EXTRA_TEXT, max_size=2))),
        blank_before=draw(st.integers(0, 2)),
    )


_LOOKS = _look_draw()



@dataclass(frozen=True)
class _Row:
    file: int
    cells: Cells
    look: _Look
    unclosed: bool = False


def _render_file(fmt: FileFormat, rows: list[_Row]) -> bytes:
    extras = [n for n in fmt.columns if n not in c.COLUMNS]
    # An unclosed quote swallows the rest of the file: keep one, last; others get closed
    # with text after the quote (still MALFORMED_ROW, so every record keeps its reason).
    ordered = [row for row in rows if not row.unclosed]
    opened = [row for row in rows if row.unclosed]
    for row in opened[1:]:
        raw = {k: v + b'"x' for k, v in row.cells.raw.items()}
        ordered.append(replace(row, cells=replace(row.cells, raw=raw), unclosed=False))
    if opened:
        ordered.append(opened[0])
        note("format: unclosed quote ends the file")

    header_pads = {n: (" ", "\t") for n in fmt.columns} if fmt.pad_header else None
    parts: list[bytes] = [render_header(fmt.columns, quote=fmt.quote_header, pads=header_pads)]
    for row in ordered:
        parts.extend([b""] * row.look.blank_before)
        cells = row.cells
        if extras:
            values = dict(cells.values)
            for i, name in enumerate(extras):
                values[name] = row.look.extras[i] if i < len(row.look.extras) else ""
            cells = replace(cells, values=values)
        parts.append(render_record(cells, fmt.columns))
    parts.extend([b""] * fmt.trailing_blank)

    out = bytearray(BOM if fmt.bom else b"")
    for i, part in enumerate(parts):
        out += part
        last = i == len(parts) - 1
        if not last or fmt.final_terminator or part == b"":
            out += _terminator(fmt.line_end, i).encode()
    return bytes(out)


def _terminator(line_end: str, k: int) -> str:
    return _MIXED[k % 3] if line_end == "mixed" else line_end
