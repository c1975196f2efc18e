"""Quantities, prices and discounts: the plain ones, every bound, and rounding traps.

Rounding is half away from zero (contract section 4). A half-even or half-up
implementation agrees with it everywhere except on an exact half cent: an
even cent digit before the 5 (half-even rounds down), or a negative amount
(half-up rounds towards zero). Both are drawn on purpose, for line_amount and
for amount_usd in each currency; :func:`amount_labels` names what a line holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from hypothesis import strategies as st

from pipeline_props import contract as c

RATE_MICROS: dict[str, int] = {k: int(v * 1_000_000) for k, v in c.FX_RATES_TO_USD.items()}
CENTS_MAX = 100_000_000  # 1000000.00


@dataclass(frozen=True)
class Amount:
    """A drawn quantity, price in cents and discount in thousandths (None: missing)."""

    quantity: int
    cents: int
    mills: int | None
    currency: str | None = None  # set when the trap needs one currency


@lru_cache(maxsize=None)
def usd_half_cent_class(currency: str) -> tuple[int, int]:
    """(residue, period) of line amounts in cents whose amount_usd is exactly x.xx5."""
    r = RATE_MICROS[currency]
    period = 1_000_000 // math.gcd(r, 1_000_000)
    for a in range(1, period):
        if a * r % 1_000_000 == 500_000:
            return a, period
    raise ValueError(currency)  # USD: a rate of 1 never lands on a half cent


def half_cent_line(quantity: int, cents0: int, mills: int, even: bool | None = None) -> Amount:
    """Adjust a draw so quantity * price * (1 - discount) is exactly x.xx5.

    ``even`` asks for an even (half-even rounds down) or odd cent digit before the 5.
    """
    for q, m in ((quantity, mills), (quantity | 1, 500), (1 if quantity > 0 else -1, 500)):
        factor = abs(q) * (1000 - m)
        if factor == 0:
            continue
        for cents in range(max(1, cents0), max(1, cents0) + 2000):
            if cents > CENTS_MAX:
                break
            x1000 = factor * cents
            if x1000 % 1000 == 500 and (even is None or (x1000 // 1000 % 2 == 0) == even):
                return Amount(q, cents, m)
    return Amount(1, 25, 500)  # 0.25 * 0.5 = 0.125


_PLAIN_MILLS = st.one_of(st.none(), st.sampled_from((100, 250, 50, 125, 333)))
_HALF_MILLS = st.sampled_from((500, 100, 900, 750, 250, 875, 125, 300, 10, 1, 0))
# One flat choice of leaves, so each bound and trap is drawn about equally often.
_LEAVES = st.sampled_from((
    "return", "quantity max", "quantity min", "price zero", "price max", "discount zero",
    "discount one", "half-cent line even", "half-cent line odd", "half-cent line negative",
    "usd EUR", "usd GBP", "usd JPY", "usd CAD", "return_rate trap", "line max",
))


@st.composite
def amounts(draw: st.DrawFn, edge_cases: bool) -> Amount:
    """quantity, unit price and discount; the first branch is the plain one."""
    plain = Amount(draw(st.integers(1, 10)), draw(st.integers(100, 99_999)), draw(_PLAIN_MILLS))
    if not edge_cases or not draw(st.integers(0, 2)):
        return plain
    leaf = draw(_LEAVES)
    sign = -1 if draw(st.booleans()) else 1
    signed = replace(plain, quantity=sign * plain.quantity)
    if leaf == "return":
        return replace(plain, quantity=-plain.quantity)
    if leaf.startswith("quantity"):
        return replace(plain, quantity=c.QUANTITY_MAX if leaf == "quantity max" else c.QUANTITY_MIN)
    if leaf == "line max":  # the largest line the bounds allow: 10^5 x 10^6 = 10^11
        return Amount(sign * c.QUANTITY_MAX, CENTS_MAX, draw(_PLAIN_MILLS))
    if leaf.startswith("price"):
        return replace(signed, cents=0 if leaf == "price zero" else CENTS_MAX)
    if leaf.startswith("discount"):
        return replace(signed, mills=0 if leaf == "discount zero" else 1000)
    if leaf.startswith("half-cent line"):
        q = (-1 if leaf.endswith("negative") else 1) * draw(st.integers(1, 999))
        even = None if q < 0 else leaf.endswith("even")
        return half_cent_line(q, draw(st.integers(1, 99_999)), draw(_HALF_MILLS), even=even)
    if leaf.startswith("usd"):
        currency = leaf[4:]
        residue, period = usd_half_cent_class(currency)
        cents = residue + draw(st.integers(0, 2000)) * period
        # q == 1 (mod period), so q * cents is in the same class as cents.
        q = 1 + draw(st.integers(0, (c.QUANTITY_MAX - 1) // period)) * period
        return Amount(sign * q, cents, draw(st.sampled_from((None, 0))), currency)
    # return_rate = round(returned / sold, 4) is exactly half way for 1/32 and 1/160
    # (0.03125, 0.00625: half-even rounds down); a line of 32 or 160 and a return of 1.
    return replace(plain, quantity=draw(st.sampled_from((32, 160, -1))))


def line_amount_x1000(quantity: int, cents: int, mills: int | None) -> int:
    """quantity * unit_price * (1 - discount) in units of 1e-5 of the currency, exact."""
    return quantity * cents * (1000 - (mills or 0))


def _round_half_away(x1000: int) -> int:
    """Units of 1e-5 to cents, half away from zero."""
    q, r = divmod(abs(x1000), 1000)
    return (q + (r >= 500)) * (1 if x1000 >= 0 else -1)


def amount_labels(quantity: int, cents: int, mills: int | None, currency: str) -> set[str]:
    """Bounds and rounding places one valid line reaches."""
    out = {f"currency: {currency}"}
    if abs(quantity) == c.QUANTITY_MAX:
        out.add(f"limit: quantity {quantity}")
    if abs(quantity) == 1:
        out.add("limit: quantity +-1")
    if quantity < 0:
        out.add("clause: return (negative quantity)")
    if cents in (0, CENTS_MAX):
        out.add(f"limit: unit_price {cents // 100}.00")
    if abs(quantity) * cents * (1000 - (mills or 0)) >= 10**14:  # in 1e-5 units: 10^9 and more
        out.add("limit: line amount 10^9 and more")
    if mills is None:
        out.add("clause: discount missing")
    elif mills in (0, 1000):
        out.add(f"limit: discount {mills // 1000}")
    x1000 = line_amount_x1000(quantity, cents, mills)
    if abs(x1000) % 1000 == 500:
        if x1000 < 0:
            out.add("rounding: half-cent line, negative (half-up trap)")
        elif abs(x1000) // 1000 % 2 == 0:
            out.add("rounding: half-cent line, even cent (half-even trap)")
        else:
            out.add("rounding: half-cent line, odd cent")
        if currency != "USD":
            out.add("rounding: half-cent line, then converted")
    if usd_half_cent(quantity, cents, mills, currency):
        out.add(f"rounding: half-cent amount_usd in {currency}")
        if quantity < 0:
            out.add("rounding: half-cent amount_usd, negative")
    return out


def usd_half_cent(quantity: int, cents: int, mills: int | None, currency: str) -> bool:
    """True when amount_usd = round(line_amount * rate, 2) rounds an exact half cent."""
    line_cents = _round_half_away(line_amount_x1000(quantity, cents, mills))
    return abs(line_cents) * RATE_MICROS[currency] % 1_000_000 == 500_000
