"""Small per-dataset key pools, so the marts' GROUP BY and COUNT(DISTINCT) see real groups.

Ids drawn at random from a large space almost never collide, so every group
would hold one row. Real sales reuse keys: an order has several lines, a
customer several orders, a product sells many times, many events share one
day, region and category. A dataset therefore draws small pools first (1-6
orders, 1-4 customers and products, 1-3 days, 1-2 regions), each order with its customer, day,
region, channel and currency, each product with its category; lines then pick
from the pools with reuse. Every pool size and index shrinks to 0, so the
plain dataset still reads ``o0, c0, p0, toys, NA, online, USD, <start_date>``.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from hypothesis import strategies as st

from pipeline_props import contract as c
from pipeline_props.strategies._text import lookalike, text_labels, unicode_text_ids

#: Categories of the plain pool; ``Toys`` next to ``toys`` checks that case is kept.
PLAIN_CATEGORIES: tuple[str, ...] = ("toys", "books", "food", "garden")


@dataclass(frozen=True)
class Order:
    """One order: its id and the slots of what its lines share."""

    order_id: str
    customer: int
    day: int
    region: str
    channel: str
    currency: str


@dataclass(frozen=True)
class Keys:
    """The pools one dataset's lines draw from."""

    orders: tuple[Order, ...]
    customers: tuple[str, ...]
    products: tuple[str, ...]
    product_category: tuple[int, ...]  # category slot of each product
    categories: tuple[str, ...]
    days: tuple[date, ...]


_SLOT_KIND = st.integers(0, 5)  # 0-3 plain, 4 an edge id, 5 a lookalike of the previous slot
_REGIONS = st.sampled_from(c.REGIONS)
_CHANNELS = st.sampled_from(c.CHANNELS)
_CURRENCIES = st.sampled_from(c.CURRENCIES)
_EDGE_IDS = unicode_text_ids()
_LOOKALIKE_HOW = st.integers(0, 5)


def _ids(draw: st.DrawFn, universe: tuple[str, ...], size: int,
         edge_cases: bool) -> tuple[str, ...]:
    """``size`` distinct ids: the universe's first ones, some replaced by edge ids."""
    out: list[str] = []
    for i in range(size):
        value = universe[i % len(universe)]
        kind = draw(_SLOT_KIND) if edge_cases else 0
        if kind == 4:
            value = draw(_EDGE_IDS)
        elif kind == 5 and out:
            value = lookalike(out[-1], draw(_LOOKALIKE_HOW))
        if value in out:  # keep slots distinct, so pool sizes mean what they say
            value = f"{universe[i % len(universe)]}_{i}"
        out.append(value)
    return tuple(out)


def key_pools(*, customers: tuple[str, ...], products: tuple[str, ...], start_date: date,
              end_date: date, edge_cases: bool) -> st.SearchStrategy[Keys]:
    """Per-dataset pools over the given universes (arguments already checked)."""
    span = (end_date - start_date).days
    orders_universe = tuple(f"o{i}" for i in range(10))

    @st.composite
    def build(draw: st.DrawFn) -> Keys:
        n_customers = draw(st.integers(1, min(4, len(customers))))
        n_products = draw(st.integers(1, min(4, len(products))))
        n_categories = draw(st.integers(1, 3))
        n_days = draw(st.integers(1, 3))
        n_regions = draw(st.integers(1, 2))
        n_orders = draw(st.integers(1, 6))
        days = tuple(start_date + timedelta(days=draw(st.integers(0, span)))
                     for _ in range(n_days))
        regions = tuple(draw(_REGIONS) for _ in range(n_regions))
        orders = tuple(
            Order(oid, draw(st.integers(0, n_customers - 1)), draw(st.integers(0, n_days - 1)),
                  regions[draw(st.integers(0, n_regions - 1))], draw(_CHANNELS),
                  draw(_CURRENCIES))
            for oid in _ids(draw, orders_universe, n_orders, edge_cases)
        )
        return Keys(
            orders=orders,
            customers=_ids(draw, customers, n_customers, edge_cases),
            products=_ids(draw, products, n_products, edge_cases),
            product_category=tuple(draw(st.integers(0, n_categories - 1))
                                   for _ in range(n_products)),
            categories=_ids(draw, PLAIN_CATEGORIES, n_categories, edge_cases),
            days=days,
        )

    return build()


