"""The clauses generation must reach, and the labels of rejected values.

:data:`COVERAGE_LABELS` lists every ``event()`` label a coverage run of
``sales_datasets(max_rows=12, files=(1, 2), error_rate=0.25, duplicate_rate=0.25)``
must see (tests/unit/test_generation_coverage.py; docs/properties.md lists
them too). :func:`bad_value_labels` names the bound or character class a
rejected value crosses.
"""

from __future__ import annotations

import re

from pipeline_props import contract as c
from pipeline_props.strategies._text import CONTROLS

TEXT_COLUMNS = ("order_id", "customer_id", "product_id", "category")

COVERAGE_LABELS: dict[str, tuple[str, ...]] = {
    # Each bound of section 2, valid side then the value just past it.
    "limits": (
        "limit: quantity 100000", "limit: quantity -100000", "limit: quantity +-1",
        "limit: quantity 0", "limit: quantity 100001", "limit: quantity -100001",
        "limit: quantity 9 digits",
        "limit: unit_price 0.00", "limit: unit_price 1000000.00", "limit: line amount 10^9 and more",
        "limit: unit_price -0.01", "limit: unit_price 1000000.01",
        "limit: unit_price 9 digits",
        "limit: discount 0", "limit: discount 1", "limit: discount 1.001",
        "limit: discount -0.001", "limit: discount 3 places", "limit: discount 3 integer digits",
        "limit: id 64 code points", "limit: id 64 code points in more than 64 bytes",
        "limit: id 65 code points", "limit: event_id 64 chars", "limit: event_id 65 chars",
        "limit: year 2000", "limit: year 2099", "limit: year 1999", "limit: year 2100",
        "limit: offset +14:00", "limit: offset -14:00", "limit: offset past 14:00",
        "limit: fraction 6 digits",
    ),
    # Other clauses of sections 2-4, valid and invalid side.
    "clauses": (
        "clause: discount missing", "clause: return (negative quantity)", "clause: 29 February",
        "clause: local date is not the UTC date", "clause: local 2000, UTC 1999",
    ),
    # Character classes of sections 1-2.
    "classes": (
        "class: event_id punctuation", "class: event_id non-ASCII",
        "class: code in mixed ASCII case", "class: code with a non-ASCII look-alike",
        "class: non-ASCII digit", "class: space before time", "class: blank of spaces and tabs",
        "class: text with a control character",
    ),
    # Unicode in valid text values: kept as written, never normalised or trimmed.
    "text": (
        "text: case mapping", "text: not NFC", "text: NFC, NFD differs", "text: compatibility",
        "text: combining mark", "text: space-like", "text: line-break-like", "text: astral",
    ),
    # Half cents (section 4) and the ways a wrong rounding mode shows.
    "rounding": (
        "rounding: half-cent line, even cent (half-even trap)",
        "rounding: half-cent line, odd cent",
        "rounding: half-cent line, negative (half-up trap)",
        "rounding: half-cent line, then converted",
        *(f"rounding: half-cent amount_usd in {cur}" for cur in c.CURRENCIES if cur != "USD"),
        "rounding: half-cent amount_usd, negative", "rounding: 2+ half-cent amounts in one group",
        "rounding: return_rate half at the 4th place",
    ),
    "currencies": tuple(f"currency: {cur}" for cur in c.CURRENCIES),
    # Groups of the marts (section 5) with more than one row or distinct value.
    "keys": (
        "keys: order of 2+ lines", "keys: customer of 2+ orders", "keys: customer on 2+ dates",
        "keys: product of 2+ lines", "keys: product sold and returned",
        "keys: product only returned (NULL return_rate)", "keys: daily_sales group of 2+ lines",
        "keys: daily_sales group of 2+ orders", "keys: order in 2+ daily_sales groups",
        "keys: order shared by 2+ customers", "keys: lookalike ids in one column",
    ),
    # Rejections (sections 1-3) and duplicates.
    "rejections": (
        *(f"corruption: {reason}/" for reason in (c.MISSING_FIELD, c.INVALID_FORMAT,
                                                 c.OUT_OF_RANGE, c.UNKNOWN_CODE)),
        f"corruption: {c.MALFORMED_ROW}/",
        "dup: identical", "dup: identical respelled", "dup: rejected version",
        "dup: conflicting ", "dup: across files", "dup: file ingested twice",
        "refund: full", "refund: one unit", "refund: return_rate trap",
    ),
    "formats": (
        "format: BOM", "format: LF", "format: CRLF", "format: CR", "format: mixed line ends",
        "format: no final terminator", "format: extra columns", "format: lookalike header name",
        "format: shuffled columns", "format: quoted or padded header", "format: empty lines",
        "format: quoted fields", "format: padded fields",
    ),
}


