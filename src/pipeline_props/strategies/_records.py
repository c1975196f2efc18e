"""Structured sales records (what is drawn) and their spelling (how it is written).

A :class:`Sale` holds typed values; a :class:`Spelling` says how to write them
(case of codes, ``+5`` or ``5``, ``5.0`` or ``5.00``, the same instant in
another offset, ...). Two spellings of one sale are identical after the
contract's normalisation, which is how "identical respelled" duplicates are
made. Every strategy here shrinks towards the plain form: short pool ids,
canonical case, ``1.00``, a missing discount, ``<start_date>T00:00:00Z``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_props import contract as c
from pipeline_props.strategies._amounts import Amount, amount_labels, amounts
from pipeline_props.strategies._keys import Keys, key_pools, line_keys
from pipeline_props.strategies._text import valid_text_id

EVENT_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"

def note(label: str) -> None:
    """hypothesis.event() that is a no-op outside a test (e.g. in ``.example()``)."""
    if currently_in_test_context():
        try:
            event(label)
        except InvalidArgument:  # pragma: no cover - defensive
            pass


def note_target(value: float, label: str) -> None:
    """hypothesis.target() that never fails on a second draw in one test case."""
    from hypothesis import target

    if currently_in_test_context():
        try:
            target(value, label=label)
        except InvalidArgument:
            pass


@dataclass(frozen=True)
class Sale:
    """One valid sale as typed values; ``event_id=None`` means "use the positional id"."""

    event_id: str | None
    order_id: str
    customer_id: str
    product_id: str
    category: str
    region: str
    channel: str
    currency: str
    quantity: int
    cents: int
    discount_mills: int | None
    local: datetime  # the written local time (naive), to the microsecond
    offset: int  # minutes east of UTC
    frac_digits: int  # digits of the fraction written (0-6), enough for local.microsecond

    @property
    def instant(self) -> datetime:
        """The UTC instant (naive)."""
        return self.local - timedelta(minutes=self.offset)


@dataclass(frozen=True)
class Spelling:
    """How a sale is written; the default is the plain form."""

    case: int = 0  # bit mask over code letters: 0 keeps the canonical case
    plus: bool = False  # "+5"
    zeros: int = 0  # leading zeros on quantity ("005"), up to 9 digits
    price_places: int = 2  # 2, 1 or 0 places when exact ("5.00", "5.0", "5")
    discount_form: int = 0  # 0 shortest, 1 three places, 2 leading "+", 3 "000.5"; missing -> "0"
    price_zeros: int = 0  # leading zeros on unit_price, up to 9 integer digits
    time_sep: str = "T"
    frac_pad: int = 0  # trailing zeros added to the fraction
    zone: int = 0  # for offset 0: 0 "Z", 1 "+00:00", 2 "-00:00"
    shift: int = 0  # minutes: the same instant written in another offset

    @property
    def is_plain(self) -> bool:
        """True for the canonical spelling."""
        return self == PLAIN_SPELLING


PLAIN_SPELLING = Spelling()


def _case(code: str, mask: int) -> str:
    return "".join(ch.swapcase() if mask >> i & 1 else ch for i, ch in enumerate(code))


def format_offset(minutes: int, zone: int = 0) -> str:
    """``Z`` / ``+HH:MM`` / ``-HH:MM``."""
    if minutes == 0:
        return ("Z", "+00:00", "-00:00")[zone]
    sign = "+" if minutes > 0 else "-"
    h, m = divmod(abs(minutes), 60)
    return f"{sign}{h:02d}:{m:02d}"


def format_time(local: datetime, offset: int, *, frac_digits: int = 0, sep: str = "T",
                frac_pad: int = 0, zone: int = 0) -> str:
    """Write an event_time; years are zero padded to four digits."""
    text = (
        f"{local.year:04d}-{local.month:02d}-{local.day:02d}{sep}"
        f"{local.hour:02d}:{local.minute:02d}:{local.second:02d}"
    )
    digits = min(6, frac_digits + frac_pad)
    if digits:
        text += "." + f"{local.microsecond:06d}"[:digits].ljust(digits, "0")
    return text + format_offset(offset, zone)


def format_cents(cents: int, places: int = 2) -> str:
    """Cents as a price: 2 places, or fewer when that is exact."""
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    if places == 0 and rest == 0:
        return f"{sign}{units}"
    if places == 1 and rest % 10 == 0:
        return f"{sign}{units}.{rest // 10}"
    return f"{sign}{units}.{rest:02d}"


def format_mills(mills: int, form: int = 0) -> str:
    """Discount in thousandths: shortest, three places, with "+", or three integer digits."""
    units, rest = divmod(mills, 1000)
    frac = f"{rest:03d}" if form == 1 else f"{rest:03d}".rstrip("0")
    text = f"{units}.{frac}" if frac else str(units)
    if form == 3:
        return text.rjust(len(text) - len(str(units)) + 3, "0")
    return "+" + text if form == 2 else text


def spell(sale: Sale, spelling: Spelling = PLAIN_SPELLING, *, event_id: str = "e0") -> dict[str, str]:
    """The twelve column values of ``sale`` as written under ``spelling``."""
    local, offset = sale.local, sale.offset
    if spelling.shift:
        new_off = offset + spelling.shift
        new_local = local + timedelta(minutes=spelling.shift)
        if abs(new_off) <= c.MAX_OFFSET_MINUTES and c.YEAR_MIN <= new_local.year <= c.YEAR_MAX:
            local, offset = new_local, new_off
    digits = str(abs(sale.quantity))
    q = digits.rjust(min(9, len(digits) + spelling.zeros), "0")
    q = ("-" if sale.quantity < 0 else "+" if spelling.plus else "") + q
    price = format_cents(sale.cents, spelling.price_places)
    if spelling.price_zeros:
        units = price.split(".")[0]
        price = "0" * min(spelling.price_zeros, 9 - len(units)) + price
    if sale.discount_mills is None:
        discount = "0" if spelling.discount_form else ""
    else:
        discount = format_mills(sale.discount_mills, spelling.discount_form)
    mask = spelling.case
    return {
        "event_id": sale.event_id if sale.event_id is not None else event_id,
        "order_id": sale.order_id,
        "customer_id": sale.customer_id,
        "product_id": sale.product_id,
        "category": sale.category,
        "region": _case(sale.region, mask),
        "channel": _case(sale.channel, mask >> 5),
        "quantity": q,
        "unit_price": price,
        "discount": discount,
        "currency": _case(sale.currency, mask >> 10),
        "event_time": format_time(local, offset, frac_digits=sale.frac_digits,
                                  sep=spelling.time_sep, frac_pad=spelling.frac_pad,
                                  zone=spelling.zone),
    }


# --- value strategies --------------------------------------------------------------------


def _pool(value: int | Sequence[str], prefix: str, name: str) -> tuple[str, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise InvalidArgument(f"{name}={value!r} must be >= 1")
        return tuple(f"{prefix}{i}" for i in range(value))
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidArgument(f"{name}={value!r} must be an int or a sequence of ids")
    pool = tuple(value)
    if not pool:
        raise InvalidArgument(f"{name}={value!r} must not be empty")
    for item in pool:
        if not isinstance(item, str) or not valid_text_id(item):
            raise InvalidArgument(
                f"{name}={value!r} holds {item!r}, which is not a valid id "
                "(1-64 code points, no control characters, no surrounding spaces or tabs)"
            )
    return pool


def event_id_edges() -> st.SearchStrategy[str]:
    """Valid event ids that are not plain (64 chars, every allowed punctuation)."""
    return st.one_of(
        st.sampled_from(("E-1", "A" * 64, "e.1:2_x", ":" * 64, "0", "z_" * 32, "-", "..")),
        st.text(st.sampled_from(EVENT_ID_CHARS), min_size=1, max_size=64),
    )


_EDGE_ID = st.integers(0, 4)  # 4 (about one draw in five) picks an edge event_id


@dataclass(frozen=True)
class _When:
    local: datetime
    offset: int
    frac_digits: int


# -14:00 and +14:00 are the bounds; the rest are real zones, some with odd minutes.
_OFFSETS = (-840, -720, -600, -570, -300, -60, 60, 330, 345, 525, 720, 765, 840)
_TIME_KINDS = st.sampled_from(("offset", "offset bound", "fraction", "leap", "y2k", "y2099",
                               "midnight"))
_SECONDS = st.integers(0, 86_399)
_ZONES = st.sampled_from((0, *_OFFSETS))


def _time_on(draw: st.DrawFn, day: date, edge_cases: bool) -> _When:
    """A local time on ``day`` (its UTC date, without an offset), or an edge time."""
    base = datetime(day.year, day.month, day.day) + timedelta(seconds=draw(_SECONDS))
    if not edge_cases or not draw(st.booleans()):
        return _When(base, 0, 0)
    kind = draw(_TIME_KINDS)
    if kind == "offset":
        return _When(base, draw(st.sampled_from(_OFFSETS)), 0)
    if kind == "offset bound":
        return _When(base, draw(st.sampled_from((-c.MAX_OFFSET_MINUTES, c.MAX_OFFSET_MINUTES))), 0)
    if kind == "fraction":
        digits = draw(st.integers(1, 6))
        micro = draw(st.integers(0, 10**digits - 1)) * 10 ** (6 - digits)
        return _When(base.replace(microsecond=micro), draw(_ZONES), digits)
    if kind == "leap":
        year = draw(st.sampled_from((day.year, 2000, 2024, 2096)))
        year = year if year % 4 == 0 and (year % 100 or year % 400 == 0) else 2000
        return _When(datetime(year, 2, 29) + timedelta(seconds=draw(_SECONDS)), draw(_ZONES), 0)
    if kind == "y2k":
        # Local 2000-01-01 with a positive offset: the UTC instant is in 1999.
        offset = draw(st.sampled_from((840, 60, 1, 330)))
        return _When(datetime(2000, 1, 1)
                     + timedelta(seconds=draw(st.integers(0, offset * 60 - 1))), offset, 0)
    if kind == "y2099":
        offset = draw(st.sampled_from((0, -720, -1, -840)))
        return _When(datetime(2099, 12, 31, 23, 59, 59, 999_999 if offset else 0), offset,
                     6 if offset else 0)
    # Just either side of midnight, so any offset moves the sale to another UTC date.
    t = datetime(day.year, day.month, day.day) + timedelta(
        microseconds=draw(st.sampled_from((0, -1, 1_000_000 - 1))))
    if not c.YEAR_MIN <= t.year <= c.YEAR_MAX:
        t = datetime(day.year, day.month, day.day)
    return _When(t, draw(st.sampled_from(_OFFSETS)), 6)


_AMOUNTS = {True: amounts(True), False: amounts(False)}
_EVENT_ID_EDGES = event_id_edges()


def sale_line(draw: st.DrawFn, keys: Keys, edge_cases: bool) -> Sale:
    """One valid sale whose keys come from the dataset's pools."""
    event_id = None
    if edge_cases and draw(_EDGE_ID) == 4:
        event_id = draw(_EVENT_ID_EDGES)
    day, line = line_keys(draw, keys, edge_cases)
    amount: Amount = draw(_AMOUNTS[edge_cases])
    if amount.currency:
        line["currency"] = amount.currency
    when = _time_on(draw, day, edge_cases)
    return Sale(
        event_id=event_id, **line, quantity=amount.quantity, cents=amount.cents,
        discount_mills=amount.mills, local=when.local, offset=when.offset,
        frac_digits=when.frac_digits,
    )


