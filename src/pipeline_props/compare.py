"""Compare the pipeline's tables with the oracle's and show differing rows side by side.

One comparison level per function, chispa-like:

* :func:`normalise_table` turns rows from any source (psycopg, DuckDB,
  pandas, CSV strings) into canonical Python values per column kind;
* :func:`compare_tables` compares one table as a multiset of rows, pairing
  leftover rows by the table's key (``contract.OUTPUT_KEYS``) so that a row
  with the right key and a wrong value shows as *changed*;
* :func:`compare` does all five tables and returns a :class:`Divergence`
  whose :meth:`~Divergence.render` shows, per differing row, every column
  with the pipeline's and the oracle's values next to each other and the
  differing cells marked;
* :func:`assert_tables_equal` raises :class:`~pipeline_props.errors.DivergenceError`.

Normalisation never rounds: a value that cannot be written exactly in its
column's kind (``10.005`` in a money column, ``2024-01-02 13:00`` in a date
column, ``"abc"`` in a count column) is kept as it is, so it shows up as a
difference instead of being hidden.

:func:`write_table_csv` and :func:`read_table_csv` store one table as CSV and
read it back to exactly the same rows.
"""

from __future__ import annotations

import math
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation, localcontext
from pathlib import Path
from typing import Any

from pipeline_props import contract
from pipeline_props.errors import DivergenceError, InputError, UsageError

#: The five output tables: name -> rows in contract.OUTPUT_TABLES column order.
TableSet = dict[str, list[tuple]]

__all__ = [
    "Divergence",
    "TableDiff",
    "assert_tables_equal",
    "compare",
    "compare_tables",
    "normalise_table",
    "read_table_csv",
    "write_table_csv",
]

#: Text columns of the output tables; every column not in a kind set is a count.
TEXT_COLUMNS: frozenset[str] = frozenset(
    {"region", "category", "customer_id", "product_id", "source_file", "event_id", "reason", "raw_record"}
)
COUNT_COLUMNS: frozenset[str] = frozenset(
    name
    for columns in contract.OUTPUT_TABLES.values()
    for name in columns
    if name
    not in TEXT_COLUMNS | contract.MONEY_COLUMNS | contract.RATE_COLUMNS | contract.DATE_COLUMNS
)

_MONEY_STEP = Decimal("0.01")
_RATE_STEP = Decimal("0.0001")
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_DATE_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


# --------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------


def _kind(column: str) -> str:
    if column in contract.MONEY_COLUMNS:
        return "money"
    if column in contract.RATE_COLUMNS:
        return "rate"
    if column in contract.DATE_COLUMNS:
        return "date"
    if column in TEXT_COLUMNS:
        return "text"
    return "count"


def _is_null(value: object) -> bool:
    """None, float NaN, Decimal NaN, pandas NaT/NA, numpy NaT."""
    if value is None:
        return True
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, Decimal):
        return value.is_nan()
    pandas = sys.modules.get("pandas")  # a pandas value implies pandas is imported
    if pandas is not None and (value is pandas.NaT or value is pandas.NA):
        return True
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        if isinstance(value, numpy.datetime64 | numpy.timedelta64):
            return bool(numpy.isnat(value))
        if isinstance(value, numpy.floating):
            return bool(numpy.isnan(value))
    return False


def _unwrap_numpy(value: object) -> object:
    """numpy scalars to the Python scalar they hold (datetime64 to a date or datetime)."""
    numpy = sys.modules.get("numpy")
    if numpy is None or not isinstance(value, numpy.generic):
        return value
    if isinstance(value, numpy.datetime64):
        as_us = value.astype("datetime64[us]").item()  # datetime, or date at day precision
        return as_us
    return value.item()


def _exact_step(value: Decimal, step: Decimal) -> Decimal:
    """``value`` at ``step``'s scale when that is exact (no rounding), else unchanged; no -0."""
    if not value.is_finite():
        return value
    with localcontext() as ctx:
        ctx.prec = 200
        scaled = value.quantize(step)
    if scaled != value:
        return value
    return scaled if scaled != 0 else Decimal(0).quantize(step)


