"""The entries of a dataset (valid lines, refunds, corruptions, duplicates) and their assembly.

Entries are drawn as structure; :func:`assemble` resolves what refers to an
earlier row (a duplicate, a refund), labels every clause the dataset reaches
with ``event()``, and renders the files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from hypothesis import strategies as st

from pipeline_props import contract as c
from pipeline_props.strategies._amounts import line_amount_x1000, usd_half_cent
from pipeline_props.strategies._corruptions import CorruptRecord, any_corruption, rejected_values
from pipeline_props.strategies._coverage import bad_value_labels
from pipeline_props.strategies._formats import (
    _LOOKS,
    PLAIN_LOOK,
    FileFormat,
    _format_events,
    _Look,
    _render_file,
    _Row,
)
from pipeline_props.strategies._keys import Fact, Keys, group_labels
from pipeline_props.strategies._records import (
    NON_PLAIN_SPELLINGS,
    PLAIN_SPELLING,
    SPELLINGS,
    Sale,
    Spelling,
    note,
    note_target,
    row_labels,
    sale_line,
    spell,
)
from pipeline_props.strategies._render import Cells
from pipeline_props.strategies._text import valid_text_id

# --- entries ---------------------------------------------------------------------------------

_NO_SALE = Sale(None, "o0", "c0", "p0", "toys", "NA", "online", "USD", 1, 100, None,
                datetime(2024, 1, 1), 0, 0)  # placeholder for corrupt entries
# A roll in 0-999: a uniform step of 25 (Hypothesis draws small ranges about uniformly,
# wide ones skewed to small values), then 0-24 within the step.
# (Not st.tuples: its elements are "arguments" to Hypothesis' explain phase, which then
# retries the whole dataset hundreds of times after a shrink.)
@st.composite
def _rolls(draw: st.DrawFn) -> int:
    return draw(st.integers(0, 39)) * 25 + draw(st.integers(0, 24))


_ROLLS = _rolls()
# A rejected version twice: it also carries a value past a bound (see rejected_values).
_DUP_KINDS = st.sampled_from(("identical", "respelled", "conflicting", "rejected version",
                              "rejected version"))
_SOURCES = st.integers(0, 63)
_REJECTED_VALUES = rejected_values()
# 0-20 an ordinary line; then a refund of an earlier line: in full, of one unit, or
# one unit of a line of 32 or 160 units (return_rate 0.03125 / 0.00625: half way).
_REFUNDS = st.integers(0, 23)
_REFUND_KINDS = {21: "full", 22: "one unit", 23: "return_rate trap"}
_TRAP_UNITS = st.sampled_from((32, 160))
_CONFLICTS = ("quantity", "unit_price", "discount", "category case", "customer_id", "region",
              "channel", "currency", "event_time", "order_id", "product_id")


@dataclass(frozen=True)
class _Entry:
    kind: str  # valid | corrupt | dup | refund
    file: int
    sale: Sale
    spelling: Spelling = PLAIN_SPELLING
    look: _Look = PLAIN_LOOK
    bad: CorruptRecord | None = None
    dup: str = ""  # identical | respelled | conflicting | rejected version; refund: its kind
    src: int = 0
    conflict: str = ""
    rejected_label: str = ""
    rejected_value: str = ""
    units: int = 0  # refund "return_rate trap": the source line's quantity


@st.composite
def entries(draw: st.DrawFn, *, n_files: int, keys: Keys, edge_cases: bool, formatting: bool,
            error_cut: int, dup_cut: int) -> _Entry:
    """One entry of a dataset; rolls at or past ``error_cut`` are corrupt, at or past
    ``dup_cut`` duplicates, the rest valid lines (shrinks to a valid line)."""
    roll = draw(_ROLLS)
    file = draw(st.integers(0, n_files - 1))
    look = draw(_LOOKS) if formatting else PLAIN_LOOK
    if roll >= error_cut:
        return _Entry("corrupt", file, _NO_SALE, look=look, bad=draw(any_corruption()))
    sale = sale_line(draw, keys, edge_cases)
    spelling = draw(SPELLINGS) if edge_cases else PLAIN_SPELLING
    if roll >= dup_cut:
        dup = draw(_DUP_KINDS)
        entry = _Entry("dup", file, sale, spelling, look, dup=dup, src=draw(_SOURCES))
        if dup == "conflicting":
            entry = replace(entry, conflict=draw(st.sampled_from(_CONFLICTS)))
        elif dup == "rejected version":
            reason, column, value = draw(_REJECTED_VALUES)
            entry = replace(entry, rejected_label=f"{reason}/{column}", rejected_value=value)
        elif dup == "respelled" and spelling.is_plain:
            entry = replace(entry, spelling=draw(NON_PLAIN_SPELLINGS))
        return entry
    refund = draw(_REFUNDS) if edge_cases else 0
    if refund in _REFUND_KINDS:
        kind = _REFUND_KINDS[refund]
        units = draw(_TRAP_UNITS) if kind == "return_rate trap" else 0
        return _Entry("refund", file, sale, spelling, look, dup=kind, src=draw(_SOURCES),
                      units=units)
    return _Entry("valid", file, sale, spelling, look)


def _conflict(sale: Sale, how: str) -> Sale:
    """A version of ``sale`` that differs in one normalised value and is still valid."""
    if how == "quantity":
        q = sale.quantity + (1 if sale.quantity != c.QUANTITY_MAX and sale.quantity != -1 else -2)
        return replace(sale, quantity=q if q else 2)
    if how == "unit_price":
        return replace(sale, cents=sale.cents + (1 if sale.cents < 100_000_000 else -1))
    if how == "discount":
        # None and 0 are the same value: change to something that is not 0.
        mills = sale.discount_mills or 0
        return replace(sale, discount_mills=500 if mills != 500 else 250)
    if how == "category case":
        # swapcase() may change the length ("ß" -> "SS"): keep the value within 64 code points.
        swapped = sale.category.swapcase()
        if swapped == sale.category or not valid_text_id(swapped):
            swapped = sale.category + "x" if len(sale.category) < 64 else sale.category[:-1]
        return replace(sale, category=swapped)
    if how in ("customer_id", "order_id", "product_id"):
        value = getattr(sale, how)
        return replace(sale, **{how: value + "x" if len(value) < 64 else value[:-1]})
    if how in ("region", "channel", "currency"):
        pool = {"region": c.REGIONS, "channel": c.CHANNELS, "currency": c.CURRENCIES}[how]
        current = getattr(sale, how)
        return replace(sale, **{how: pool[(pool.index(current) + 1) % len(pool)]})
    # event_time: one microsecond (or one second) later or earlier, year kept in range.
    step = timedelta(microseconds=1) if sale.frac_digits == 6 else timedelta(seconds=1)
    later = sale.local + step
    local = later if later.year <= c.YEAR_MAX else sale.local - step
    return replace(sale, local=local)


def _source(entries: list[_Entry], valid: list[int], k: int) -> int | None:
    """The valid row entry ``k`` repeats or refunds.

    src 0 is the nearest valid row before it (or after, if none is before), so
    deleting unrelated rows while shrinking keeps the pair together.
    """
    pool = [j for j in valid if j < k][::-1] or [j for j in valid if j > k]
    return pool[entries[k].src % len(pool)] if pool else None


def _event_ids(entries: list[_Entry]) -> list[str]:
    """Positional ids e<k>, unique; drawn (edge) ids made unique by a suffix."""
    used: set[str] = {f"e{k}" for k in range(len(entries))}
    ids: list[str] = []
    for k, entry in enumerate(entries):
        eid = entry.sale.event_id
        if eid is None or entry.kind == "refund":
            eid = f"e{k}"
        elif eid in used:
            suffix = f"_{k}"
            eid = eid[: 64 - len(suffix)] + suffix
        used.add(eid)
        ids.append(eid)
    return ids


def _with_refunds(entries: list[_Entry], valid: list[int]) -> list[_Entry]:
    """Resolve refunds: the source line's keys and a negative quantity."""
    entries = list(entries)
    for k, entry in enumerate(entries):
        j = _source(entries, valid, k) if entry.kind == "refund" else None
        if j is None:
            continue
        src = entries[j].sale
        if entry.units:
            # A product of its own, so these two lines alone make its return_rate.
            product = f"{src.product_id[:60]}-r{k}"
            src = replace(src, quantity=entry.units, product_id=product)
            entries[j] = replace(entries[j], sale=src)
        units = abs(src.quantity) if entry.dup == "full" else 1
        entries[k] = replace(entry, sale=replace(src, event_id=None, quantity=-units))
    return entries