def missing_labels(seen: set[str]) -> list[str]:
    """The required labels not in ``seen``; a label ending in "/" or " " is a prefix."""
    missing = []
    for labels in COVERAGE_LABELS.values():
        for label in labels:
            prefix = label.endswith(("/", " "))
            if not (any(s.startswith(label) for s in seen) if prefix else label in seen):
                missing.append(label)
    return missing


_NUMBERS = re.compile(r"[+-]?(\d*)(?:\.(\d*))?")
_TIME = re.compile(r"(\d{4})-\d\d-\d\d[T ](\d\d):\d\d:(\d\d)(?:\.(\d*))?(Z|[+-]\d\d:\d\d)?")


def bad_value_labels(reason: str, column: str, value: str) -> set[str]:
    """The bound or character class a rejected value crosses, as coverage labels."""
    v = value.strip(" \t")
    out: set[str] = set()
    if reason == c.MISSING_FIELD:
        return {"class: blank of spaces and tabs"} if value else set()
    if any(ch.isdigit() and not ch.isascii() for ch in v) and column not in TEXT_COLUMNS:
        out.add("class: non-ASCII digit")
    if column in TEXT_COLUMNS:
        if len(v) == c.ID_MAX_CODE_POINTS + 1:
            out.add("limit: id 65 code points")
        for label, chars in CONTROLS.items():
            if any(ch in v for ch in chars):
                out |= {f"class: text with {label}", "class: text with a control character"}
    elif column == "event_id":
        if len(v) == c.ID_MAX_CODE_POINTS + 1:
            out.add("limit: event_id 65 chars")
        out.add("class: event_id non-ASCII" if not v.isascii() else "class: event_id other char")
    elif column in ("region", "channel", "currency"):
        if not v.isascii():
            out.add("class: code with a non-ASCII look-alike")
    elif column in ("quantity", "unit_price", "discount"):
        m = _NUMBERS.fullmatch(v)
        if m and m[1].isascii() and (m[2] or "").isascii():
            whole, places = m[1], m[2] or ""
            limits = {"quantity": (9, 0), "unit_price": (9, 2), "discount": (3, 3)}[column]
            if len(whole) == limits[0] + 1:
                out.add(f"limit: {column} {limits[0] + 1} digits")
            if limits[1] and len(places) == limits[1] + 1:
                out.add(f"limit: {column} {limits[1] + 1} places")
            if reason == c.OUT_OF_RANGE and column == "quantity" and int(v) == 0:
                out.add("limit: quantity 0")
            elif reason == c.OUT_OF_RANGE and v in ("100001", "-100001", "-0.01", "1000000.01",
                                                    "1.001", "-0.001"):
                out.add(f"limit: {column} {v}")
    else:
        m = _TIME.fullmatch(v)
        if m and reason == c.OUT_OF_RANGE and m[1] in ("1999", "2100"):
            out.add(f"limit: year {m[1]}")
        elif m and m[5] in ("+14:01", "-14:01"):
            out.add("limit: offset past 14:00")
        elif m and len(m[4] or "") == 7:
            out.add("limit: fraction 7 digits")
        elif m and not m[5]:
            out.add("clause: no offset")
        elif v.startswith("2023-02-29"):
            out.add("limit: 29 February in a common year")
    return out
