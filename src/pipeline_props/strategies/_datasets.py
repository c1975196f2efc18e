"""SalesDataset, and the strategies for valid records and whole datasets.

A dataset is drawn as structure first (file formats, then a list of entries:
valid sales, corruptions, duplicates) and rendered to bytes last. Every
choice has its plain form as the first (smallest) option, so a failing
dataset shrinks to one LF-terminated row in contract column order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from pipeline_props import contract as c
from pipeline_props.strategies._corruptions import (
    REASON_COLUMNS,
    CorruptRecord,
    _bad_value,
    any_corruption,
)
from pipeline_props.strategies._records import (
    NON_PLAIN_SPELLINGS,
    PLAIN_SPELLING,
    SPELLINGS,
    Sale,
    Spelling,
    _pool,
    note,
    note_target,
    sales,
    spell,
)
from pipeline_props.strategies._render import (
    BOM,
    Cells,
    count_records,
    display_lines,
    render_header,
    render_record,
)

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


# --- formats ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileFormat:
    """File-level formatting; the default is the plain form."""

    bom: bool = False
    line_end: str = "\n"  # "\n", "\r\n", "\r" or "mixed"
    final_terminator: bool = True
    columns: tuple[str, ...] = c.COLUMNS  # header order, extra columns included
    quote_header: bool = False
    pad_header: bool = False
    trailing_blank: int = 0
    repeat_previous: bool = False  # this file is the previous one again (same name, bytes)


PLAIN_FORMAT = FileFormat()
_MIXED = ("\r\n", "\n", "\r")  # never "\r" then "\n": that would be one CRLF terminator
_EXTRA_NAMES = ("note", "store_id", "Event_ID", "ünïcode", "x,y", 'say "hi"', "_")


@st.composite
def _format_draw(draw: st.DrawFn) -> FileFormat:
    if not draw(st.integers(0, 2)):
        return PLAIN_FORMAT
    columns = list(draw(st.permutations(c.COLUMNS)))
    extras = draw(st.lists(st.sampled_from(_EXTRA_NAMES), max_size=2, unique=True))
    for name in extras:
        columns.insert(draw(st.integers(0, len(columns))), name)
    fmt = FileFormat(
        bom=draw(st.booleans()),
        line_end=draw(st.sampled_from(("\n", "\r\n", "\r", "mixed"))),
        final_terminator=not draw(st.booleans()),
        columns=tuple(columns),
        quote_header=draw(st.booleans()),
        pad_header=draw(st.booleans()),
        trailing_blank=draw(st.integers(0, 2)),
    )
    return fmt


_FORMATS = _format_draw()


def _format_events(fmt: FileFormat) -> None:
    if fmt.bom:
        note("format: BOM")
    note({"\n": "format: LF", "\r\n": "format: CRLF", "\r": "format: CR",
          "mixed": "format: mixed line ends"}[fmt.line_end])
    if not fmt.final_terminator:
        note("format: no final terminator")
    if set(fmt.columns) - set(c.COLUMNS):
        note("format: extra columns")
    if tuple(n for n in fmt.columns if n in c.COLUMNS) != c.COLUMNS:
        note("format: shuffled columns")
    if fmt.quote_header or fmt.pad_header:
        note("format: quoted or padded header")
    if fmt.trailing_blank:
        note("format: empty lines")


@dataclass(frozen=True)
class _Look:
    """Row-level formatting."""

    quote_all: bool = False
    pads: tuple[tuple[str, tuple[str, str]], ...] = ()
    extras: tuple[str, ...] = ()  # values for extra columns, by position
    blank_before: int = 0


PLAIN_LOOK = _Look()
_PADS = (" ", "\t", "  ", " \t")
_EXTRA_VALUES = ("x", "", "a,b", 'q"uote', "line\nbreak", "cr\r\nlf", "\u00e9t\u00e9")


@st.composite
def _look_draw(draw: st.DrawFn) -> _Look:
    if not draw(st.integers(0, 2)):
        return PLAIN_LOOK
    pads = draw(st.dictionaries(st.sampled_from(c.COLUMNS),
                                st.tuples(st.sampled_from(("", *_PADS)),
                                          st.sampled_from(("", *_PADS))), max_size=3))
    return _Look(
        quote_all=draw(st.booleans()),
        pads=tuple(sorted(pads.items())),
        extras=tuple(draw(st.lists(st.sampled_from(_EXTRA_VALUES), max_size=2))),
        blank_before=draw(st.integers(0, 2)),
    )


_LOOKS = _look_draw()
_NO_SALE = Sale(None, "o0", "c0", "p0", "toys", "NA", "online", "USD", 1, 100, None,
                datetime(2024, 1, 1), 0, 0)  # placeholder for corrupt entries
_ROLLS = st.integers(0, 999)
_DUP_KINDS = st.sampled_from(("identical", "respelled", "conflicting", "rejected version"))
_SOURCES = st.integers(0, 63)


# --- entries ---------------------------------------------------------------------------------

_CONFLICTS = ("quantity", "unit_price", "discount", "category case", "customer_id", "region",
              "channel", "currency", "event_time", "order_id", "product_id")


@dataclass(frozen=True)
class _Entry:
    kind: str  # valid | corrupt | dup
    file: int
    sale: Sale
    spelling: Spelling = PLAIN_SPELLING
    look: _Look = PLAIN_LOOK
    bad: CorruptRecord | None = None
    dup: str = ""  # identical | respelled | conflicting | rejected version
    src: int = 0
    conflict: str = ""
    rejected_label: str = ""
    rejected_value: str = ""


def _entries(*, n_files: int, sales_st: st.SearchStrategy[Sale], edge_cases: bool,
             formatting: bool, error_cut: int, dup_cut: int) -> st.SearchStrategy[_Entry]:
    rejectables = st.sampled_from([f"{r}/{col}" for r, cols in REASON_COLUMNS.items()
                                   for col in cols if col != "event_id"])
    files = st.integers(0, n_files - 1)

    @st.composite
    def build(draw: st.DrawFn) -> _Entry:
        roll = draw(_ROLLS)  # shrinks to 0: a valid row
        file = draw(files)
        look = draw(_LOOKS) if formatting else PLAIN_LOOK
        if roll >= error_cut:
            return _Entry("corrupt", file, _NO_SALE, look=look, bad=draw(any_corruption()))
        sale = draw(sales_st)
        spelling = draw(SPELLINGS) if edge_cases else PLAIN_SPELLING
        if roll >= dup_cut:
            dup = draw(_DUP_KINDS)
            entry = _Entry("dup", file, sale, spelling, look, dup=dup, src=draw(_SOURCES))
            if dup == "conflicting":
                entry = replace(entry, conflict=draw(st.sampled_from(_CONFLICTS)))
            elif dup == "rejected version":
                label = draw(rejectables)
                reason, column = label.split("/")
                entry = replace(entry, rejected_label=label,
                                rejected_value=draw(_bad_value(reason, column)))
            elif dup == "respelled" and spelling.is_plain:
                entry = replace(entry, spelling=draw(NON_PLAIN_SPELLINGS))
            return entry
        return _Entry("valid", file, sale, spelling, look)

    return build()


def _conflict(sale: Sale, how: str) -> Sale:
    """A version of ``sale`` that differs in one normalised value and is still valid."""
    if how == "quantity":
        q = sale.quantity + (1 if sale.quantity != c.QUANTITY_MAX and sale.quantity != -1 else -2)
        return replace(sale, quantity=q if q else 2)
    if how == "unit_price":
        return replace(sale, cents=sale.cents + (1 if sale.cents < 100_000_000 else -1))
    if how == "discount":
        # None and 0 are the same value: change to something that is not 0.
        mills = sale.discount_mills or 0
        return replace(sale, discount_mills=500 if mills != 500 else 250)
    if how == "category case":
        swapped = sale.category.swapcase()
        return replace(sale, category=swapped if swapped != sale.category else sale.category + "x")
    if how in ("customer_id", "order_id", "product_id"):
        value = getattr(sale, how)
        return replace(sale, **{how: value + "x" if len(value) < 64 else value[:-1]})
    if how in ("region", "channel", "currency"):
        pool = {"region": c.REGIONS, "channel": c.CHANNELS, "currency": c.CURRENCIES}[how]
        current = getattr(sale, how)
        return replace(sale, **{how: pool[(pool.index(current) + 1) % len(pool)]})
    # event_time: one microsecond (or one second) later or earlier, year kept in range.
    step = timedelta(microseconds=1) if sale.frac_digits == 6 else timedelta(seconds=1)
    later = sale.local + step
    local = later if later.year <= c.YEAR_MAX else sale.local - step
    return replace(sale, local=local)


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
    reason code, see :func:`corrupted_records`) and about ``duplicate_rate``
    repeat an earlier event: identical, identical in another spelling,
    conflicting, or a rejected version, within and across files. ``edge_cases``
    adds the contract's edge values; ``formatting`` adds BOM, line ends,
    quoting, padding, shuffled and extra columns and empty lines. Every
    variation is labelled with ``event()`` and shrinks away.
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
    sales_st = sales(customers=customer_pool, products=product_pool, start_date=start,
                     end_date=end, edge_cases=edges)
    error_cut = 1000 - round(err * 1000)
    dup_cut = error_cut - round(dup * 1000)

    @st.composite
    def build(draw: st.DrawFn) -> SalesDataset:
        n_files = draw(st.integers(lo_files, hi_files))
        formats = [draw(_FORMATS) if fmt_on else PLAIN_FORMAT for _ in range(n_files)]
        if dup > 0:
            for i in range(1, n_files):
                if draw(st.integers(0, 9)) == 9:
                    formats[i] = replace(formats[i], repeat_previous=True)
        entries = draw(st.lists(
            _entries(n_files=n_files, sales_st=sales_st, edge_cases=edges, formatting=fmt_on,
                     error_cut=error_cut, dup_cut=dup_cut),
            min_size=lo_rows, max_size=max_rows,
        ))
        return _assemble(formats, entries)

    return build()


def _assemble(formats: list[FileFormat], entries: list[_Entry]) -> SalesDataset:
    """Resolve ids and duplicates, then render each file."""
    # Event ids: positional e<k>, unique; drawn (edge) ids made unique by a suffix.
    used: set[str] = {f"e{k}" for k in range(len(entries))}
    ids: list[str] = []
    for k, entry in enumerate(entries):
        eid = entry.sale.event_id
        if eid is None:
            eid = f"e{k}"
        elif eid in used:
            suffix = f"_{k}"
            eid = eid[: 64 - len(suffix)] + suffix
        used.add(eid)
        ids.append(eid)

    valid = [k for k, e in enumerate(entries) if e.kind == "valid"]
    rows: list[_Row] = []
    labels: set[str] = set()
    for k, entry in enumerate(entries):
        look = entry.look
        pads = dict(look.pads)
        if entry.kind == "corrupt":
            assert entry.bad is not None
            bad = entry.bad
            labels.add(bad.label)
            if bad.reason != c.MALFORMED_ROW and bad.column != "event_id":
                bad = replace(bad, values={**bad.values, "event_id": ids[k]})
            cells = bad.cells(quote_all=look.quote_all, pads=pads)
            rows.append(_Row(entry.file, cells, look,
                             bad.malformation == "unclosed quote at EOF"))
            continue
        if entry.kind == "dup" and valid:
            # src 0 is the nearest valid row before this one (or after, if none is before),
            # so deleting unrelated rows while shrinking keeps the pair together.
            before = [j for j in valid if j < k]
            pool = before[::-1] or [j for j in valid if j > k]
            j = pool[entry.src % len(pool)]
            src, src_id = entries[j], ids[j]
            original = spell(src.sale, src.spelling, event_id=src_id)
            if entry.dup == "conflicting":
                values = spell(_conflict(src.sale, entry.conflict), entry.spelling, event_id=src_id)
                note(f"dup: conflicting {entry.conflict}")
                labels.add(c.CONFLICTING_DUPLICATE)
            elif entry.dup == "rejected version":
                values = dict(original)
                values[entry.rejected_label.split("/")[1]] = entry.rejected_value
                note("dup: rejected version")
                labels.add(entry.rejected_label)
            elif entry.dup == "respelled":
                values = spell(src.sale, entry.spelling, event_id=src_id)
                note("dup: identical respelled" if values != original else "dup: identical")
            else:
                values = original
                note("dup: identical")
            if entry.file != src.file:
                note("dup: across files")
        else:
            values = spell(entry.sale, entry.spelling, event_id=ids[k])
        rows.append(_Row(entry.file, Cells(values, quote_all=look.quote_all, pads=pads), look))

    files: list[tuple[str, bytes]] = []
    for index, fmt in enumerate(formats):
        if fmt.repeat_previous and files:
            note("dup: file ingested twice")
            files.append(files[-1])
            continue
        mine = [row for row in rows if row.file == index]
        files.append((f"sales_{index}.csv", _render_file(fmt, mine)))
        _format_events(fmt)
    if labels:
        note_target(float(len(labels)), "distinct rejection labels")
    if any(e.look.blank_before for e in entries):
        note("format: empty lines")
    if any(e.look.quote_all for e in entries):
        note("format: quoted fields")
    if any(e.look.pads for e in entries):
        note("format: padded fields")
    return SalesDataset(tuple(files))


@dataclass(frozen=True)
class _Row:
    file: int
    cells: Cells
    look: _Look
    unclosed: bool = False


def _render_file(fmt: FileFormat, rows: list[_Row]) -> bytes:
    extras = [n for n in fmt.columns if n not in c.COLUMNS]
    # An unclosed quote swallows the rest of the file: keep one, last; others get closed
    # with text after the quote (still MALFORMED_ROW, so every record keeps its reason).
    ordered = [row for row in rows if not row.unclosed]
    opened = [row for row in rows if row.unclosed]
    for row in opened[1:]:
        raw = {k: v + b'"x' for k, v in row.cells.raw.items()}
        ordered.append(replace(row, cells=replace(row.cells, raw=raw), unclosed=False))
    if opened:
        ordered.append(opened[0])
        note("format: unclosed quote ends the file")

    header_pads = {n: (" ", "\t") for n in fmt.columns} if fmt.pad_header else None
    parts: list[bytes] = [render_header(fmt.columns, quote=fmt.quote_header, pads=header_pads)]
    for row in ordered:
        parts.extend([b""] * row.look.blank_before)
        cells = row.cells
        if extras:
            values = dict(cells.values)
            for i, name in enumerate(extras):
                values[name] = row.look.extras[i] if i < len(row.look.extras) else ""
            cells = replace(cells, values=values)
        parts.append(render_record(cells, fmt.columns))
    parts.extend([b""] * fmt.trailing_blank)

    out = bytearray(BOM if fmt.bom else b"")
    for i, part in enumerate(parts):
        out += part
        last = i == len(parts) - 1
        if not last or fmt.final_terminator or part == b"":
            out += _terminator(fmt.line_end, i).encode()
    return bytes(out)


def _terminator(line_end: str, k: int) -> str:
    return _MIXED[k % 3] if line_end == "mixed" else line_end