def sales(*, customers: tuple[str, ...], products: tuple[str, ...], start_date: date,
          end_date: date, edge_cases: bool) -> st.SearchStrategy[Sale]:
    """Structured valid sales, each with pools of its own (arguments already checked)."""
    pools = key_pools(customers=customers, products=products, start_date=start_date,
                      end_date=end_date, edge_cases=edge_cases)

    @st.composite
    def build(draw: st.DrawFn) -> Sale:
        return sale_line(draw, draw(pools), edge_cases)

    return build()


@st.composite
def spellings(draw: st.DrawFn, sale: Sale | None = None) -> Spelling:
    """A spelling; shrinks to the plain one."""
    if not draw(st.integers(0, 3)):
        return PLAIN_SPELLING
    return Spelling(
        case=draw(st.integers(0, 2**15 - 1)),
        plus=draw(st.booleans()),
        zeros=draw(st.sampled_from((0, 1, 2, 3, 8))),
        price_places=draw(st.sampled_from((2, 1, 0))),
        discount_form=draw(st.integers(0, 3)),
        price_zeros=draw(st.sampled_from((0, 1, 8))),
        time_sep=draw(st.sampled_from(("T", " "))),
        frac_pad=draw(st.integers(0, 6)),
        zone=draw(st.integers(0, 2)),
        shift=draw(st.sampled_from((0, 60, -60, 330, -720, 840))),
    )


