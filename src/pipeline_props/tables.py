"""The five output tables as values: :data:`TableSet`, their canonical form, their CSV files.

The one low place for the shape every stage, the oracle and the checks share:
the pipeline's export and the oracle return a TableSet, compare.py compares
two of them. :func:`normalise_table` turns rows from any source (psycopg,
DuckDB, pandas, CSV strings) into canonical Python values per column kind,
and never rounds: a value that cannot be written exactly in its column's kind
(``10.005`` in a money column, ``2024-01-02 13:00`` in a date column,
``"abc"`` in a count column) is kept as it is, so it shows up as a difference
instead of being hidden. :func:`write_table_csv` and :func:`read_table_csv`
store one table as CSV and read it back to exactly the same rows.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from pipeline_props import contract
from pipeline_props.errors import InputError, UsageError

#: The five output tables: name -> rows in contract.OUTPUT_TABLES column order.
TableSet = dict[str, list[tuple]]

__all__ = ["COUNT_COLUMNS", "TEXT_COLUMNS", "TableSet", "normalise_table", "read_table_csv", "write_table_csv"]

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
