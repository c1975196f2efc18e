"""Structured sales records (what is drawn) and their spelling (how it is written).

A :class:`Sale` holds typed values; a :class:`Spelling` says how to write them
(case of codes, ``+5`` or ``5``, ``5.0`` or ``5.00``, the same instant in
another offset, ...). Two spellings of one sale are identical after the
contract's normalisation, which is how "identical respelled" duplicates are
made. Every strategy here shrinks towards the plain form: short pool ids,
canonical case, ``1.00``, a missing discount, ``<start_date>T00:00:00Z``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from functools import lru_cache

from hypothesis import currently_in_test_context, event
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_props import contract as c

#: Categories of the plain pool; ``Toys`` next to ``toys`` checks that case is kept.
PLAIN_CATEGORIES: tuple[str, ...] = ("toys", "books", "food", "garden")
EVENT_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-"
RATE_MICROS: dict[str, int] = {k: int(v * 1_000_000) for k, v in c.FX_RATES_TO_USD.items()}

# Identifiers that look alike but are distinct (no Unicode normalisation, case kept),
# or that trip readers which trim or split on more than the contract says.
TRICKY_IDS: tuple[str, ...] = (
    "caf\u00e9",  # NFC
    "cafe\u0301",  # NFD of the same word: a different id
    "Toys",
    "a,b",
    'say "hi"',
    "\u00a0nbsp",  # NBSP is not trimmed
    "x\u0085y",  # NEL: str.splitlines() breaks here, the contract does not
    "x\u2028y",
    "\ufeffbom",
    "\U0001f600",  # astral: 1 code point, 2 UTF-16 units
    "\u0130stanbul",
    "\u00df",
)


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
    zeros: int = 0  # leading zeros on quantity ("005")
    price_places: int = 2  # 2, 1 or 0 places when exact ("5.00", "5.0", "5")
    discount_form: int = 0  # 0 shortest, 1 three places, 2 leading "+"; missing -> "0"
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
    """Discount in thousandths: shortest, padded to three places, or with '+'."""
    units, rest = divmod(mills, 1000)
    frac = f"{rest:03d}" if form == 1 else f"{rest:03d}".rstrip("0")
    text = f"{units}.{frac}" if frac else str(units)
    return "+" + text if form == 2 else text


def spell(sale: Sale, spelling: Spelling = PLAIN_SPELLING, *, event_id: str = "e0") -> dict[str, str]:
    """The twelve column values of ``sale`` as written under ``spelling``."""
    local, offset = sale.local, sale.offset
    if spelling.shift:
        new_off = offset + spelling.shift
        new_local = local + timedelta(minutes=spelling.shift)
        if abs(new_off) <= c.MAX_OFFSET_MINUTES and c.YEAR_MIN <= new_local.year <= c.YEAR_MAX:
            local, offset = new_local, new_off
    q = str(abs(sale.quantity)).rjust(len(str(abs(sale.quantity))) + spelling.zeros, "0")
    q = ("-" if sale.quantity < 0 else "+" if spelling.plus else "") + q
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
        "unit_price": format_cents(sale.cents, spelling.price_places),
        "discount": discount,
        "currency": _case(sale.currency, mask >> 10),
        "event_time": format_time(local, offset, frac_digits=sale.frac_digits,
                                  sep=spelling.time_sep, frac_pad=spelling.frac_pad,
                                  zone=spelling.zone),
    }


def line_amount_cents_x1000(sale: Sale) -> int:
    """quantity * unit_price * (1 - discount), in units of 1e-5 of the currency, exact."""
    mills = sale.discount_mills or 0
    return sale.quantity * sale.cents * (1000 - mills)


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


def valid_text_id(value: str) -> bool:
    """The contract's rule for order/customer/product ids and category, on a trimmed value."""
    return (
        1 <= len(value) <= c.ID_MAX_CODE_POINTS
        and value == value.strip(" \t")
        and not any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    )


# Assigned code points only (no Cn/Co/Cs) keeps the repro readable; controls are excluded
# because they make an id invalid.
_TEXT_CHAR = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cn", "Co"),
    exclude_characters="".join(map(chr, [*range(0x20), 0x7F])),
)


