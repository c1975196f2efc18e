"""A tiny pure-Python model of the contract, used to test the DuckDB oracle.

Written straight from docs/SPEC.md (sections 1-5 and the readings of
section 6), without looking at the pipeline or the oracle: the model, the
oracle and the pipeline are three independent implementations that test
each other. It favours being obviously right over being fast; it is meant
for datasets of a few dozen rows.

Entry point: :func:`model_tables`, which turns a dataset (an ordered list of
``(file name, file bytes)``) into a TableSet (docs/architecture.md).
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

from pipeline_props import contract as c
from pipeline_props.errors import InputError

BOM = b"\xef\xbb\xbf"
QUOTE = ord('"')
COMMA = ord(",")
CR = ord("\r")
LF = ord("\n")

CENT = Decimal("0.01")
RATE_STEP = Decimal("0.0001")
MICROS_PER_SECOND = 1_000_000
MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND


# --------------------------------------------------------------------------
# Section 1: bytes -> records
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One record as the splitter saw it."""

    raw: bytes  # the record's bytes without its terminator
    fields: tuple[bytes, ...]  # unquoted field bytes (meaningless when bad_quoting)
    bad_quoting: bool  # stray quote, text after a closing quote, or unclosed quote


def split_records(data: bytes) -> Iterator[Record]:
    """Split a file's bytes (BOM already removed) into records, empty lines included.

    A byte-level state machine following section 1 and section 6 literally:

    * ``start``: at the first byte of a field. ``"`` opens a quoted field.
    * ``unquoted``: inside an unquoted field (or a field that went wrong).
      A quote here makes the record malformed and is kept as text.
    * ``quoted``: inside a quoted field; everything but ``"`` is content,
      line breaks and commas included.
    * ``after_quote``: just read a ``"`` inside a quoted field. Another ``"``
      is a literal quote; a comma or line end closes the field; anything else
      makes the record malformed and the rest of the field is unquoted text.

    Outside quotes ``\\r\\n`` is one terminator and a lone ``\\r`` or ``\\n``
    is one terminator. A terminator at the very end of the data does not start
    another record.
    """
    n = len(data)
    pos = 0
    while pos < n:
        start = pos
        fields: list[bytes] = []
        field = bytearray()
        state = "start"
        bad = False
        while True:
            if pos == n:
                end = pos
                if state == "quoted":
                    bad = True  # a quoted field still open at the end of the file
                break
            b = data[pos]
            if state == "quoted":
                if b == QUOTE:
                    state = "after_quote"
                else:
                    field.append(b)
                pos += 1
                continue
            # start, unquoted and after_quote all end a field on a comma and a
            # record on a line end.
            if b == COMMA:
                fields.append(bytes(field))
                field = bytearray()
                state = "start"
                pos += 1
                continue
            if b in (CR, LF):
                end = pos
                if b == CR and pos + 1 < n and data[pos + 1] == LF:
                    pos += 2
                else:
                    pos += 1
                break
            if state == "start":
                if b == QUOTE:
                    state = "quoted"
                else:
                    field.append(b)
                    state = "unquoted"
            elif state == "unquoted":
                if b == QUOTE:
                    bad = True  # a quote inside an unquoted field
                field.append(b)
            else:  # after_quote
                if b == QUOTE:
                    field.append(QUOTE)  # "" is one literal quote
                    state = "quoted"
                else:
                    bad = True  # text after a closing quote
                    field.append(b)
                    state = "unquoted"
            pos += 1
        fields.append(bytes(field))
        yield Record(raw=data[start:end], fields=tuple(fields), bad_quoting=bad)


def _storable(text: str | None) -> str | None:
    """SPEC section 6: U+0000 in rejected_rows text is stored as U+FFFD."""
    return None if text is None else text.replace("\x00", "\ufffd")


