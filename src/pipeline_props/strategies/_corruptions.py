"""Records that must be rejected, one strategy per reason (contract sections 1 and 2).

A corrupted record is a valid plain sale with exactly one thing broken, so the
reason it claims is the only one it can get: one column's value for the
reason codes of section 2 (every other column stays valid, so "first failing
column" is that column), or one malformation of section 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_props import contract as c
from pipeline_props.strategies._keys import PLAIN_CATEGORIES, Keys, Order
from pipeline_props.strategies._records import note, sale_line, spell
from pipeline_props.strategies._render import Cells, render_record
from pipeline_props.strategies._coverage import TEXT_COLUMNS as _TEXT_COLUMNS
from pipeline_props.strategies._coverage import bad_value_labels
from pipeline_props.strategies._text import BAD_TEXT_KINDS, CONTROLS, bad_text_ids

#: Columns each reason code of section 2 applies to.
REASON_COLUMNS: dict[str, tuple[str, ...]] = {
    c.MISSING_FIELD: tuple(col for col in c.COLUMNS if col not in c.OPTIONAL_COLUMNS),
    c.INVALID_FORMAT: ("event_id", "order_id", "customer_id", "product_id", "category",
                       "quantity", "unit_price", "discount", "event_time"),
    c.OUT_OF_RANGE: ("quantity", "unit_price", "discount", "event_time"),
    c.UNKNOWN_CODE: ("region", "channel", "currency"),
}

#: Malformations of section 1 (MALFORMED_ROW).
MALFORMATIONS: tuple[str, ...] = (
    "field count",
    "invalid UTF-8",
    "quote inside unquoted",
    "text after closing quote",
    "unclosed quote at EOF",
)

#: Every label corrupted_records() accepts: "REASON/column" and "MALFORMED_ROW/kind".
CORRUPTIONS: tuple[str, ...] = (
    *(f"{reason}/{col}" for reason, cols in REASON_COLUMNS.items() for col in cols),
    *(f"{c.MALFORMED_ROW}/{kind}" for kind in MALFORMATIONS),
)


@dataclass(frozen=True)
class CorruptRecord:
    """A record that must be rejected with ``reason``, and how it is written.

    ``values`` are the twelve column values as written (for a malformed record,
    the values it was made from). ``label`` is ``"REASON/column"`` or
    ``"MALFORMED_ROW/<kind>"``. Use :meth:`to_csv` for its bytes.
    """

    reason: str
    label: str
    values: Mapping[str, str]
    column: str | None = None
    _cells: Cells | None = field(default=None, repr=False, compare=False)

    @property
    def malformation(self) -> str | None:
        """The kind of malformation, or None for a section 2 reason."""
        return self.label.split("/", 1)[1] if self.reason == c.MALFORMED_ROW else None

    def cells(self, *, quote_all: bool = False,
              pads: Mapping[str, tuple[str, str]] | None = None) -> Cells:
        """How to render it; formatting only applies to the cells left plain."""
        if self._cells is not None:
            return Cells(self._cells.values, self._cells.raw, self._cells.drop,
                         self._cells.more, self._cells.whole, quote_all,
                         {k: v for k, v in (pads or {}).items() if k not in self._cells.raw})
        return Cells(self.values, quote_all=quote_all, pads=pads or {})

    def to_csv(self, columns: tuple[str, ...] = c.COLUMNS) -> bytes:
        """The record's bytes without terminator, for a header with ``columns``."""
        return render_record(self.cells(), columns)


# --- bad values per (reason, column) -----------------------------------------------------

_LONG = "x" * 65
_TEXT_BAD = ("a\tb", "a\x00b", "a\x7f", "line\nbreak", "cr\rhere", "\x1b[0m", "end\x01",
             _LONG, "\u00e9" * 65, "\U0001f600" * 65)