def _to_decimal(value: object, step: Decimal) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):
        return _exact_step(value, step)
    if isinstance(value, int):
        return _exact_step(Decimal(value), step)
    if isinstance(value, float):
        if not math.isfinite(value):
            return value
        # repr is the shortest text that reads back as this float, so a value
        # that came from a decimal column (10.01 -> float) comes back as 10.01.
        return _exact_step(Decimal(repr(value)), step)
    if isinstance(value, str):
        text = value.strip()
        if _DECIMAL_TEXT.fullmatch(text):
            return _exact_step(Decimal(text), step)
    return value


def _to_int(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, Decimal):
        if value.is_finite() and value == value.to_integral_value():
            return int(value)
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        return value
    if isinstance(value, str):
        text = value.strip()
        if _INT_TEXT.fullmatch(text):
            return int(text)
    return value


def _to_date(value: object) -> object:
    if isinstance(value, datetime):  # also pandas.Timestamp
        if value.tzinfo is None and value.time() == datetime.min.time():
            return value.date()
        return value
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        match = _DATE_TEXT.fullmatch(value.strip())
        if match:
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return value
    return value


def _normalise_value(kind: str, value: object) -> object:
    # Fast path: values that are already canonical (psycopg, DuckDB fetchall, the oracle).
    exact = type(value)
    if value is None or (exact is str and kind == "text") or (exact is int and kind == "count"):
        return value
    if exact is date and kind == "date":
        return value
    if exact is Decimal and kind in ("money", "rate"):
        assert isinstance(value, Decimal)
        sign, _, exponent = value.as_tuple()
        if exponent == (-2 if kind == "money" else -4) and not (sign and not value):
            return value
    if _is_null(value):
        return None
    value = _unwrap_numpy(value)
    if kind == "text":
        return value  # text is compared as written; "" is not NULL
    if isinstance(value, str) and value == "":
        return None  # an empty CSV field in a non-text column
    if kind == "money":
        return _to_decimal(value, _MONEY_STEP)
    if kind == "rate":
        return _to_decimal(value, _RATE_STEP)
    if kind == "date":
        return _to_date(value)
    return _to_int(value)


def _columns(table: str) -> tuple[str, ...]:
    try:
        return contract.OUTPUT_TABLES[table]
    except KeyError:
        raise UsageError(
            f"unknown table {table!r}", hint=f"expected one of {sorted(contract.OUTPUT_TABLES)}"
        ) from None


def normalise_table(table: str, rows: Iterable[Sequence[Any]]) -> list[tuple]:
    """Return ``rows`` of ``table`` as tuples of canonical Python values.

    Per column kind: money -> ``Decimal`` with 2 places, return_rate ->
    ``Decimal`` with 4 places, dates -> ``datetime.date``, counts -> ``int``,
    text -> ``str`` (kept as written; the empty string stays the empty
    string). NULL in any spelling (None, NaN, NaT, pandas NA, and the empty
    string outside text columns) becomes None; numpy scalars, pandas
    Timestamps at midnight, integral Decimals/floats and plain CSV strings are
    converted. A value that cannot be converted exactly is kept unchanged, so
    it compares unequal. ``rows`` may also be a pandas DataFrame, whose
    columns are then taken by name. Raises UsageError for an unknown table or
    a row of the wrong width.
    """
    columns = _columns(table)
    if hasattr(rows, "itertuples") and hasattr(rows, "columns"):  # a pandas DataFrame
        missing = [col for col in columns if col not in rows.columns]
        if missing:
            raise UsageError(f"table {table}: data frame lacks columns {missing}")
        rows = rows[list(columns)].itertuples(index=False, name=None)
    kinds = [_kind(col) for col in columns]
    result = []
    for row in rows:
        values = tuple(row)
        if len(values) != len(columns):
            raise UsageError(
                f"table {table}: a row has {len(values)} values, expected {len(columns)} "
                f"({', '.join(columns)}): {values!r}"
            )
        result.append(tuple(_normalise_value(k, v) for k, v in zip(kinds, values, strict=True)))
    return result


# --------------------------------------------------------------------------
# Comparison
# --------------------------------------------------------------------------


def _sort_key(row: tuple) -> tuple:
    """Total order over rows, None first, tolerant of values of unexpected types."""
    return tuple((0, "", "") if v is None else (1, type(v).__name__, v) for v in row)


