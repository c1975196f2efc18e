"""The team's own reading of the sales CSV contract: records, header, row validation.

Nothing here comes from pipeline_props: a team writes its own parser and
checks, and the properties compare the result with the oracle.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

COLUMNS = ("event_id", "order_id", "customer_id", "product_id", "category", "region", "channel",
           "quantity", "unit_price", "discount", "currency", "event_time")
REGIONS = {"NA", "EMEA", "APAC", "LATAM"}
CHANNELS = {"online", "store", "partner"}
CURRENCIES = {"USD", "EUR", "GBP", "JPY", "CAD"}

_QUOTE, _COMMA, _CR, _LF = 0x22, 0x2C, 0x0D, 0x0A
_ENDS = b",\r\n"


class RefusedFile(Exception):
    """The file's header cannot be used: nothing of the file may be sent."""


def records(data: bytes, *, skip_empty: bool = True) -> Iterator[tuple[bytes, list[bytes] | None]]:
    """(raw record bytes without terminator, fields or None when the quoting is broken), in order."""
    i, n = 0, len(data)
    while i < n:
        if skip_empty and data[i] in (_CR, _LF):  # an empty line: skipped, not counted
            i += 2 if data[i:i + 2] == b"\r\n" else 1
            continue
        start, fields, broken = i, [], False
        while True:
            if i < n and data[i] == _QUOTE:  # a quoted field
                value, i, closed = bytearray(), i + 1, False
                while i < n:
                    if data[i] == _QUOTE:
                        if data[i + 1:i + 2] == b'"':
                            value.append(_QUOTE)
                            i += 2
                            continue
                        i, closed = i + 1, True
                        break
                    value.append(data[i])
                    i += 1
                if not closed:  # open to the end of the file: one malformed record
                    yield data[start:], None
                    return
                j = i  # text after the closing quote is read as unquoted, and is an error
                while i < n and data[i] not in _ENDS:
                    i += 1
                broken |= i > j
                fields.append(bytes(value))
            else:
                j = i
                while i < n and data[i] not in _ENDS:
                    i += 1
                broken |= _QUOTE in data[j:i]
                fields.append(data[j:i])
            if i < n and data[i] == _COMMA:
                i += 1
                continue
            break
        end = i
        i += 2 if data[i:i + 2] == b"\r\n" else (1 if i < n else 0)
        yield data[start:end], None if broken else fields


def header(data: bytes) -> list[str]:
    """The trimmed column names of a file; raises RefusedFile when the contract refuses the file."""
    body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    first = next(records(body, skip_empty=False), None)
    if not body or first is None or not first[0]:
        raise RefusedFile("no header record")
    raw, fields = first
    if fields is None:
        raise RefusedFile("the header record is malformed")
    try:
        names = [f.decode("utf-8").strip(" \t") for f in fields]
    except UnicodeDecodeError:
        raise RefusedFile("the header is not valid UTF-8") from None
    if "" in names or len(set(names)) != len(names):
        raise RefusedFile("a header name is empty or repeats")
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise RefusedFile(f"missing column(s) {', '.join(missing)}")
    return names


_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_QUANTITY = re.compile(r"[+-]?[0-9]{1,9}")
_PRICE = re.compile(r"[+-]?[0-9]{1,9}(\.[0-9]{1,2})?")
_DISCOUNT = re.compile(r"[+-]?[0-9]{1,3}(\.[0-9]{1,3})?")
_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?"
                   r"(Z|[+-][0-9]{2}:[0-9]{2})")
_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Rejected(Exception):
    """A row fails the contract; ``args[0]`` is the reason code."""


def _text(value: str) -> str:
    if not value:
        raise Rejected("MISSING_FIELD")
    if len(value) > 64 or _CONTROL.search(value):
        raise Rejected("INVALID_FORMAT")
    return value


def _code(value: str, codes: set[str], upper: bool) -> str:
    if not value:
        raise Rejected("MISSING_FIELD")
    folded = (value.upper() if upper else value.lower()) if value.isascii() else value  # ASCII only
    if folded not in codes:
        raise Rejected("UNKNOWN_CODE")
    return folded


def _event_time(value: str) -> datetime:
    if not value:
        raise Rejected("MISSING_FIELD")
    m = _TIME.fullmatch(value)
    if not m:
        raise Rejected("INVALID_FORMAT")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    leap = y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)
    tz = m.group(8)
    oh, om = (0, 0) if tz == "Z" else (int(tz[1:3]), int(tz[4:6]))
    if (not 1 <= mo <= 12 or not 1 <= d <= _DAYS[mo - 1] + (mo == 2 and leap) or h > 23 or mi > 59
            or s > 59 or om > 59 or oh * 60 + om > 14 * 60):
        raise Rejected("INVALID_FORMAT")
    if not 2000 <= y <= 2099:
        raise Rejected("OUT_OF_RANGE")
    micro = int((m.group(7) or ".0")[1:].ljust(6, "0"))
    offset = timedelta(hours=oh, minutes=om) * (-1 if tz.startswith("-") else 1)
    return datetime(y, mo, d, h, mi, s, micro, tzinfo=timezone(offset)).astimezone(timezone.utc)


def validate(fields: dict[str, str], *, refund_bug: bool = False) -> dict[str, object]:
    """Normalised values of one row (contract section 2, columns in order); raises Rejected."""
    event_id = fields["event_id"]
    if not event_id:
        raise Rejected("MISSING_FIELD")
    if not _ID.fullmatch(event_id):
        raise Rejected("INVALID_FORMAT")
    out: dict[str, object] = {"event_id": event_id}
    for column in ("order_id", "customer_id", "product_id", "category"):
        out[column] = _text(fields[column])
    out["region"] = _code(fields["region"], REGIONS, upper=True)
    out["channel"] = _code(fields["channel"], CHANNELS, upper=False)
    q = fields["quantity"]
    if not q:
        raise Rejected("MISSING_FIELD")
    if not _QUANTITY.fullmatch(q):
        raise Rejected("INVALID_FORMAT")
    if not (int(q) != 0 and -100_000 <= int(q) <= 100_000):
        raise Rejected("OUT_OF_RANGE")
    out["quantity"] = abs(int(q)) if refund_bug else int(q)  # the flagged bug: a refund sold
    p = fields["unit_price"]
    if not p:
        raise Rejected("MISSING_FIELD")
    if not _PRICE.fullmatch(p):
        raise Rejected("INVALID_FORMAT")
    if not Decimal(0) <= Decimal(p) <= Decimal("1000000.00"):
        raise Rejected("OUT_OF_RANGE")
    out["unit_price"] = Decimal(p)
    disc = fields["discount"] or "0"
    if not _DISCOUNT.fullmatch(disc):
        raise Rejected("INVALID_FORMAT")
    if not Decimal(0) <= Decimal(disc) <= 1:
        raise Rejected("OUT_OF_RANGE")
    out["discount"] = Decimal(disc)
    out["currency"] = _code(fields["currency"], CURRENCIES, upper=True)
    out["event_time"] = _event_time(fields["event_time"])
    return out