@st.composite
def edge_text_ids(draw: st.DrawFn) -> str:
    """A valid text id that is not plain: Unicode, 64 code points, quotes and commas."""
    kind = draw(st.sampled_from(("tricky", "unicode", "64")))
    if kind == "tricky":
        value = draw(st.sampled_from(TRICKY_IDS))
        note("edge: tricky id")
        if "," in value or '"' in value:
            note("edge: quoted comma/quote")
    elif kind == "unicode":
        value = draw(st.text(_TEXT_CHAR, min_size=1, max_size=8))
        value = value.strip(" \t") or "u"
        note("edge: unicode id")
    else:
        base = draw(st.text(_TEXT_CHAR, min_size=1, max_size=4)).strip(" \t") or "x"
        value = (base * 64)[:63] + draw(st.sampled_from(("z", "\U0001f600", "\u00e9")))
        note("edge: 64 code points id")
    assert valid_text_id(value), value
    return value


def event_id_edges() -> st.SearchStrategy[str]:
    """Valid event ids that are not plain (64 chars, every allowed punctuation)."""
    return st.one_of(
        st.sampled_from(("E-1", "e.1:2_x", "A" * 64, "0", "-", "..", ":" * 64)),
        st.text(st.sampled_from(EVENT_ID_CHARS), min_size=1, max_size=64),
    )


_EDGE_TEXT_IDS = edge_text_ids()
_RARE = st.integers(0, 7)  # 7 (about one draw in eight) picks an edge case