_BAD_VALUES: dict[tuple[str, str], tuple[str, ...]] = {
    (c.INVALID_FORMAT, "event_id"): ("e 1", "e/1", "caf\u00e9", "e,1", "E" * 65, "e\u0661",
                                     "e#1", 'e"1', "\uff45\uff11", "e\t1"),
    (c.INVALID_FORMAT, "quantity"): ("1.0", "1e3", "1_000", "\u0661", "\uff15", "0x10", "ten",
                                     "1 000", "++1", "1234567890", "+", "-", "--1", "5.",
                                     "1,000"),
    (c.INVALID_FORMAT, "unit_price"): ("1.234", ".5", "5.", "1,50", "1e2", "$5", "NaN", "inf",
                                       "-", "1234567890.00", "1.0.0", "\uff11.00", "1 .00",
                                       "0x1p3"),
    (c.INVALID_FORMAT, "discount"): (".5", "0.1234", "1e-1", "10%", "1234", "NaN", "0.",
                                     "\u0660.5", "0,5", "half"),
    (c.INVALID_FORMAT, "event_time"): (
        "2024-01-01T00:00:00", "2024-01-01t00:00:00Z", "2024-01-01T00:00:00z",
        "2024-02-30T00:00:00Z", "2023-02-29T12:00:00Z", "1999-02-29T00:00:00Z",
        "2100-02-29T00:00:00Z", "2024-01-01T24:00:00Z", "2024-06-30T23:59:60Z",
        "2024-01-01T00:00:00.1234567Z", "2024-01-01T00:00:00+14:01",
        "2024-01-01T00:00:00-15:00", "2024-01-01T00:00:00+05:60", "2024-1-1T00:00:00Z",
        "2024-01-01T00:00Z", "2024/01/01T00:00:00Z", "2024-01-01T00:00:00+0500",
        "2024-01-01  00:00:00Z", "2024-01-01T00:00:00.Z", "\uff12024-01-01T00:00:00Z",
        "2024-13-01T00:00:00Z", "2024-00-10T00:00:00Z", "2024-04-31T00:00:00Z",
        "2024-01-01T00:00:00 Z", "1704067200",
    ),
    (c.OUT_OF_RANGE, "quantity"): ("0", "+0", "-0", "000", "100001", "-100001", "999999999",
                                   "-999999999"),
    (c.OUT_OF_RANGE, "unit_price"): ("-0.01", "1000000.01", "999999999.99", "-1", "1000001"),
    (c.OUT_OF_RANGE, "discount"): ("1.001", "-0.1", "2", "999.999", "-1", "+1.5"),
    (c.OUT_OF_RANGE, "event_time"): ("1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z",
                                     "0000-02-29T00:00:00Z", "9999-12-31T23:59:59.999999Z",
                                     "1999-12-31T23:59:59-14:00", "2100-01-01T00:00:00+14:00",
                                     "1900-01-01 00:00:00+00:00"),
    (c.UNKNOWN_CODE, "region"): ("\uff2e\uff21", "EU", "NAM", "N.A.", "N A", "emea\u200b",
                                 "APAC.", "latam1", "\uff25mea", "US", "\u0274\u1d00"),
    (c.UNKNOWN_CODE, "channel"): ("\u017ftore", "web", "Online!", "\uff4fnline", "onl\u0131ne",
                                  "stores", "part ner", "ONL\u0130NE", "st\u00f6re"),
    (c.UNKNOWN_CODE, "currency"): ("u\u017fd", "US$", "EURO", "\uff35\uff33\uff24", "JPN",
                                   "US D", "CHF", "\u0441ad", "usd."),
}
for _col in ("order_id", "customer_id", "product_id", "category"):
    _BAD_VALUES[(c.INVALID_FORMAT, _col)] = _TEXT_BAD

_BLANKS = ("", " ", "\t", "  \t ")
_BAD_TEXT = bad_text_ids()
_BAD_TEXT_OF = {kind: bad_text_ids(kind) for kind in BAD_TEXT_KINDS}