def _sorted(rows: Iterable[tuple]) -> list[tuple]:
    rows = list(rows)
    try:
        return sorted(rows, key=_sort_key)
    except TypeError:  # values of one type that do not order (should not happen)
        return sorted(rows, key=repr)


@dataclass(frozen=True)
class TableDiff:
    """How one table differs; empty lists mean the table matches.

    ``missing``: rows the oracle has and the pipeline does not; ``extra``:
    rows the pipeline has and the oracle does not; ``changed``: pairs
    ``(actual, expected)`` with the same key and different values.
    ``absent_in`` names the side ("pipeline" or "oracle") that has no such
    table at all, which is a divergence even when the other side is empty.
    """

    table: str
    columns: tuple[str, ...]
    missing: list[tuple]
    extra: list[tuple]
    changed: list[tuple[tuple, tuple]]
    absent_in: str | None = None

    @property
    def ok(self) -> bool:
        """True when the pipeline's table equals the oracle's."""
        return not (self.missing or self.extra or self.changed or self.absent_in)


def compare_tables(table: str, actual: Iterable[Sequence[Any]], expected: Iterable[Sequence[Any]]) -> TableDiff:
    """Compare one table's rows (pipeline's ``actual``, oracle's ``expected``).

    Both sides are normalised, then compared as multisets (rejected_rows may
    hold the same position twice). Rows left over on both sides with the same
    key (``contract.OUTPUT_KEYS``; the empty key of ingestion_audit pairs its
    single rows) are reported as changed pairs; the rest as missing or extra.
    """
    columns = _columns(table)
    actual_rows = Counter(normalise_table(table, actual))
    expected_rows = Counter(normalise_table(table, expected))
    only_actual = _sorted((actual_rows - expected_rows).elements())
    only_expected = _sorted((expected_rows - actual_rows).elements())

    key_index = [columns.index(col) for col in contract.OUTPUT_KEYS[table]]

    def key(row: tuple) -> tuple:
        return tuple(row[i] for i in key_index)

    by_key: dict[tuple, list[tuple]] = {}
    for row in only_expected:
        by_key.setdefault(key(row), []).append(row)
    changed: list[tuple[tuple, tuple]] = []
    extra: list[tuple] = []
    for row in only_actual:
        candidates = by_key.get(key(row))
        if candidates:
            changed.append((row, candidates.pop(0)))
        else:
            extra.append(row)
    missing = _sorted(row for rows in by_key.values() for row in rows)
    return TableDiff(table=table, columns=columns, missing=missing, extra=extra, changed=changed)


def compare(actual: Mapping[str, Sequence[Any]], expected: Mapping[str, Sequence[Any]]) -> Divergence:
    """Compare the five tables of two TableSets (pipeline's ``actual``, oracle's ``expected``).

    A table absent from one side is compared as empty and marked with
    ``absent_in``. A table name that is not one of the five raises UsageError.
    """
    for side, tables in (("pipeline", actual), ("oracle", expected)):
        unknown = sorted(set(tables) - set(contract.OUTPUT_TABLES))
        if unknown:
            raise UsageError(f"{side} tables include unknown names {unknown}")
    diffs = {}
    for table in contract.OUTPUT_TABLES:
        diff = compare_tables(table, actual.get(table, ()), expected.get(table, ()))
        absent = [side for side, tables in (("pipeline", actual), ("oracle", expected)) if table not in tables]
        if absent:
            diff = TableDiff(
                table=diff.table,
                columns=diff.columns,
                missing=diff.missing,
                extra=diff.extra,
                changed=diff.changed,
                absent_in=" and ".join(absent),
            )
        diffs[table] = diff
    return Divergence(diffs=diffs)


def assert_tables_equal(actual: Mapping[str, Sequence[Any]], expected: Mapping[str, Sequence[Any]]) -> None:
    """Raise DivergenceError (with a ``.divergence`` attribute) unless the TableSets match."""
    divergence = compare(actual, expected)
    if not divergence.ok:
        error = DivergenceError(divergence.render())
        error.divergence = divergence  # type: ignore[attr-defined]
        raise error


# --------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------

_CELL_WIDTH = 60