def is_utf8(raw: bytes) -> bool:
    """True when ``raw`` is valid UTF-8."""
    try:
        raw.decode("utf-8", "strict")
    except UnicodeDecodeError:
        return False
    return True


def trim(text: str) -> str:
    """Trim spaces and tabs only (not other white space)."""
    return text.strip(" \t")


# --------------------------------------------------------------------------
# Section 2: validation, one column at a time
# --------------------------------------------------------------------------


class Rejected(Exception):
    """A row fails a rule; carries the reason code."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def ascii_upper(text: str) -> str:
    """Upper-case ASCII letters only; every other character is kept as is."""
    return "".join(chr(ord(ch) - 32) if "a" <= ch <= "z" else ch for ch in text)


def ascii_lower(text: str) -> str:
    """Lower-case ASCII letters only; every other character is kept as is."""
    return "".join(chr(ord(ch) + 32) if "A" <= ch <= "Z" else ch for ch in text)


def check_event_id(value: str) -> str:
    """event_id: 1-64 characters from A-Z a-z 0-9 _ . : -"""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    if re.fullmatch(r"[A-Za-z0-9_.:\-]{1,64}", value) is None:
        raise Rejected(c.INVALID_FORMAT)
    return value


def check_text_id(value: str) -> str:
    """order_id, customer_id, product_id, category: 1-64 code points, no C0 control or DEL."""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    if len(value) > c.ID_MAX_CODE_POINTS:
        raise Rejected(c.INVALID_FORMAT)
    for ch in value:
        if ord(ch) <= 0x1F or ord(ch) == 0x7F:
            raise Rejected(c.INVALID_FORMAT)
    return value


def check_code(value: str, codes: Sequence[str], fold: str) -> str:
    """A code list compared with ASCII-only case folding; returns the folded form."""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    folded = ascii_upper(value) if fold == "upper" else ascii_lower(value)
    if folded not in codes:
        raise Rejected(c.UNKNOWN_CODE)
    return folded


def check_quantity(value: str) -> int:
    """quantity: [+-]?[0-9]{1,9}, non-zero, within +-100000."""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    if re.fullmatch(r"[+-]?[0-9]{1,9}", value) is None:
        raise Rejected(c.INVALID_FORMAT)
    q = int(value)  # safe: the expression admitted only ASCII digits and a sign
    if q == 0 or not c.QUANTITY_MIN <= q <= c.QUANTITY_MAX:
        raise Rejected(c.OUT_OF_RANGE)
    return q


def check_unit_price(value: str) -> Decimal:
    """unit_price: [+-]?[0-9]{1,9}(.[0-9]{1,2})?, 0 to 1000000.00."""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    if re.fullmatch(r"[+-]?[0-9]{1,9}(\.[0-9]{1,2})?", value) is None:
        raise Rejected(c.INVALID_FORMAT)
    p = Decimal(value)
    if not c.UNIT_PRICE_MIN <= p <= c.UNIT_PRICE_MAX:
        raise Rejected(c.OUT_OF_RANGE)
    return p


def check_discount(value: str) -> Decimal:
    """discount: optional (missing is 0), [+-]?[0-9]{1,3}(.[0-9]{1,3})?, 0 to 1."""
    if value == "":
        return Decimal(0)  # optional: missing means 0
    if re.fullmatch(r"[+-]?[0-9]{1,3}(\.[0-9]{1,3})?", value) is None:
        raise Rejected(c.INVALID_FORMAT)
    d = Decimal(value)
    if not c.DISCOUNT_MIN <= d <= c.DISCOUNT_MAX:
        raise Rejected(c.OUT_OF_RANGE)
    return d


EVENT_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})"
)


def is_leap(year: int) -> bool:
    """Gregorian leap year rule, applied to every year (0000 is a leap year)."""
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    """Days in a month of the proleptic Gregorian calendar."""
    if month == 2:
        return 29 if is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, by counting.

    Whole years, then whole months, then days: slow but plainly right for the
    years the model ever sees (a year is validated to 2000-2099 before the
    instant is needed; the function is correct for any year >= 0).
    """
    days = 0
    if year >= 1970:
        for y in range(1970, year):
            days += 366 if is_leap(y) else 365
    else:
        for y in range(year, 1970):
            days -= 366 if is_leap(y) else 365
    for m in range(1, month):
        days += days_in_month(year, m)
    return days + day - 1