#: Just past each bound of section 2, and the characters it refuses, by coverage label:
#: each is one target of any_corruption(), so each is drawn about as often as any
#: whole reason code. (Format widths and calendar errors are in _BAD_VALUES.)
_BOUNDARY_TARGETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "quantity 0": ((c.OUT_OF_RANGE, "quantity", "0"), (c.OUT_OF_RANGE, "quantity", "-0")),
    "quantity 100001": ((c.OUT_OF_RANGE, "quantity", "100001"),),
    "quantity -100001": ((c.OUT_OF_RANGE, "quantity", "-100001"),),
    "unit_price -0.01": ((c.OUT_OF_RANGE, "unit_price", "-0.01"),),
    "unit_price 1000000.01": ((c.OUT_OF_RANGE, "unit_price", "1000000.01"),),
    "discount 1.001": ((c.OUT_OF_RANGE, "discount", "1.001"),),
    "discount -0.001": ((c.OUT_OF_RANGE, "discount", "-0.001"),),
    "event_id 65": ((c.INVALID_FORMAT, "event_id", "E" * 65),
                    (c.INVALID_FORMAT, "event_id", "e-" * 32 + "x")),
    "event_id non-ASCII": ((c.INVALID_FORMAT, "event_id", "caf\u00e9"),
                           (c.INVALID_FORMAT, "event_id", "e\u0661"),
                           (c.INVALID_FORMAT, "event_id", "\uff45\uff11")),
    "year 1999": ((c.OUT_OF_RANGE, "event_time", "1999-12-31T23:59:59.999999Z"),
                  (c.OUT_OF_RANGE, "event_time", "1999-12-31T23:00:00-14:00")),
    "year 2100": ((c.OUT_OF_RANGE, "event_time", "2100-01-01T00:00:00Z"),
                  (c.OUT_OF_RANGE, "event_time", "2100-01-01T00:30:00+14:00")),
    "offset past 14:00": ((c.INVALID_FORMAT, "event_time", "2024-01-01T00:00:00+14:01"),
                          (c.INVALID_FORMAT, "event_time", "2024-01-01T00:00:00-14:01")),
    "code look-alike": ((c.UNKNOWN_CODE, "region", "\uff2e\uff21"),
                        (c.UNKNOWN_CODE, "channel", "\u017ftore"),
                        (c.UNKNOWN_CODE, "currency", "u\u017fd"),
                        (c.UNKNOWN_CODE, "channel", "ONL\u0130NE"),
                        (c.UNKNOWN_CODE, "region", "\u0274\u1d00")),
    "non-ASCII digit": ((c.INVALID_FORMAT, "quantity", "\u0661"),
                        (c.INVALID_FORMAT, "unit_price", "\uff11.00"),
                        (c.INVALID_FORMAT, "discount", "\u0660.5"),
                        (c.INVALID_FORMAT, "event_time", "\uff12024-01-01T00:00:00Z")),
}
_BAD_VALUES[(c.INVALID_FORMAT, "quantity")] += ("0000000001",)
_BAD_VALUES[(c.INVALID_FORMAT, "unit_price")] += ("1.000", "0000000001.00")
_BAD_VALUES[(c.INVALID_FORMAT, "discount")] += ("0.5000", "0000.5")
_BAD_VALUES[(c.OUT_OF_RANGE, "discount")] += ("-0.001",)


@lru_cache(maxsize=None)
def _bad_value(reason: str, column: str) -> st.SearchStrategy[str]:
    if reason == c.MISSING_FIELD:
        return st.sampled_from(_BLANKS)
    values = st.sampled_from(_BAD_VALUES[(reason, column)])
    if column in _TEXT_COLUMNS:
        return st.one_of(values, _BAD_TEXT)
    return values


_BAD_UTF8 = (b"\xff", b"\x80", b"\xc3", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80",
             b"\xf4\x90\x80\x80", b"\xfe\xfe")

# Fixed pools for the valid rest of a corrupted record: drawing a dataset's worth of
# pools per record would add dozens of choices to each row for the shrinker.
_PLAIN_KEYS = Keys(
    orders=tuple(Order(f"o{i}", i % 3, i % 3, c.REGIONS[i % 4], c.CHANNELS[i % 3],
                       c.CURRENCIES[i % 5]) for i in range(10)),
    customers=("c0", "c1", "c2"), products=("p0", "p1", "p2"), product_category=(0, 1, 2),
    categories=PLAIN_CATEGORIES[:3], days=(date(2024, 1, 1), date(2024, 2, 29), date(2024, 12, 31)),
)