def _show(value: object) -> str:
    """One cell as text: NULL, repr for text (so spaces, tabs and "" are visible)."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value) if isinstance(value, int) else f"{value!r} ({type(value).__name__})"


def _clip(text: str, around: int = 0) -> str:
    """Shorten ``text`` to the cell width, keeping the part near ``around`` visible."""
    if len(text) <= _CELL_WIDTH:
        return text
    start = max(0, min(around - _CELL_WIDTH // 3, len(text) - _CELL_WIDTH + 2))
    piece = text[start : start + _CELL_WIDTH - 2]
    return ("…" if start > 0 else "") + piece + ("…" if start + len(piece) < len(text) else "")


def _first_difference(a: str, b: str) -> int:
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def _render_pair(columns: Sequence[str], actual: tuple | None, expected: tuple | None) -> list[str]:
    """Lines of a three-column grid: column | pipeline | oracle, differing cells marked."""
    cells: list[tuple[str, str, str, bool]] = []
    for i, column in enumerate(columns):
        left = "(no row)" if actual is None else _show(actual[i])
        right = "(no row)" if expected is None else _show(expected[i])
        differs = actual is not None and expected is not None and actual[i] != expected[i]
        at = _first_difference(left, right) if differs else 0
        cells.append((column, _clip(left, at), _clip(right, at), differs))
    if actual is None or expected is None:
        # One side has no row at all: say so once instead of on every line.
        cells = [(col, left if actual is not None else "", right if expected is not None else "", False)
                 for col, left, right, _ in cells]
    w_col = max(len("column"), *(len(c[0]) for c in cells))
    w_left = max(len("pipeline"), *(len(c[1]) for c in cells))
    lines = [f"    {'':2}{'column':<{w_col}} | {'pipeline':<{w_left}} | oracle"]
    lines.append(f"    {'':2}{'-' * w_col}-+-{'-' * w_left}-+-{'-' * 8}")
    for column, left, right, differs in cells:
        mark = "≠ " if differs else "  "
        lines.append(f"    {mark}{column:<{w_col}} | {left:<{w_left}} | {right}".rstrip())
    return lines


def _key_text(diff: TableDiff, row: tuple) -> str:
    keys = contract.OUTPUT_KEYS[diff.table]
    if not keys:
        return ""
    return " (" + ", ".join(f"{k}={_show(row[diff.columns.index(k)])}" for k in keys) + ")"


def _render_table(diff: TableDiff, max_rows: int) -> list[str]:
    counts = (
        f"{len(diff.changed)} changed, {len(diff.missing)} missing (oracle only), "
        f"{len(diff.extra)} extra (pipeline only)"
    )
    lines = [f"table {diff.table}: {counts}"]
    if diff.absent_in:
        lines.append(f"  the {diff.absent_in} has no table {diff.table} at all")
    entries: list[tuple[str, tuple | None, tuple | None]] = (
        [("changed", a, e) for a, e in diff.changed]
        + [("missing from the pipeline", None, e) for e in diff.missing]
        + [("extra in the pipeline", a, None) for a in diff.extra]
    )
    for label, actual, expected in entries[:max_rows]:
        row = actual if actual is not None else expected
        assert row is not None
        lines.append(f"  {label}{_key_text(diff, row)}:")
        lines.extend(_render_pair(diff.columns, actual, expected))
    if len(entries) > max_rows:
        lines.append(f"  ... and {len(entries) - max_rows} more differing rows not shown")
    return lines


def _json_value(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    return repr(value)


@dataclass(frozen=True)
class Divergence:
    """Differences between the pipeline's TableSet and the oracle's, per table."""

    diffs: dict[str, TableDiff] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every table matches."""
        return all(diff.ok for diff in self.diffs.values())

    def render(self, max_rows: int = 20) -> str:
        """Human-readable report: per differing table, counts, then up to
        ``max_rows`` differing rows, each as a grid ``column | pipeline | oracle``
        with differing cells marked ``≠``. Text values are shown with quotes
        and escapes, NULL as ``NULL``.
        """
        if self.ok:
            return "pipeline and oracle agree on every table"
        bad = [diff for diff in self.diffs.values() if not diff.ok]
        lines = [f"pipeline and oracle differ in {len(bad)} table(s): {', '.join(d.table for d in bad)}"]
        for diff in bad:
            lines.append("")
            lines.extend(_render_table(diff, max_rows))
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict for reports; dates and Decimals as strings, NULL as null."""

        def rows(items: Iterable[tuple]) -> list[list[object]]:
            return [[_json_value(v) for v in row] for row in items]

        tables = {}
        for name, diff in self.diffs.items():
            tables[name] = {
                "ok": diff.ok,
                "columns": list(diff.columns),
                "absent_in": diff.absent_in,
                "counts": {
                    "missing": len(diff.missing),
                    "extra": len(diff.extra),
                    "changed": len(diff.changed),
                },
                "missing": rows(diff.missing),
                "extra": rows(diff.extra),
                "changed": [
                    {
                        "pipeline": rows([a])[0],
                        "oracle": rows([e])[0],
                        "differing_columns": [
                            col for col, x, y in zip(diff.columns, a, e, strict=True) if x != y
                        ],
                    }
                    for a, e in diff.changed
                ],
            }
        return {"ok": self.ok, "tables": tables}


# --------------------------------------------------------------------------
# CSV storage of one table
# --------------------------------------------------------------------------


def _csv_field(value: object) -> str:
    if value is None:
        return ""  # NULL: an unquoted empty field
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'  # text: always quoted, so "" is ''
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


def write_table_csv(path: str | Path, table: str, rows: Iterable[Sequence[Any]]) -> None:
    """Write one table as UTF-8 CSV that :func:`read_table_csv` reads back exactly.

    The header holds the column names. Records end with ``\\n``. NULL is an
    unquoted empty field; every text value is quoted (``""`` doubles a quote),
    so the empty string is ``""`` and commas, quotes and line breaks (``\\r``
    included) survive. Other values are written plainly: Decimals in fixed
    point, dates as ``YYYY-MM-DD``. Rows are normalised first.
    """
    columns = _columns(table)
    lines = [",".join(columns)]
    for row in normalise_table(table, rows):
        lines.append(",".join(_csv_field(v) for v in row))
    Path(path).write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def _parse_csv(text: str, path: str) -> list[list[tuple[str, bool]]]:
    """Records of ``text`` as lists of (value, was_quoted); strict RFC 4180."""
    records: list[list[tuple[str, bool]]] = []
    i, n = 0, len(text)
    while i < n:
        record: list[tuple[str, bool]] = []
        while True:
            if i < n and text[i] == '"':
                j = i + 1
                parts = []
                while True:
                    k = text.find('"', j)
                    if k < 0:
                        raise InputError(path, "unclosed quoted field", record=len(records))
                    parts.append(text[j:k])
                    if k + 1 < n and text[k + 1] == '"':
                        parts.append('"')
                        j = k + 2
                        continue
                    i = k + 1
                    break
                record.append(("".join(parts), True))
            else:
                j = i
                while i < n and text[i] not in ',\r\n':
                    if text[i] == '"':
                        raise InputError(path, "quote inside an unquoted field", record=len(records))
                    i += 1
                record.append((text[j:i], False))
            if i < n and text[i] == ",":
                i += 1
                continue
            if i == n or text[i] in "\r\n":
                if text.startswith("\r\n", i):
                    i += 2
                elif i < n:
                    i += 1
                break
            raise InputError(path, "text after a closing quote", record=len(records))
        records.append(record)
    return records


def read_table_csv(path: str | Path, table: str) -> list[tuple]:
    """Read a table written by :func:`write_table_csv` back into normalised rows.

    An unquoted empty field is NULL; a quoted field is text as written
    (``""`` is the empty string). The header must be the table's columns in
    order. Raises InputError for a file that does not follow that format.
    """
    columns = _columns(table)
    name = str(path)
    text = Path(path).read_bytes().decode("utf-8")
    records = _parse_csv(text, name)
    if not records:
        raise InputError(name, f"no header; expected {','.join(columns)}")
    header = tuple(value for value, _ in records[0])
    if header != columns:
        raise InputError(name, f"header {header} is not the columns of {table}: {columns}")
    rows = []
    for number, record in enumerate(records[1:], start=1):
        if len(record) != len(columns):
            raise InputError(name, f"{len(record)} fields, expected {len(columns)}", record=number)
        rows.append(tuple(None if (value == "" and not quoted) else value for value, quoted in record))
    return normalise_table(table, rows)