def civil_from_days(days: int) -> date:
    """Inverse of :func:`days_from_civil`, as a ``datetime.date``."""
    year = 1970
    while days < 0:
        year -= 1
        days += 366 if is_leap(year) else 365
    while days >= (366 if is_leap(year) else 365):
        days -= 366 if is_leap(year) else 365
        year += 1
    month = 1
    while days >= days_in_month(year, month):
        days -= days_in_month(year, month)
        month += 1
    return date(year, month, days + 1)


def check_event_time(value: str) -> int:
    """Validate an event_time and return its UTC instant in integer microseconds."""
    if value == "":
        raise Rejected(c.MISSING_FIELD)
    m = EVENT_TIME.fullmatch(value)
    if m is None:
        raise Rejected(c.INVALID_FORMAT)
    # int() is safe on every group below: the expression admitted ASCII digits only.
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    hour, minute, second = int(m[4]), int(m[5]), int(m[6])
    fraction = m[7]
    micros = int(fraction[1:].ljust(6, "0")) if fraction else 0
    offset = m[8]
    if offset == "Z":
        offset_minutes = 0
    else:
        sign = -1 if offset[0] == "-" else 1
        off_h, off_m = int(offset[1:3]), int(offset[4:6])
        if off_m > 59:
            raise Rejected(c.INVALID_FORMAT)
        offset_minutes = sign * (off_h * 60 + off_m)
        if abs(offset_minutes) > c.MAX_OFFSET_MINUTES:
            raise Rejected(c.INVALID_FORMAT)
    if not 1 <= month <= 12:
        raise Rejected(c.INVALID_FORMAT)
    if not 1 <= day <= days_in_month(year, month):
        raise Rejected(c.INVALID_FORMAT)
    if hour > 23 or minute > 59 or second > 59:
        raise Rejected(c.INVALID_FORMAT)
    if not c.YEAR_MIN <= year <= c.YEAR_MAX:
        raise Rejected(c.OUT_OF_RANGE)
    local = (
        days_from_civil(year, month, day) * MICROS_PER_DAY
        + (hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND
        + micros
    )
    return local - offset_minutes * 60 * MICROS_PER_SECOND


@dataclass(frozen=True)
class Event:
    """The twelve normalised values of a valid row (event_time as a UTC instant)."""

    event_id: str
    order_id: str
    customer_id: str
    product_id: str
    category: str
    region: str
    channel: str
    quantity: int
    unit_price: Decimal
    discount: Decimal
    currency: str
    instant_us: int


def validate(values: dict[str, str]) -> Event:
    """Check the twelve trimmed values in contract order; raise :class:`Rejected`."""
    return Event(
        event_id=check_event_id(values["event_id"]),
        order_id=check_text_id(values["order_id"]),
        customer_id=check_text_id(values["customer_id"]),
        product_id=check_text_id(values["product_id"]),
        category=check_text_id(values["category"]),
        region=check_code(values["region"], c.REGIONS, "upper"),
        channel=check_code(values["channel"], c.CHANNELS, "lower"),
        quantity=check_quantity(values["quantity"]),
        unit_price=check_unit_price(values["unit_price"]),
        discount=check_discount(values["discount"]),
        currency=check_code(values["currency"], c.CURRENCIES, "upper"),
        instant_us=check_event_time(values["event_time"]),
    )


# --------------------------------------------------------------------------
# Files: header, then rows
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One counted record of a file: valid (event set) or rejected (reason set)."""

    file_name: str
    record_number: int
    raw_record: str
    event_id_field: str | None  # trimmed event_id as written; None if empty or malformed
    event: Event | None
    reason: str | None


def read_file(name: str, data: bytes) -> list[Row]:
    """Read one file into rows; raise InputError when the file is refused."""
    if data.startswith(BOM):
        data = data[len(BOM) :]
    if data == b"":
        raise InputError(name, "no header: the file has no bytes after the byte-order mark")
    records = split_records(data)
    header = next(records)
    if header.raw == b"":
        raise InputError(name, "no header: the first record is empty")
    if header.bad_quoting or not is_utf8(header.raw):
        raise InputError(name, "malformed header record")
    names = [trim(f.decode("utf-8")) for f in header.fields]
    for column_name in names:
        if column_name == "":
            raise InputError(name, "a header name is empty")
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise InputError(name, f"header names repeat: {repeated}")
    for required in c.COLUMNS:
        if required not in names:
            raise InputError(name, "required column missing from header", field=required)
    position = {column_name: i for i, column_name in enumerate(names)}

    rows: list[Row] = []
    number = 0
    for record in records:
        if record.raw == b"":
            continue  # an empty line: skipped, not counted
        number += 1
        raw_text = record.raw.decode("utf-8", "replace")
        if record.bad_quoting or not is_utf8(record.raw) or len(record.fields) != len(names):
            rows.append(Row(name, number, raw_text, None, None, c.MALFORMED_ROW))
            continue
        values = {col: trim(record.fields[position[col]].decode("utf-8")) for col in c.COLUMNS}
        event_id_field = values["event_id"] or None
        try:
            event = validate(values)
        except Rejected as rejected:
            rows.append(Row(name, number, raw_text, event_id_field, None, rejected.reason))
        else:
            rows.append(Row(name, number, raw_text, event_id_field, event, None))
    return rows


# --------------------------------------------------------------------------
# Sections 3-5: duplicates, amounts, outputs
# --------------------------------------------------------------------------


def round_half_away(value: Decimal, step: Decimal) -> Decimal:
    """Round to ``step`` with ties away from zero (Decimal's ROUND_HALF_UP); no -0."""
    with localcontext() as ctx:
        ctx.prec = 100  # far beyond any product here, so every step is exact
        rounded = value.quantize(step, rounding=ROUND_HALF_UP)
        return rounded if rounded != 0 else Decimal(0).quantize(step)


def amount_usd(event: Event) -> Decimal:
    """Section 4: line_amount rounded to cents, converted, rounded to cents again."""
    with localcontext() as ctx:
        ctx.prec = 100
        line_amount = round_half_away(event.quantity * event.unit_price * (1 - event.discount), CENT)
        return round_half_away(line_amount * c.FX_RATES_TO_USD[event.currency], CENT)


def rate_half_away(numerator: int, denominator: int) -> Decimal:
    """round(numerator / denominator, 4), ties away from zero, on exact rationals."""
    ratio = Fraction(numerator, denominator)
    sign = -1 if ratio < 0 else 1
    scaled = abs(ratio) * 10_000
    units = int(scaled)  # floor, since scaled >= 0
    if scaled - units >= Fraction(1, 2):
        units += 1
    with localcontext() as ctx:
        ctx.prec = 100
        return (Decimal(sign * units) / 10_000).quantize(RATE_STEP)


def sort_rows(rows: list[tuple]) -> list[tuple]:
    """Sort rows with None before any value in the same column."""
    return sorted(rows, key=lambda row: tuple((v is not None, v) for v in row))


def money_sum(amounts: list[Decimal]) -> Decimal:
    """Exact sum of cent amounts, at two places."""
    with localcontext() as ctx:
        ctx.prec = 100  # exact for any sum the model meets
        total = sum(amounts, Decimal(0))
    return round_half_away(total, CENT)  # only re-scales: no digits are lost


def model_tables(files: Sequence[tuple[str, bytes]]) -> dict[str, list[tuple]]:
    """Run the contract on a dataset and return its TableSet.

    ``files`` is the ordered dataset: ``(name, bytes)`` per file (the name's
    base name is what ``rejected_rows.source_file`` shows). Raises
    :class:`~pipeline_props.errors.InputError` when any file is refused.
    Rows are tuples in ``contract.OUTPUT_TABLES`` column order, each table
    sorted with None first.
    """
    rows: list[Row] = []
    for name, data in files:
        rows.extend(read_file(os.path.basename(name), data))

    # Section 3: group valid rows by event_id.
    versions: dict[str, list[Row]] = {}
    for row in rows:
        if row.event is not None:
            versions.setdefault(row.event.event_id, []).append(row)
    accepted: list[Event] = []
    duplicates = 0
    conflicting: list[Row] = []
    for group in versions.values():
        first = group[0].event
        if all(r.event == first for r in group):
            assert first is not None
            accepted.append(first)
            duplicates += len(group) - 1
        else:
            conflicting.extend(group)

    rejected: list[tuple] = [
        (r.file_name, r.record_number, _storable(r.event_id_field), r.reason, _storable(r.raw_record))
        for r in rows
        if r.reason is not None
    ]
    rejected += [
        (r.file_name, r.record_number, _storable(r.event_id_field), c.CONFLICTING_DUPLICATE,
         _storable(r.raw_record))
        for r in conflicting
    ]

    priced = [(e, amount_usd(e), civil_from_days(e.instant_us // MICROS_PER_DAY)) for e in accepted]

    daily: dict[tuple, list[tuple[Event, Decimal]]] = {}
    customers: dict[str, list[tuple[Event, Decimal, date]]] = {}
    products: dict[str, list[tuple[Event, Decimal]]] = {}
    for event, usd, sale_date in priced:
        daily.setdefault((sale_date, event.region, event.category), []).append((event, usd))
        customers.setdefault(event.customer_id, []).append((event, usd, sale_date))
        products.setdefault(event.product_id, []).append((event, usd))

    daily_rows = []
    for key, items in daily.items():
        gross = money_sum([usd for e, usd in items if e.quantity > 0])
        returns = round_half_away(-money_sum([usd for e, usd in items if e.quantity < 0]), CENT)
        daily_rows.append(
            (
                *key,
                gross,
                returns,
                round_half_away(gross - returns, CENT),
                sum(e.quantity for e, _ in items if e.quantity > 0),
                -sum(e.quantity for e, _ in items if e.quantity < 0),
                len({e.order_id for e, _ in items}),
                len(items),
            )
        )

    customer_rows = [
        (
            customer_id,
            min(d for _, _, d in items),
            max(d for _, _, d in items),
            len({e.order_id for e, _, _ in items}),
            money_sum([usd for _, usd, _ in items]),
        )
        for customer_id, items in customers.items()
    ]

    product_rows = []
    for product_id, items in products.items():
        sold = sum(e.quantity for e, _ in items if e.quantity > 0)
        returned = -sum(e.quantity for e, _ in items if e.quantity < 0)
        product_rows.append(
            (
                product_id,
                sold,
                returned,
                money_sum([usd for _, usd in items]),
                rate_half_away(returned, sold) if sold != 0 else None,
            )
        )

    reason_counts = Counter(r[3] for r in rejected)
    audit = (
        len(rows),
        len(accepted),
        duplicates,
        len(rejected),
        *(reason_counts[reason] for reason in c.REASONS),
    )
    assert audit[0] == audit[1] + audit[2] + audit[3]

    return {
        c.DAILY_SALES: sort_rows(daily_rows),
        c.CUSTOMER_SUMMARY: sort_rows(customer_rows),
        c.PRODUCT_PERFORMANCE: sort_rows(product_rows),
        c.REJECTED_ROWS: sort_rows(rejected),
        c.INGESTION_AUDIT: [audit],
    }
