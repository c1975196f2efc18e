"""SalesDataset, and the strategies for valid records and whole datasets.

A dataset is drawn as structure first (file formats, then a list of entries:
valid sales, corruptions, duplicates) and rendered to bytes last. Every
choice has its plain form as the first (smallest) option, so a failing
dataset shrinks to one LF-terminated row in contract column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_props import contract as c
from pipeline_props.strategies._entries import assemble, entries
from pipeline_props.strategies._formats import (
    _FORMATS,
    PLAIN_FORMAT,
    PLAIN_LOOK,
    FileFormat,
    _Look,
    _render_file,
    _Row,
)
from pipeline_props.strategies._keys import key_pools
from pipeline_props.strategies._records import PLAIN_SPELLING, SPELLINGS, _pool, sales, spell
from pipeline_props.strategies._render import count_records, display_lines

__all__ = ["PLAIN_FORMAT", "PLAIN_LOOK", "FileFormat", "SalesDataset", "_Look", "_Row",
           "_render_file", "sales_datasets", "sales_records"]

# --- the dataset --------------------------------------------------------------------------


@dataclass(frozen=True)
class SalesDataset:
    """An ordered list of CSV files: ``(file name, bytes)`` in dataset order."""

    files: tuple[tuple[str, bytes], ...]

    def write(self, directory: Path) -> list[Path]:
        """Write the files under ``directory`` and return their paths in dataset order.

        Names that repeat (one file ingested twice) go into numbered subfolders
        (``00/sales.csv``, ``01/sales.csv``) so both copies keep their base name.
        """
        directory = Path(directory)
        names = [name for name, _ in self.files]
        nested = len(set(names)) != len(names)
        paths: list[Path] = []
        for index, (name, data) in enumerate(self.files):
            path = directory / f"{index:02d}" / name if nested else directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        return paths

    @property
    def row_count(self) -> int:
        """Data records in all files (records after each header, empty lines not counted)."""
        return sum(count_records(data) for _, data in self.files)

    def __repr__(self) -> str:
        total = self.row_count
        out = [f"SalesDataset(  # {len(self.files)} file(s), {total} record(s)"]
        for index, (name, data) in enumerate(self.files):
            out.append(f"  [{index}] {name} ({count_records(data)} record(s), {len(data)} bytes):")
            lines = display_lines(data) or ["<empty file>"]
            out.extend(f"    {line}" for line in lines)
        out.append(")")
        return "\n".join(out)


# --- argument checking ----------------------------------------------------------------------


def _check_int(name: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be an integer")
    if value < minimum:
        raise InvalidArgument(f"{name}={value!r} must be >= {minimum}")
    return value


def _check_rate(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{name}={value!r} must be a number")
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"{name}={value!r} must be between 0 and 1")
    return float(value)


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgument(f"{name}={value!r} must be True or False")
    return value


def _check_dates(start_date: object, end_date: object) -> tuple[date, date]:
    for name, value in (("start_date", start_date), ("end_date", end_date)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise InvalidArgument(f"{name}={value!r} must be a datetime.date")
        if not c.YEAR_MIN <= value.year <= c.YEAR_MAX:
            raise InvalidArgument(
                f"{name}={value!r} must be within {c.YEAR_MIN}-{c.YEAR_MAX} (contract section 2)"
            )
    assert isinstance(start_date, date) and isinstance(end_date, date)
    if end_date < start_date:
        raise InvalidArgument(f"end_date={end_date!r} must be >= start_date={start_date!r}")
    return start_date, end_date


def _check_files(files: object) -> tuple[int, int]:
    if isinstance(files, int) and not isinstance(files, bool):
        _check_int("files", files, 1)
        return files, files
    if (isinstance(files, tuple) and len(files) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in files)):
        lo, hi = files
        if lo < 1:
            raise InvalidArgument(f"files={files!r}: min={lo} must be >= 1")
        if hi < lo:
            raise InvalidArgument(f"files={files!r}: max={hi} must be >= min={lo}")
        return lo, hi
    raise InvalidArgument(f"files={files!r} must be an int or a (min, max) tuple of ints")


# --- records ---------------------------------------------------------------------------------


def sales_records(
    *,
    customers: int | Sequence[str] = 5,
    products: int | Sequence[str] = 5,
    start_date: date = date(2024, 1, 1),
    end_date: date = date(2024, 12, 31),
    edge_cases: bool = True,
) -> st.SearchStrategy[dict[str, str]]:
    """One valid record: the twelve column values as written, in contract column order.

    ``customers`` and ``products`` are pool sizes (ids ``c0``, ``p0``, ...) or
    the ids themselves. With ``edge_cases`` the record may hold any edge case
    of the contract (half cents, bounds, offsets, leap days, Unicode ids,
    mixed case codes, other spellings); each is labelled with ``event()``.
    Shrinks to ``e0,o0,c0,p0,toys,NA,online,1,1.00,,USD,<start_date>T00:00:00Z``.
    """
    customer_pool = _pool(customers, "c", "customers")
    product_pool = _pool(products, "p", "products")
    start, end = _check_dates(start_date, end_date)
    edges = _check_bool("edge_cases", edge_cases)
    inner = sales(customers=customer_pool, products=product_pool, start_date=start,
                  end_date=end, edge_cases=edges)

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, str]:
        sale = draw(inner)
        spelling = draw(SPELLINGS) if edges else PLAIN_SPELLING
        return spell(sale, spelling, event_id=f"e{draw(st.integers(0, 999))}")

    return build()


# --- datasets --------------------------------------------------------------------------------


def sales_datasets(
    *,
    min_rows: int = 0,
    max_rows: int = 20,
    files: int | tuple[int, int] = 1,
    customers: int | Sequence[str] = 5,
    products: int | Sequence[str] = 5,
    start_date: date = date(2024, 1, 1),
    end_date: date = date(2024, 12, 31),
    error_rate: float = 0.0,
    duplicate_rate: float = 0.1,
    edge_cases: bool = True,
    formatting: bool = True,
) -> st.SearchStrategy[SalesDataset]:
    """Datasets of ``min_rows`` to ``max_rows`` records over ``files`` CSV files.

    About ``error_rate`` of the records are corrupted (every malformation and
    reason code, see :func:`corrupted_records`, and values just past each
    bound) and about ``duplicate_rate`` repeat an earlier event: identical,
    identical in another spelling, conflicting, or a rejected version, within
    and across files. Keys come from small per-dataset pools, so orders have
    several lines, customers several orders and daily groups several rows.
    ``edge_cases`` adds the contract's edge values (bounds, rounding traps,
    Unicode text, refunds); ``formatting`` adds BOM, line ends, quoting,
    padding, shuffled and extra columns and empty lines. Every variation is
    labelled with ``event()`` (see docs/properties.md) and shrinks away.
    """
    lo_rows = _check_int("min_rows", min_rows, 0)
    if not isinstance(max_rows, int) or isinstance(max_rows, bool):
        raise InvalidArgument(f"max_rows={max_rows!r} must be an integer")
    if max_rows < lo_rows:
        raise InvalidArgument(f"max_rows={max_rows!r} must be >= min_rows={min_rows!r}")
    lo_files, hi_files = _check_files(files)
    customer_pool = _pool(customers, "c", "customers")
    product_pool = _pool(products, "p", "products")
    start, end = _check_dates(start_date, end_date)
    err = _check_rate("error_rate", error_rate)
    dup = _check_rate("duplicate_rate", duplicate_rate)
    if err + dup > 1.0:
        raise InvalidArgument(
            f"error_rate={error_rate!r} + duplicate_rate={duplicate_rate!r} must be <= 1"
        )
    edges = _check_bool("edge_cases", edge_cases)
    fmt_on = _check_bool("formatting", formatting)
    pools = key_pools(customers=customer_pool, products=product_pool, start_date=start,
                      end_date=end, edge_cases=edges)
    error_cut = 1000 - round(err * 1000)
    dup_cut = error_cut - round(dup * 1000)

    @st.composite
    def build(draw: st.DrawFn) -> SalesDataset:
        n_files = draw(st.integers(lo_files, hi_files))
        formats = [draw(_FORMATS) if fmt_on else PLAIN_FORMAT for _ in range(n_files)]
        if dup > 0:
            for i in range(1, n_files):
                if draw(st.integers(0, 4)) == 4:
                    formats[i] = replace(formats[i], repeat_previous=True)
        keys = draw(pools)
        drawn = draw(st.lists(
            entries(n_files=n_files, keys=keys, edge_cases=edges, formatting=fmt_on,
                    error_cut=error_cut, dup_cut=dup_cut),
            min_size=lo_rows, max_size=max_rows,
        ))
        return SalesDataset(assemble(formats, drawn))

    return build()