SPELLINGS = spellings()
NON_PLAIN_SPELLINGS = SPELLINGS.filter(lambda s: not s.is_plain)


# --- labels of a written valid row ------------------------------------------------------------

_TIME_RE = re.compile(r"(\d{4})-(\d\d)-(\d\d)([T ])(\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                      r"(Z|[+-]\d\d:\d\d)")
_CODE_COLUMNS = {"region": str.upper, "channel": str.lower, "currency": str.upper}


def row_labels(sale: Sale, values: dict[str, str]) -> set[str]:
    """The clauses one valid row reaches, from its typed values and how they are written."""
    out = amount_labels(sale.quantity, sale.cents, sale.discount_mills, sale.currency)
    eid = values["event_id"]
    if len(eid) == 64:
        out.add("limit: event_id 64 chars")
    if set(eid) & set("_.:-"):
        out.add("class: event_id punctuation")
    if any(values[k] != norm(values[k]) for k, norm in _CODE_COLUMNS.items()):
        out.add("class: code in mixed ASCII case")
    q = values["quantity"].lstrip("+-")
    if len(q) == 9:
        out.add("limit: quantity 9 digits")
    if len(values["unit_price"].split(".")[0]) == 9:
        out.add("limit: unit_price 9 digits")
    whole, _, places = values["discount"].lstrip("+").partition(".")
    if len(places) == 3:
        out.add("limit: discount 3 places")
    if len(whole) == 3:
        out.add("limit: discount 3 integer digits")
    m = _TIME_RE.fullmatch(values["event_time"])
    assert m, values["event_time"]
    year, sep, frac, zone = int(m[1]), m[4], m[8] or "", m[9]
    if year in (c.YEAR_MIN, c.YEAR_MAX):
        out.add(f"limit: year {year}")
    if zone in ("+14:00", "-14:00"):
        out.add(f"limit: offset {zone}")
    if len(frac) == 6:
        out.add("limit: fraction 6 digits")
    if sep == " ":
        out.add("class: space before time")
    if (m[2], m[3]) == ("02", "29"):
        out.add("clause: 29 February")
    if sale.instant.date() != sale.local.date():
        out.add("clause: local date is not the UTC date")
    if sale.instant.year < c.YEAR_MIN:
        out.add("clause: local 2000, UTC 1999")
    return out