_EVENT_NUMBERS = st.integers(0, 999)


def _base_values(draw: st.DrawFn) -> dict[str, str]:
    sale = sale_line(draw, _PLAIN_KEYS, edge_cases=False)
    return spell(sale, event_id=f"e{draw(_EVENT_NUMBERS)}")


@lru_cache(maxsize=None)
def _column_value(reason: str, column: str) -> st.SearchStrategy[CorruptRecord]:
    @st.composite
    def build(draw: st.DrawFn) -> CorruptRecord:
        values = _base_values(draw)
        values[column] = draw(_bad_value(reason, column))
        return _labelled(reason, column, values)

    return build()


def _labelled(reason: str, column: str, values: dict[str, str]) -> CorruptRecord:
    label = f"{reason}/{column}"
    note(f"corruption: {label}")
    for extra in bad_value_labels(reason, column, values[column]):
        note(extra)
    return CorruptRecord(reason, label, values, column)


@lru_cache(maxsize=None)
def _malformed(kind: str) -> st.SearchStrategy[CorruptRecord]:
    @st.composite
    def build(draw: st.DrawFn) -> CorruptRecord:
        values = _base_values(draw)
        # Plain sales never need quotes, except a missing discount is empty: avoid it.
        column = draw(st.sampled_from([k for k in c.COLUMNS if values[k]]))
        raw: dict[str, bytes] = {}
        drop: frozenset[str] = frozenset()
        more: tuple[bytes, ...] = ()
        whole: bytes | None = None
        text = values[column]
        if kind == "field count":
            how = draw(st.sampled_from(("fewer", "more", "blank line")))
            if how == "fewer":
                drop = frozenset({column})
            elif how == "more":
                more = tuple(draw(st.lists(st.sampled_from((b"", b"x", b"1")), min_size=1,
                                           max_size=2)))
            else:
                # Only spaces or tabs: one field, not an empty line.
                whole = draw(st.sampled_from((b" ", b"\t", b" \t ")))
        elif kind == "invalid UTF-8":
            pos = draw(st.integers(0, len(text)))
            raw[column] = text[:pos].encode() + draw(st.sampled_from(_BAD_UTF8)) + text[pos:].encode()
        elif kind == "quote inside unquoted":
            prefix = draw(st.sampled_from(("", " ", "\t")))
            if prefix:  # ' "a"': a space, then a quote: an unquoted field holding a quote
                raw[column] = f'{prefix}"{text}"'.encode()
            else:
                pos = draw(st.integers(1, len(text)))
                raw[column] = (text[:pos] + '"' + text[pos:]).encode()
        elif kind == "text after closing quote":
            junk = draw(st.sampled_from((" ", "\t", "x", " x", "x\"y")))
            raw[column] = f'"{text}"{junk}'.encode()
        else:  # unclosed quote at EOF
            raw[column] = f'"{text}'.encode()
        label = f"{c.MALFORMED_ROW}/{kind}"
        note(f"corruption: {label}")
        cells = Cells(values, raw, drop, more, whole)
        return CorruptRecord(c.MALFORMED_ROW, label, values, column, cells)

    return build()


# One choice among all the targets below, so each is drawn about equally often.
_ANY, _MISSING, _MALFORMED, _CONTROL_TEXT = "any label", "missing", "malformed", "control"
_SECTION2_TARGETS: tuple[str, ...] = (_ANY, *_BOUNDARY_TARGETS, _CONTROL_TEXT,
                                      "65 code points")
_TARGETS: tuple[str, ...] = (*_SECTION2_TARGETS, _MISSING, _MALFORMED)

_CONTROL_KINDS = st.sampled_from(tuple(CONTROLS))


