"""Compare the pipeline's tables with the oracle's and show differing rows side by side.

One comparison level per function, chispa-like:

* :func:`~pipeline_props.tables.normalise_table` (tables.py) turns rows
  from any source into canonical Python values per column kind;
* :func:`compare_tables` compares one table as a multiset of rows, pairing
  leftover rows by the table's key (``contract.OUTPUT_KEYS``) so that a row
  with the right key and a wrong value shows as *changed*;
* :func:`compare` does all five tables and returns a :class:`Divergence`
  whose :meth:`~Divergence.render` shows, per differing row, every column
  with the pipeline's and the oracle's values next to each other and the
  differing cells marked;
* :func:`assert_tables_equal` raises :class:`~pipeline_props.errors.DivergenceError`.

TableSet, normalise_table, write_table_csv and read_table_csv live in
tables.py (the stages and the oracle use them too) and are re-exported here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipeline_props import contract
from pipeline_props.errors import DivergenceError, UsageError
from pipeline_props.tables import (
    COUNT_COLUMNS,
    TEXT_COLUMNS,
    TableSet,
    normalise_table,
    read_table_csv,
    write_table_csv,
)
from pipeline_props.tables import _columns  # the comparison checks table names the same way

__all__ = [
    "COUNT_COLUMNS",
    "TEXT_COLUMNS",
    "Divergence",
    "TableDiff",
    "TableSet",
    "assert_tables_equal",
    "compare",
    "compare_tables",
    "normalise_table",
    "read_table_csv",
    "write_table_csv",
]


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