_RARE = st.integers(0, 7)


def line_keys(draw: st.DrawFn, keys: Keys, edge_cases: bool) -> tuple[date, dict[str, str]]:
    """The day and the key columns (order_id to currency, as Sale names them) of one line:
    its order's, with (rarely) some of them taken from elsewhere."""
    order = keys.orders[draw(st.integers(0, len(keys.orders) - 1))]
    product = draw(st.integers(0, len(keys.products) - 1))
    day = keys.days[order.day]
    line = {
        "order_id": order.order_id, "customer_id": keys.customers[order.customer],
        "product_id": keys.products[product],
        "category": keys.categories[keys.product_category[product]],
        "region": order.region, "channel": order.channel, "currency": order.currency,
    }
    if edge_cases and draw(_RARE) == 7:
        # An inconsistent line: an order split across customers or days, a product
        # listed under another category, another region or currency in one order.
        line["customer_id"] = keys.customers[draw(st.integers(0, len(keys.customers) - 1))]
        line["category"] = keys.categories[draw(st.integers(0, len(keys.categories) - 1))]
        line.update(region=draw(_REGIONS), channel=draw(_CHANNELS), currency=draw(_CURRENCIES))
        day = keys.days[draw(st.integers(0, len(keys.days) - 1))]
    return day, line


# --- labels over accepted lines ------------------------------------------------------------


@dataclass(frozen=True)
class Fact:
    """What the marts group an accepted line by, and what they add up."""

    sale_date: date
    region: str
    category: str
    order_id: str
    customer_id: str
    product_id: str
    quantity: int
    half_cent: bool  # line_amount or amount_usd was rounded from exactly x.xx5


def group_labels(facts: Iterable[Fact]) -> set[str]:
    """``keys: ...`` labels for the groups the marts form over these accepted lines."""
    facts = list(facts)
    out: set[str] = set()
    daily: dict[tuple, list[Fact]] = defaultdict(list)
    by_order: dict[str, list[Fact]] = defaultdict(list)
    by_customer: dict[str, list[Fact]] = defaultdict(list)
    by_product: dict[str, list[Fact]] = defaultdict(list)
    for f in facts:
        daily[(f.sale_date, f.region, f.category)].append(f)
        by_order[f.order_id].append(f)
        by_customer[f.customer_id].append(f)
        by_product[f.product_id].append(f)
    for group in daily.values():
        if len(group) > 1:
            out.add("keys: daily_sales group of 2+ lines")
        if len({f.order_id for f in group}) > 1:
            out.add("keys: daily_sales group of 2+ orders")
        if sum(f.half_cent for f in group) > 1:
            out.add("rounding: 2+ half-cent amounts in one group")
    for lines in by_order.values():
        if len(lines) > 1:
            out.add("keys: order of 2+ lines")
        if len({(f.sale_date, f.region, f.category) for f in lines}) > 1:
            out.add("keys: order in 2+ daily_sales groups")
        if len({f.customer_id for f in lines}) > 1:
            out.add("keys: order shared by 2+ customers")
    for lines in by_customer.values():
        if len({f.order_id for f in lines}) > 1:
            out.add("keys: customer of 2+ orders")
        if len({f.sale_date for f in lines}) > 1:
            out.add("keys: customer on 2+ dates")
    for lines in by_product.values():
        sold = sum(f.quantity for f in lines if f.quantity > 0)
        returned = -sum(f.quantity for f in lines if f.quantity < 0)
        if len(lines) > 1:
            out.add("keys: product of 2+ lines")
        if sold and returned:
            out.add("keys: product sold and returned")
            # return_rate = round(returned / sold, 4): exactly half way at the 5th place?
            if (returned * 100_000) % sold == 0 and (returned * 100_000 // sold) % 10 == 5:
                out.add("rounding: return_rate half at the 4th place")
        elif returned:
            out.add("keys: product only returned (NULL return_rate)")
    for column in ("order_id", "customer_id", "product_id", "category"):
        values = {getattr(f, column) for f in facts}
        if len(values) > len({_folded(v) for v in values}):
            out.add("keys: lookalike ids in one column")
    for value in {v for f in facts for v in (f.order_id, f.customer_id, f.product_id,
                                             f.category)}:
        out |= text_labels(value)
    return out


def _folded(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold().strip("\u00a0\u200b")