def _section2_value(draw: st.DrawFn, target: str, event_id: bool = True) -> tuple[str, str, str]:
    """(reason, column, value) of one section 2 target; event_id False keeps that column."""
    if target in _BOUNDARY_TARGETS:
        options = [t for t in _BOUNDARY_TARGETS[target] if event_id or t[1] != "event_id"]
        if options:
            return draw(st.sampled_from(options))
        target = _ANY
    if target in (_CONTROL_TEXT, "65 code points"):
        kind = draw(_CONTROL_KINDS) if target == _CONTROL_TEXT else target
        return c.INVALID_FORMAT, draw(st.sampled_from(_TEXT_COLUMNS)), draw(_BAD_TEXT_OF[kind])
    reason, column = draw(_REJECTABLES if not event_id else _LABELS).split("/")
    return reason, column, draw(_bad_value(reason, column))


_LABELS = st.sampled_from([label for label in CORRUPTIONS if not label.startswith(c.MALFORMED_ROW)])
_REJECTABLES = st.sampled_from([label for label in CORRUPTIONS if not label.startswith(
    (c.MALFORMED_ROW, f"{c.MISSING_FIELD}/event_id", f"{c.INVALID_FORMAT}/event_id"))])


@st.composite
def rejected_values(draw: st.DrawFn) -> tuple[str, str, str]:
    """(reason, column, value) for one column of an otherwise valid row; never event_id
    (a rejected version of an event keeps its id)."""
    return _section2_value(draw, draw(_SECTION2), event_id=False)


_SECTION2 = st.sampled_from(_SECTION2_TARGETS)


def corrupted_records(reason: str) -> st.SearchStrategy[CorruptRecord]:
    """Records rejected for ``reason``.

    ``reason`` is a reason code of section 2 (any column it applies to),
    ``"REASON/column"`` (e.g. ``"OUT_OF_RANGE/quantity"``), ``MALFORMED_ROW``
    (any malformation) or ``"MALFORMED_ROW/<kind>"`` with a kind of
    :data:`MALFORMATIONS`. ``CONFLICTING_DUPLICATE`` needs two records: see
    ``sales_datasets(duplicate_rate=...)``.
    """
    if not isinstance(reason, str):
        raise InvalidArgument(f"reason={reason!r} must be a string")
    if reason == c.MALFORMED_ROW:
        return st.one_of([_malformed(k) for k in MALFORMATIONS])
    if reason in REASON_COLUMNS:
        return st.one_of([_column_value(reason, col) for col in REASON_COLUMNS[reason]])
    if reason in CORRUPTIONS:
        code, what = reason.split("/", 1)
        return _malformed(what) if code == c.MALFORMED_ROW else _column_value(code, what)
    raise InvalidArgument(
        f"reason={reason!r} is not one of {', '.join((c.MALFORMED_ROW, *REASON_COLUMNS))} "
        f"or a 'REASON/column' label: {', '.join(CORRUPTIONS)}"
    )


def malformed_records(kind: str | None = None) -> st.SearchStrategy[CorruptRecord]:
    """MALFORMED_ROW records of one ``kind`` of :data:`MALFORMATIONS` (any kind when None)."""
    if kind is None:
        return corrupted_records(c.MALFORMED_ROW)
    if kind not in MALFORMATIONS:
        raise InvalidArgument(f"kind={kind!r} must be one of {', '.join(MALFORMATIONS)}")
    return _malformed(kind)


@lru_cache(maxsize=None)
def any_corruption() -> st.SearchStrategy[CorruptRecord]:
    """Any corruption: each bound, character class, malformation or reason about equally
    often; the first target (any label, uniformly) is where it shrinks to."""
    every = st.one_of([corrupted_records(label) for label in CORRUPTIONS])
    missing = corrupted_records(c.MISSING_FIELD)
    malformed = corrupted_records(c.MALFORMED_ROW)
    targets = st.sampled_from(_TARGETS)

    @st.composite
    def build(draw: st.DrawFn) -> CorruptRecord:
        target = draw(targets)
        if target == _ANY:
            return draw(every)
        if target == _MISSING:
            return draw(missing)
        if target == _MALFORMED:
            return draw(malformed)
        reason, column, value = _section2_value(draw, target)
        values = _base_values(draw)
        values[column] = value
        return _labelled(reason, column, values)

    return build()