def _id(pool: tuple[str, ...], edge_cases: bool) -> st.SearchStrategy[str]:
    if not edge_cases:
        return st.sampled_from(pool)

    # One draw: indexes past the pool (about one in eight) pick an edge case.
    extra = max(1, len(pool) // 7)
    index = st.integers(0, len(pool) - 1 + extra)

    @st.composite
    def build(draw: st.DrawFn) -> str:
        i = draw(index)
        return pool[i] if i < len(pool) else draw(_EDGE_TEXT_IDS)

    return build()


@dataclass(frozen=True)
class _Amount:
    quantity: int
    cents: int
    mills: int | None
    currency: str | None = None


@lru_cache(maxsize=None)
def _usd_half_cent_class(currency: str) -> tuple[int, int]:
    """(residue, period) of line amounts in cents whose amount_usd is exactly x.xx5."""
    r = RATE_MICROS[currency]
    period = 1_000_000 // math.gcd(r, 1_000_000)
    for a in range(1, period):
        if a * r % 1_000_000 == 500_000:
            return a, period
    raise ValueError(currency)  # USD: a rate of 1 never lands on a half cent


def half_cent_line(quantity: int, cents0: int, mills: int) -> _Amount:
    """Adjust a draw so quantity * price * (1 - discount) is exactly x.xx5."""
    for q, m in ((quantity, mills), (quantity | 1, 500), (1 if quantity > 0 else -1, 500)):
        factor = abs(q) * (1000 - m)
        if factor == 0:
            continue
        for cents in range(max(1, cents0), max(1, cents0) + 2000):
            if cents > 100_000_000:
                break
            if factor * cents % 1000 == 500:
                return _Amount(q, cents, m)
    return _Amount(1, 25, 500)  # 0.25 * 0.5 = 0.125


@st.composite
def _amounts(draw: st.DrawFn, edge_cases: bool) -> _Amount:
    """quantity, unit price and discount; the first branch is the plain one."""
    plain = _Amount(
        draw(st.integers(1, 10)),
        draw(st.integers(100, 99_999)),
        draw(st.one_of(st.none(), st.sampled_from((100, 250, 50, 125, 333)))),
    )
    if not edge_cases:
        return plain
    if not draw(st.booleans()):
        return plain
    kind = draw(_AMOUNT_KINDS)
    if kind == "plain":
        return plain
    if kind == "return":
        note("edge: return")
        return replace(plain, quantity=-plain.quantity)
    if kind == "max":
        q = draw(st.sampled_from((c.QUANTITY_MAX, c.QUANTITY_MIN, 1, -1)))
        cents = draw(st.sampled_from((100_000_000, 1, 99_999_999, plain.cents)))
        note("edge: max quantity" if abs(q) == c.QUANTITY_MAX else "edge: unit quantity")
        if cents == 100_000_000:
            note("edge: max price")
        if q < 0:
            note("edge: return")
        return _Amount(q, cents, plain.mills)
    if kind == "half-cent line":
        note("edge: half-cent line")
        q = draw(st.integers(-999, 999).filter(bool))
        mills = draw(st.sampled_from((500, 100, 900, 750, 250, 875, 125, 300, 10, 1)))
        amount = half_cent_line(q, draw(st.integers(1, 99_999)), mills)
        if amount.quantity < 0:
            note("edge: return")
        return amount
    if kind == "half-cent usd":
        currency = draw(st.sampled_from(("EUR", "GBP", "JPY", "CAD")))
        note("edge: half-cent usd")
        residue, period = _usd_half_cent_class(currency)
        k = draw(st.integers(0, 2000))
        cents = residue + k * period
        q = 1 + draw(st.integers(0, (c.QUANTITY_MAX - 1) // period)) * period
        if draw(st.booleans()):
            q = -q
            note("edge: return")
        # q == 1 (mod period), so q * cents is in the same class as cents.
        return _Amount(q, cents, draw(st.sampled_from((None, 0))), currency)
    if kind == "discount":
        mills = draw(st.sampled_from((0, 1000, 1, 999)))
        note({0: "edge: discount 0", 1000: "edge: discount 1"}.get(mills, "edge: discount bound"))
        return replace(plain, mills=mills)
    cents = draw(st.sampled_from((0, 1, 100_000_000)))
    note({0: "edge: zero price", 1: "edge: one cent", 100_000_000: "edge: max price"}[cents])
    return replace(plain, cents=cents)


_AMOUNT_KINDS = st.sampled_from(("return", "max", "half-cent line", "half-cent usd",
                                 "discount", "price"))
_TIME_KINDS = st.sampled_from(("offset", "fraction", "leap", "y2k", "y2099", "midnight"))
_AMOUNTS = {True: _amounts(True), False: _amounts(False)}


@dataclass(frozen=True)
class _When:
    local: datetime
    offset: int
    frac_digits: int


_OFFSETS = (-720, -600, -570, -300, -60, 60, 330, 345, 525, 720, 765, 840)


@st.composite
def _times(draw: st.DrawFn, start: date, end: date, edge_cases: bool) -> _When:
    day = start + timedelta(days=draw(st.integers(0, (end - start).days)))
    seconds = draw(st.integers(0, 86_399))
    base = datetime(day.year, day.month, day.day) + timedelta(seconds=seconds)
    if not edge_cases:
        return _When(base, 0, 0)
    if not draw(st.booleans()):
        return _When(base, 0, 0)
    kind = draw(_TIME_KINDS)
    if kind == "plain":
        return _When(base, 0, 0)
    if kind == "offset":
        offset = draw(st.sampled_from(_OFFSETS))
        note("edge: offset")
        when = _When(base, offset, 0)
    elif kind == "fraction":
        digits = draw(st.integers(1, 6))
        unit = 10 ** (6 - digits)
        micro = draw(st.integers(0, 10**digits - 1)) * unit
        note(f"edge: fraction {digits} digits")
        when = _When(base.replace(microsecond=micro), draw(st.sampled_from((0, *_OFFSETS))),
                     digits)
    elif kind == "leap":
        year = draw(st.sampled_from(("range", 2000, 2024, 2096)))
        leap_days = [date(y, 2, 29) for y in range(start.year, end.year + 1)
                     if y % 4 == 0 and (y % 100 or y % 400 == 0) and start <= date(y, 2, 29) <= end]
        d = leap_days[0] if year == "range" and leap_days else date(2000 if year == "range" else year, 2, 29)
        note("edge: leap day")
        when = _When(datetime(d.year, 2, 29) + timedelta(seconds=seconds),
                     draw(st.sampled_from((0, *_OFFSETS))), 0)
    elif kind == "y2k":
        # Local 2000-01-01 with a positive offset: the UTC instant is in 1999.
        note("edge: 2000-01-01 -> 1999 UTC")
        offset = draw(st.sampled_from((840, 60, 1, 330)))
        when = _When(datetime(2000, 1, 1) + timedelta(seconds=draw(st.integers(0, offset * 60 - 1))),
                     offset, 0)
    elif kind == "y2099":
        note("edge: 2099-12-31")
        offset = draw(st.sampled_from((0, -720, -1, 840)))
        when = _When(datetime(2099, 12, 31, 23, 59, 59, 999_999 if offset else 0), offset,
                     6 if offset else 0)
    else:
        # Just either side of midnight, so any offset moves the sale to another UTC date.
        note("edge: midnight")
        t = datetime(day.year, day.month, day.day) + timedelta(
            microseconds=draw(st.sampled_from((0, -1, 1_000_000 - 1)))
        )
        if not c.YEAR_MIN <= t.year <= c.YEAR_MAX:
            t = datetime(day.year, day.month, day.day)
        when = _When(t, draw(st.sampled_from(_OFFSETS)), 6)
    if (when.local - timedelta(minutes=when.offset)).date() != when.local.date():
        note("edge: crosses UTC date")
    return when


def sales(*, customers: tuple[str, ...], products: tuple[str, ...], start_date: date,
          end_date: date, edge_cases: bool) -> st.SearchStrategy[Sale]:
    """Structured valid sales (arguments already checked)."""
    order_ids = _id(tuple(f"o{i}" for i in range(10)), edge_cases)
    customer_ids = _id(customers, edge_cases)
    product_ids = _id(products, edge_cases)
    categories = _id(PLAIN_CATEGORIES, edge_cases)
    times = _times(start_date, end_date, edge_cases)
    amounts = _AMOUNTS[edge_cases]

    @st.composite
    def build(draw: st.DrawFn) -> Sale:
        event_id = None
        if edge_cases and draw(_RARE) == 7:
            event_id = draw(_EVENT_ID_EDGES)
            note("edge: event_id")
        order_id = draw(order_ids)
        customer_id = draw(customer_ids)
        product_id = draw(product_ids)
        category = draw(categories)
        region = draw(_REGIONS)
        channel = draw(_CHANNELS)
        currency = draw(_CURRENCIES)
        amount = draw(amounts)
        when = draw(times)
        return Sale(
            event_id=event_id, order_id=order_id, customer_id=customer_id,
            product_id=product_id, category=category, region=region, channel=channel,
            currency=amount.currency or currency, quantity=amount.quantity,
            cents=amount.cents, discount_mills=amount.mills, local=when.local,
            offset=when.offset, frac_digits=when.frac_digits,
        )

    return build()


_EVENT_ID_EDGES = event_id_edges()
_REGIONS = st.sampled_from(c.REGIONS)
_CHANNELS = st.sampled_from(c.CHANNELS)
_CURRENCIES = st.sampled_from(c.CURRENCIES)


@st.composite
def spellings(draw: st.DrawFn, sale: Sale | None = None) -> Spelling:
    """A spelling; shrinks to the plain one. Emits a "spelling: ..." event per variation."""
    if not draw(st.integers(0, 3)):
        return PLAIN_SPELLING
    s = Spelling(
        case=draw(st.integers(0, 2**15 - 1)),
        plus=draw(st.booleans()),
        zeros=draw(st.integers(0, 3)),
        price_places=draw(st.sampled_from((2, 1, 0))),
        discount_form=draw(st.integers(0, 2)),
        time_sep=draw(st.sampled_from(("T", " "))),
        frac_pad=draw(st.integers(0, 6)),
        zone=draw(st.integers(0, 2)),
        shift=draw(st.sampled_from((0, 60, -60, 330, -720, 840))),
    )
    if s.case:
        note("edge: mixed case code")
    if s.plus or s.zeros:
        note("spelling: signed or zero-padded quantity")
    if s.time_sep == " ":
        note("spelling: space before time")
    if s.shift:
        note("spelling: same instant in another offset")
    return s


SPELLINGS = spellings()
NON_PLAIN_SPELLINGS = SPELLINGS.filter(lambda s: not s.is_plain)
