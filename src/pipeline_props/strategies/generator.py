"""Deterministic, fast sales data for runs and benchmarks (no Hypothesis here).

``DataGenerator(config).generate_csv_data(n)`` returns the same bytes for the
same config. Values come from precomputed pools of strings picked with one
``random.Random(seed)``, and rows are joined as bytes, so a million rows take
a few seconds. :meth:`DataGenerator.generate_test_scenario_data` builds the
named scenarios of :data:`SCENARIOS` as :class:`SalesDataset`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from itertools import chain, islice
from datetime import date, datetime, timedelta
from functools import lru_cache

from pipeline_props import contract as c
from pipeline_props import errors
from pipeline_props.strategies._corruptions import _BAD_VALUES, _BAD_UTF8, _BLANKS, REASON_COLUMNS
from pipeline_props.strategies._datasets import (
    PLAIN_FORMAT,
    PLAIN_LOOK,
    FileFormat,
    SalesDataset,
    _Look,
    _render_file,
    _Row,
)
from pipeline_props.strategies._amounts import half_cent_line
from pipeline_props.strategies._amounts import usd_half_cent_class as _usd_half_cent_class
from pipeline_props.strategies._records import Sale, Spelling, format_cents, spell
from pipeline_props.strategies._render import PLAIN_HEADER, Cells, render_cell

SCENARIOS: tuple[str, ...] = (
    "happy_path",
    "data_quality_issues",
    "high_volume",
    "edge_cases",
    "performance_benchmark",
    "error_recovery",
)

#: The data checks' thresholds that a scenario is built to meet. Its corruptions are there by
#: design (data_quality_issues: about 3% identical copies, 12% rejected rows, 2% conflicting
#: versions), so a default threshold tighter than what it injects fails the scenario, not the
#: pipeline. Only thresholds left at their defaults are relaxed (runner.scenario_thresholds).
SCENARIO_THRESHOLDS: dict[str, dict[str, float]] = {
    "data_quality_issues": {"max_duplicate_percentage": 0.05, "min_data_quality_score": 0.70},
}

_CATEGORIES = ("electronics", "books", "toys", "garden", "food", "sports", "beauty", "home")
# Weighted by repetition: mostly small positive quantities, about 4% returns.
_QUANTITIES = tuple(str(q) for q in (*range(1, 11), *range(1, 6), 1, 1, 2, 2, 3, 20, 50, -1))
_DISCOUNTS = ("",) * 6 + ("0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.5")
_CHUNK = 100_000


@dataclass(frozen=True)
class DataGenerationConfig:
    """Settings of the deterministic generator; validated on creation."""

    start_date: date = date(2024, 1, 1)
    end_date: date = date(2024, 12, 31)
    num_customers: int = 1000
    num_products: int = 200
    error_rate: float = 0.0
    seed: int = 42

    def __post_init__(self) -> None:
        for key in ("start_date", "end_date"):
            value = getattr(self, key)
            if not isinstance(value, date) or isinstance(value, datetime):
                raise errors.ConfigError(key, value, "a datetime.date")
            if not c.YEAR_MIN <= value.year <= c.YEAR_MAX:
                raise errors.ConfigError(key, value, f"a date in {c.YEAR_MIN}-{c.YEAR_MAX}")
        if self.end_date < self.start_date:
            raise errors.ConfigError("end_date", self.end_date,
                                     f"a date on or after start_date={self.start_date}")
        for key in ("num_customers", "num_products"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10**8:
                raise errors.ConfigError(key, value, "an integer from 1 to 100000000")
        rate = self.error_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise errors.ConfigError("error_rate", rate, "a number from 0 to 1")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise errors.ConfigError("seed", self.seed, "an integer")


@lru_cache(maxsize=1)
def _times_of_day() -> tuple[str, ...]:
    return tuple(f"{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60)
                 for s in range(60))


@lru_cache(maxsize=4)
def _prices(seed: int) -> tuple[str, ...]:
    rng = random.Random(seed)
    return tuple(format_cents(rng.choice((rng.randint(1, 9_999), rng.randint(100, 999_999))))
                 for _ in range(4096))


class DataGenerator:
    """Seeded sales data: CSV bytes and named scenarios. Same config, same bytes."""

    __test__ = False  # not a test class, whatever pytest thinks of "TestDataGenerator"

    def __init__(self, config: DataGenerationConfig | None = None) -> None:
        self.config = config or DataGenerationConfig()
        cfg = self.config
        width_c = len(str(cfg.num_customers - 1))
        width_p = len(str(cfg.num_products - 1))
        self._customers = tuple(f"C{i:0{width_c}d}" for i in range(cfg.num_customers))
        self._products = tuple(f"P{i:0{width_p}d}" for i in range(cfg.num_products))
        span = (cfg.end_date - cfg.start_date).days
        self._days = tuple(f"{cfg.start_date + timedelta(days=d)}T" for d in range(span + 1))

    # --- valid rows --------------------------------------------------------------------

    def _columns(self, rng: random.Random, first: int, n: int) -> list[list[str]]:
        """Twelve value lists (contract order) for records first .. first+n-1."""
        k = n
        days = rng.choices(self._days, k=k)
        tod = rng.choices(_times_of_day(), k=k)
        return [
            [f"E{i}" for i in range(first, first + n)],
            [f"O{i // 3}" for i in range(first, first + n)],
            rng.choices(self._customers, k=k),
            rng.choices(self._products, k=k),
            rng.choices(_CATEGORIES, k=k),
            rng.choices(c.REGIONS, k=k),
            rng.choices(c.CHANNELS, k=k),
            rng.choices(_QUANTITIES, k=k),
            rng.choices(_prices(self.config.seed), k=k),
            rng.choices(_DISCOUNTS, k=k),
            rng.choices(c.CURRENCIES, k=k),
            [d + t for d, t in zip(days, tod)],
        ]

    def _valid_lines(self, rng: random.Random, first: int, n: int) -> Iterator[bytes]:
        """Valid records first .. first+n-1 as bytes, in chunks (the fast path).

        Columns that do not depend on each other are drawn as precomputed
        combinations, so each record costs a handful of list picks and one f-string.
        """
        attrs = self._pool(rng, "attrs")
        money = self._pool(rng, "money")
        times = _times_of_day()
        for start in range(first, first + n, _CHUNK):
            size = min(_CHUNK, first + n - start)
            base = start // 3
            orders = list(map(str, range(base, (start + size) // 3 + 1)))
            order_ids = islice(chain.from_iterable(zip(orders, orders, orders)),
                               start - 3 * base, None)
            rows = zip(
                map(str, range(start, start + size)), order_ids,
                rng.choices(self._customers, k=size), rng.choices(self._products, k=size),
                rng.choices(attrs, k=size), rng.choices(money, k=size),
                rng.choices(self._days, k=size), rng.choices(times, k=size),
            )
            yield "".join([f"E{e},O{o},{cu},{pr},{at},{mo},{d}{t}\n"
                           for e, o, cu, pr, at, mo, d, t in rows]).encode()

    def _pool(self, rng: random.Random, kind: str) -> list[str]:
        """4096 combinations of category,region,channel,quantity or price,discount,currency."""
        if kind == "attrs":
            return [f"{rng.choice(_CATEGORIES)},{rng.choice(c.REGIONS)},"
                    f"{rng.choice(c.CHANNELS)},{rng.choice(_QUANTITIES)}" for _ in range(4096)]
        prices = _prices(self.config.seed)
        return [f"{rng.choice(prices)},{rng.choice(_DISCOUNTS)},{rng.choice(c.CURRENCIES)}"
                for _ in range(4096)]

    def _value_rows(self, rng: random.Random, first: int, n: int) -> list[dict[str, str]]:
        cols = self._columns(rng, first, n)
        return [dict(zip(c.COLUMNS, row)) for row in zip(*cols)]

    def generate_csv_data(self, n: int) -> bytes:
        """A header and ``n`` records; about ``config.error_rate`` of them rejected."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise errors.UsageError(f"n={n!r} must be an integer >= 0")
        rng = random.Random(self.config.seed)
        if not self.config.error_rate:
            return PLAIN_HEADER + b"\n" + b"".join(self._valid_lines(rng, 0, n))
        rows = self._value_rows(rng, 0, n)
        records = _with_errors(rows, rng, self.config.error_rate)
        return PLAIN_HEADER + b"\n" + b"".join(r + b"\n" for r in records)

    # --- scenarios ------------------------------------------------------------------------

    def generate_test_scenario_data(self, name: str, record_count: int) -> SalesDataset:
        """The named scenario (one of :data:`SCENARIOS`) with ``record_count`` records."""
        if name not in SCENARIOS:
            raise errors.UsageError(
                f"unknown scenario {name!r}; valid scenarios: {', '.join(SCENARIOS)}"
            )
        if not isinstance(record_count, int) or isinstance(record_count, bool) or record_count < 0:
            raise errors.UsageError(f"record_count={record_count!r} must be an integer >= 0")
        rng = random.Random(f"{self.config.seed}/{name}")
        n = record_count
        if name in ("happy_path", "performance_benchmark"):
            data = PLAIN_HEADER + b"\n" + b"".join(self._valid_lines(rng, 0, n))
            return SalesDataset(((f"{name}.csv", data),))
        if name in ("high_volume", "error_recovery"):
            parts = (max(1, -(-n // 500_000)) if name == "high_volume"
                     else max(1, min(4, n)))
            files = []
            first = 0
            for p in range(parts):
                size = n // parts + (1 if p < n % parts else 0)
                data = PLAIN_HEADER + b"\n" + b"".join(self._valid_lines(rng, first, size))
                files.append((f"{name}_{p:03d}.csv", data))
                first += size
            return SalesDataset(tuple(files))
        if name == "data_quality_issues":
            return SalesDataset(((f"{name}.csv", _quality_issues(self, rng, n)),))
        return _edge_case_dataset(n)


# --- corruptions for the generator ------------------------------------------------------------

_LABELS: tuple[str, ...] = (
    *(f"{r}/{col}" for r, cols in REASON_COLUMNS.items() for col in cols),
    "MALFORMED_ROW/field count",
    "MALFORMED_ROW/invalid UTF-8",
    "MALFORMED_ROW/quote inside unquoted",
    "MALFORMED_ROW/text after closing quote",
)


def _corrupt(values: dict[str, str], label: str, k: int) -> bytes:
    """One record of ``values`` broken as ``label`` says (the k-th variant)."""
    reason, what = label.split("/", 1)
    if reason != c.MALFORMED_ROW:
        bad = _BLANKS if reason == c.MISSING_FIELD else _BAD_VALUES[(reason, what)]
        values = {**values, what: bad[k % len(bad)]}
        return b",".join(render_cell(values[col]) for col in c.COLUMNS)
    cells = [render_cell(values[col]) for col in c.COLUMNS]
    if what == "field count":
        return b",".join(cells[:-1] if k % 2 else [*cells, b"x"])
    if what == "invalid UTF-8":
        cells[2] += _BAD_UTF8[k % len(_BAD_UTF8)]
    elif what == "quote inside unquoted":
        cells[7] = cells[7][:1] + b'"' + cells[7][1:]
    else:
        cells[0] = b'"' + cells[0] + b'" x'
    return b",".join(cells)


def _with_errors(rows: list[dict[str, str]], rng: random.Random, rate: float) -> list[bytes]:
    out: list[bytes] = []
    n_bad = 0
    for values in rows:
        if rng.random() < rate:
            out.append(_corrupt(values, _LABELS[n_bad % len(_LABELS)], n_bad // len(_LABELS)))
            n_bad += 1
        else:
            out.append(",".join(values[col] for col in c.COLUMNS).encode())
    return out


def _respell(values: dict[str, str]) -> dict[str, str]:
    """The same event in another spelling (identical after normalisation)."""
    q = values["quantity"]
    t = values["event_time"]  # ...THH:MM:SSZ
    return {
        **values,
        "quantity": q if q.startswith("-") else "+" + q,
        "currency": values["currency"].lower(),
        "region": values["region"].lower(),
        "unit_price": values["unit_price"][:-1] if values["unit_price"].endswith("0")
        else values["unit_price"],
        "event_time": t[:10] + " " + t[11:-1] + ".000+00:00",
    }


def _quality_issues(gen: DataGenerator, rng: random.Random, n: int) -> bytes:
    """About 10% rejects over every label, 3% identical and 2% conflicting duplicates."""
    rows = gen._value_rows(rng, 0, n)
    out: list[bytes] = []
    originals: list[dict[str, str]] = []  # rows written as they are, valid
    n_bad = 0
    for values in rows:
        roll = rng.random()
        if roll < 0.10:
            out.append(_corrupt(values, _LABELS[n_bad % len(_LABELS)], n_bad // len(_LABELS)))
            n_bad += 1
        elif roll < 0.13 and originals:
            out.append(",".join(_respell(rng.choice(originals)).values()).encode())
        elif roll < 0.15 and originals:
            src = dict(rng.choice(originals))
            src["quantity"] = "7" if src["quantity"] != "7" else "8"
            out.append(",".join(src.values()).encode())
        else:
            originals.append(values)
            out.append(",".join(values.values()).encode())
    if n >= 20:
        # The last record leaves its quote open: MALFORMED_ROW to the end of the file.
        out[-1] = b'"' + out[-1]
    return PLAIN_HEADER + b"\n" + b"".join(r + b"\n" for r in out)


# --- edge cases, deterministically ------------------------------------------------------------


def _edge_sales() -> list[tuple[Sale, Spelling]]:
    base = Sale(None, "o1", "c1", "p1", "toys", "NA", "online", "USD", 2, 1999, None,
                datetime(2024, 6, 15, 12, 0), 0, 0)
    plain = Spelling()
    out: list[tuple[Sale, Spelling]] = [(base, plain)]
    # Half cents in the line amount, in every currency, for sales and returns.
    for cur in c.CURRENCIES:
        for q, mills in ((1, 500), (-3, 100), (7, 750), (-1, 500)):
            a = half_cent_line(q, 101, mills)
            out.append((replace(base, currency=cur, quantity=a.quantity, cents=a.cents,
                                discount_mills=a.mills), plain))
    # Half cents in amount_usd.
    for cur in ("EUR", "GBP", "JPY", "CAD"):
        residue, period = _usd_half_cent_class(cur)
        out.append((replace(base, currency=cur, quantity=1, cents=residue), plain))
        out.append((replace(base, currency=cur, quantity=-(1 + period), cents=residue), plain))
    # Bounds.
    for q in (c.QUANTITY_MAX, c.QUANTITY_MIN, 1, -1):
        out.append((replace(base, quantity=q, cents=100_000_000), plain))
    for cents in (0, 1, 100_000_000):
        out.append((replace(base, cents=cents), plain))
    for mills in (0, 1000, None, 1, 999):
        out.append((replace(base, discount_mills=mills), plain))
    # Offsets from -12:00 to +14:00 around midnight, moving sales across UTC dates.
    for off in (-720, -570, -60, 60, 330, 345, 765, 840):
        out.append((replace(base, local=datetime(2024, 3, 1, 0, 0, 30), offset=off), plain))
        out.append((replace(base, local=datetime(2024, 2, 29, 23, 59, 59, 999_999), offset=off,
                            frac_digits=6), plain))
    # Leap days and year bounds.
    for d in (date(2000, 2, 29), date(2096, 2, 29)):
        out.append((replace(base, local=datetime(d.year, d.month, d.day, 6)), plain))
    out.append((replace(base, local=datetime(2000, 1, 1, 0, 30), offset=60), plain))
    out.append((replace(base, local=datetime(2000, 1, 1, 13, 59, 59), offset=840), plain))
    out.append((replace(base, local=datetime(2099, 12, 31, 23, 59, 59), offset=0), plain))
    out.append((replace(base, local=datetime(2099, 12, 31, 20), offset=-720), plain))
    # Fractional seconds of 1 to 6 digits.
    for digits in range(1, 7):
        micro = int("123456"[:digits].ljust(6, "0"))
        out.append((replace(base, local=base.local.replace(microsecond=micro),
                            frac_digits=digits), plain))
    # Identifiers: Unicode, 64 code points, look-alikes, quotes and commas.
    for ident in ("caf\u00e9", "cafe\u0301", "Toys", "a,b", 'say "hi"', "x\u0085y",
                  "\u00a0nbsp", "\U0001f600" * 64, "k" * 64, "\u0130stanbul"):
        out.append((replace(base, customer_id=ident, product_id=ident, category=ident,
                            order_id=ident), plain))
    out.append((replace(base, event_id="A" * 64), plain))
    out.append((replace(base, event_id="e.1:2_x-Y"), plain))
    # Mixed case codes and other spellings.
    for mask, shift in ((0b10101_01010_10101, 0), (2**15 - 1, 330), (0b00001_00001_00001, -720)):
        out.append((replace(base, region="EMEA", channel="partner", currency="GBP"),
                    Spelling(case=mask, plus=True, zeros=2, price_places=1, discount_form=1,
                             time_sep=" ", frac_pad=3, zone=1, shift=shift)))
    return out


_EDGE_FORMATS = (
    PLAIN_FORMAT,
    FileFormat(bom=True, line_end="\r\n"),
    FileFormat(line_end="\r", final_terminator=False, trailing_blank=1),
    FileFormat(line_end="mixed", columns=tuple(reversed(c.COLUMNS)) + ("note",),
               quote_header=True),
    FileFormat(columns=("x,y", *c.COLUMNS[6:], *c.COLUMNS[:6], "Event_ID"), pad_header=True),
)
_EDGE_LOOKS = (
    PLAIN_LOOK,
    _Look(quote_all=True),
    _Look(pads=(("quantity", (" ", "\t")), ("region", ("\t", " "))), blank_before=1),
    _Look(extras=("a,b", "line\nbreak")),
    _Look(extras=('q"uote',), pads=(("event_time", ("  ", "")),)),
)


def _edge_case_dataset(n: int) -> SalesDataset:
    """``n`` records cycling through the edge cases, spread over five differently
    formatted files (BOM, CRLF, CR, mixed line ends, extra and shuffled columns...)."""
    sales = _edge_sales()
    per_file: list[list[_Row]] = [[] for _ in _EDGE_FORMATS]
    for i in range(n):
        sale, spelling = sales[i % len(sales)]
        values = spell(sale, spelling, event_id=f"edge{i}")
        if sale.event_id is not None:
            suffix = f"-{i}"
            values["event_id"] = sale.event_id[: 64 - len(suffix)] + suffix
        f = i % len(_EDGE_FORMATS)
        look = _EDGE_LOOKS[(i // len(_EDGE_FORMATS)) % len(_EDGE_LOOKS)]
        per_file[f].append(_Row(f, Cells(values, quote_all=look.quote_all, pads=dict(look.pads)),
                                look))
    files = tuple((f"edge_cases_{f}.csv", _render_file(fmt, per_file[f]))
                  for f, fmt in enumerate(_EDGE_FORMATS))
    return SalesDataset(files)


#: pytest would collect a class named Test*; ``__test__ = False`` above stops it.
TestDataGenerator = DataGenerator