def _fact(sale: Sale) -> Fact:
    amount = (sale.quantity, sale.cents, sale.discount_mills)
    half = abs(line_amount_x1000(*amount)) % 1000 == 500 or usd_half_cent(*amount, sale.currency)
    return Fact(sale.instant.date(), sale.region, sale.category, sale.order_id,
                sale.customer_id, sale.product_id, sale.quantity, half)


def assemble(formats: list[FileFormat], entries: list[_Entry]) -> tuple[tuple[str, bytes], ...]:
    """Resolve ids, refunds and duplicates, label what the dataset reaches, render the files."""
    ids = _event_ids(entries)
    entries = _with_refunds(entries, [k for k, e in enumerate(entries) if e.kind == "valid"])
    valid = [k for k, e in enumerate(entries) if e.kind in ("valid", "refund")]
    rows: list[_Row] = []
    labels: set[str] = set()
    reached: set[str] = set()
    accepted: dict[int, Sale] = {}
    conflicted: set[int] = set()  # every version of these events is rejected
    for k, entry in enumerate(entries):
        look = entry.look
        pads = dict(look.pads)
        if entry.kind == "corrupt":
            assert entry.bad is not None
            bad = entry.bad
            labels.add(bad.label)
            if bad.reason != c.MALFORMED_ROW and bad.column != "event_id":
                bad = replace(bad, values={**bad.values, "event_id": ids[k]})
            cells = bad.cells(quote_all=look.quote_all, pads=pads)
            rows.append(_Row(entry.file, cells, look,
                             bad.malformation == "unclosed quote at EOF"))
            continue
        j = _source(entries, valid, k) if entry.kind == "dup" else None
        if j is not None:
            src, src_id = entries[j], ids[j]
            original = spell(src.sale, src.spelling, event_id=src_id)
            if entry.dup == "conflicting":
                values = spell(_conflict(src.sale, entry.conflict), entry.spelling, event_id=src_id)
                note(f"dup: conflicting {entry.conflict}")
                labels.add(c.CONFLICTING_DUPLICATE)
                conflicted.add(j)
            elif entry.dup == "rejected version":
                column = entry.rejected_label.split("/")[1]
                values = dict(original)
                values[column] = entry.rejected_value
                note("dup: rejected version")
                labels.add(entry.rejected_label)
                reached |= bad_value_labels(*entry.rejected_label.split("/"), entry.rejected_value)
            elif entry.dup == "respelled":
                values = spell(src.sale, entry.spelling, event_id=src_id)
                note("dup: identical respelled" if values != original else "dup: identical")
            else:
                values = original
                note("dup: identical")
            if entry.file != src.file:
                note("dup: across files")
        else:
            values = spell(entry.sale, entry.spelling, event_id=ids[k])
            reached |= row_labels(entry.sale, values)
            accepted.setdefault(k, entry.sale)
            if entry.kind == "refund":
                note(f"refund: {entry.dup}")
        rows.append(_Row(entry.file, Cells(values, quote_all=look.quote_all, pads=pads), look))
    reached |= group_labels(_fact(sale) for k, sale in accepted.items() if k not in conflicted)
    for label in sorted(reached):
        note(label)

    files: list[tuple[str, bytes]] = []
    for index, fmt in enumerate(formats):
        if fmt.repeat_previous and files:
            note("dup: file ingested twice")
            files.append(files[-1])
            continue
        mine = [row for row in rows if row.file == index]
        files.append((f"sales_{index}.csv", _render_file(fmt, mine)))
        _format_events(fmt)
    if labels:
        note_target(float(len(labels)), "distinct rejection labels")
    if any(e.look.blank_before for e in entries):
        note("format: empty lines")
    if any(e.look.quote_all for e in entries):
        note("format: quoted fields")
    if any(e.look.pads for e in entries):
        note("format: padded fields")
    return tuple(files)
