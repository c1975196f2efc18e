"""Unit and property tests for pipeline_props.pipeline.reader (contract section 1, SPEC section 6)."""

from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline_props.contract import COLUMNS
from pipeline_props.errors import InputError
from pipeline_props.pipeline.reader import (
    Header,
    Record,
    _iter_records_careful,
    _make_record,
    iter_records,
    parse_header,
    read_file,
)
from pipeline_props.testing.profiles import examples_for

pytestmark = pytest.mark.unit

HEADER = ",".join(COLUMNS).encode()
ROW = "e1,o1,c1,p1,toys,NA,online,2,3.50,,USD,2024-01-02T03:04:05Z"
ROW_FIELDS = tuple(ROW.split(","))
BOM = b"\xef\xbb\xbf"


def recs(body: bytes, header: bytes = HEADER, term: bytes = b"\n") -> list[Record]:
    """Records of header + term + body, read by the real reader, checked against the careful path."""
    data = header + term + body
    fast = list(iter_records(data, source_file="f.csv", file_index=3))
    careful = list(_iter_records_careful(data, source_file="f.csv", file_index=3))
    assert fast == careful
    return fast


def one(body: bytes) -> Record:
    records = recs(body)
    assert len(records) == 1, records
    return records[0]


def row(**changes: str) -> bytes:
    """ROW with some fields replaced by raw CSV text."""
    values = dict(zip(COLUMNS, ROW_FIELDS))
    values.update(changes)
    return ",".join(values[c] for c in COLUMNS).encode()


def refused(data: bytes) -> str:
    with pytest.raises(InputError) as info:
        parse_header(data, "in.csv")
    assert info.value.file == "in.csv"
    with pytest.raises(InputError):
        iter_records(data, source_file="in.csv")  # raises before any iteration
    return info.value.problem


# --------------------------------------------------------------------------- Record


def test_record_fields_and_event_id() -> None:
    r = one(ROW.encode())
    assert r == Record(3, "f.csv", 1, ROW, ROW_FIELDS, None)
    assert r.event_id == "e1"
    assert one(row(event_id="  ")).event_id is None
    assert one(b"x").event_id is None


def test_fast_built_record_is_an_ordinary_frozen_record() -> None:
    built = _make_record(1, "a.csv", 2, "raw", ("x",) * 12, None)
    plain = Record(1, "a.csv", 2, "raw", ("x",) * 12, None)
    read = one(ROW.encode())
    for r in (built, read):
        assert type(r) is Record
        with pytest.raises(dataclasses.FrozenInstanceError):
            r.raw = "other"  # type: ignore[misc]
        # (3.11's frozen+slots dataclass raises TypeError here, a CPython quirk.)
        with pytest.raises((AttributeError, TypeError)):
            r.extra = 1  # type: ignore[attr-defined]
    assert built == plain and hash(built) == hash(plain)
    assert dataclasses.asdict(built) == dataclasses.asdict(plain)
    assert dataclasses.replace(read, record_number=9).record_number == 9


# --------------------------------------------------------------------------- header


def test_header_plain() -> None:
    header, start = parse_header(HEADER + b"\r\n" + ROW.encode(), "f.csv")
    assert header == Header("f.csv", COLUMNS, tuple(range(12)), ())
    assert start == len(HEADER) + 2


@pytest.mark.parametrize("term", [b"\n", b"\r", b"\r\n", b""])
def test_header_only_is_an_empty_dataset(term: bytes) -> None:
    assert recs(b"", term=term) == []
    assert list(iter_records(BOM + HEADER + term, source_file="f.csv")) == []


def test_header_terminators_and_offsets() -> None:
    assert parse_header(HEADER, "f")[1] == len(HEADER)
    assert parse_header(HEADER + b"\r", "f")[1] == len(HEADER) + 1
    assert parse_header(BOM + HEADER + b"\r\n", "f")[1] == 3 + len(HEADER) + 2
    # "\r" then "\r\n": the header ends at the first "\r"; then an empty line.
    assert parse_header(HEADER + b"\r\r\n", "f")[1] == len(HEADER) + 1
    assert recs(b"\r\n" + ROW.encode(), term=b"\r")[0].record_number == 1


def test_header_bom_ignored_only_at_start() -> None:
    header, _ = parse_header(BOM + HEADER, "f")
    assert header.columns == COLUMNS
    # A BOM elsewhere is an ordinary character (U+FEFF) of a field.
    r = one(BOM + ROW.encode())
    assert r.fields is not None and r.fields[0] == "\ufeffe1"
    problem = refused(BOM + BOM + HEADER)
    assert "required column 'event_id' missing" in problem
    assert "'\\ufeffevent_id'" in problem


def test_header_shuffled_quoted_trimmed_with_extras() -> None:
    names = list(reversed(COLUMNS))
    cells = [f' \t{n}\t ' for n in names]
    cells[0] = f'"{names[0]}"'  # quoted name
    cells[3] = f'" {names[3]} "'  # quoted, trimmed after unquoting
    cells.insert(5, "note")
    cells.append('"x"" y"')
    header_bytes = ",".join(cells).encode()
    header, _ = parse_header(header_bytes, "s.csv")
    assert header.columns == (*names[:5], "note", *names[5:], 'x" y')
    assert header.extra_columns == ("note", 'x" y')
    assert [header.columns[p] for p in header.positions] == list(COLUMNS)
    values = [f"v_{n}" for n in names]
    values.insert(5, "ignored")
    values.append("also ignored")
    r = one_with(header_bytes, ",".join(values).encode())
    assert r.fields == tuple(f"v_{c}" for c in COLUMNS)
    assert r.malformed is None


def one_with(header: bytes, body: bytes) -> Record:
    records = recs(body, header=header)
    assert len(records) == 1
    return records[0]


def test_header_names_are_case_sensitive() -> None:
    problem = refused(HEADER.replace(b"event_id", b"Event_ID"))
    assert problem.startswith("required column 'event_id' missing from header; header has: 'Event_ID',")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "file is empty; a header record is required"),
        (BOM, "file has no bytes after the byte-order mark; a header record is required"),
        (b"\n" + HEADER, "the first record (the header) is empty"),
        (b"\r\n" + HEADER, "the first record (the header) is empty"),
        (BOM + b"\r" + HEADER, "the first record (the header) is empty"),
        (b'event_"id' + HEADER[8:], "header record is malformed: quote inside unquoted field 1"),
        (b' "event_id"' + HEADER[8:], "header record is malformed: quote inside unquoted field 1"),
        (b'"event_id"x' + HEADER[8:], "header record is malformed: text after closing quote in field 1"),
        (b'"event_id" ' + HEADER[8:], "header record is malformed: text after closing quote in field 1"),
        (HEADER + b',"note\n' + ROW.encode(), "header record is malformed: unclosed quote at end of file"),
    ],
)
def test_header_refusals(data: bytes, expected: str) -> None:
    assert refused(data) == expected


def test_header_invalid_utf8() -> None:
    problem = refused(HEADER + b",n\xffote\n" + ROW.encode())
    assert problem.startswith("header record is malformed: invalid UTF-8 (bytes ff at byte ")


def test_header_empty_names() -> None:
    assert refused(HEADER + b",,x").startswith("header column 13 has an empty name; header has: ")
    assert refused(HEADER + b", \t").startswith("header column 13 has an empty name")
    assert refused(HEADER + b',""').startswith("header column 13 has an empty name")
    assert refused(b" \t\n" + ROW.encode()) == "header column 1 has an empty name; header has: ''"


def test_header_repeated_names_after_trimming() -> None:
    problem = refused(HEADER + b", region\t")
    assert problem.startswith("header name 'region' repeats (columns 6 and 13); header has: ")
    assert "repeats (columns 13 and 14)" in refused(HEADER + b',x,"x"')


def test_header_missing_columns_message() -> None:
    without = ",".join(c for c in COLUMNS if c != "currency")
    problem = refused(without.encode() + b"\n" + ROW.encode())
    assert problem == (
        "required column 'currency' missing from header; header has: "
        + ", ".join(repr(c) for c in COLUMNS if c != "currency")
    )
    problem = refused(b"event_id,region\n")
    assert problem.startswith("required columns 'order_id', 'customer_id', 'product_id', ")
    assert problem.endswith("header has: 'event_id', 'region'")


def test_refusal_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(b"event_id\n")
    with pytest.raises(InputError) as info:
        read_file(path)
    assert info.value.file == str(path)
    assert str(info.value).startswith(f"input file {path}: required columns ")
    with pytest.raises(InputError, match="cannot read the file"):
        read_file(tmp_path / "missing.csv")


# --------------------------------------------------------------------------- terminators


@pytest.mark.parametrize("term", [b"\n", b"\r\n", b"\r"])
def test_each_terminator(term: bytes) -> None:
    body = term.join([row(event_id="a"), row(event_id="b"), row(event_id="c")])
    for tail in (b"", term):
        records = recs(body + tail, term=term)
        assert [r.event_id for r in records] == ["a", "b", "c"]
        assert [r.record_number for r in records] == [1, 2, 3]
        assert all(r.raw == row(event_id=r.event_id or "").decode() for r in records)


def test_mixed_terminators_and_empty_lines() -> None:
    a, b, c, d = (row(event_id=x) for x in "abcd")
    # "\n\r" is two terminators (an empty line between), "\r\r\n" too; empty lines don't count.
    body = a + b"\n\r" + b + b"\r\r\n\n" + c + b"\r\n\r\n\r\n" + d + b"\n\n\n"
    records = recs(b"\n\r\n" + body, term=b"\r")
    assert [(r.event_id, r.record_number) for r in records] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]
    assert all("\r" not in r.raw and "\n" not in r.raw for r in records)


def test_whitespace_only_lines_are_malformed_records() -> None:
    records = recs(b" \n" + row(event_id="a") + b"\n\t\t\n\n" + row(event_id="b"))
    assert [(r.record_number, r.raw, r.malformed) for r in records] == [
        (1, " ", "field count 1, header has 12"),
        (2, row(event_id="a").decode(), None),
        (3, "\t\t", "field count 1, header has 12"),
        (4, row(event_id="b").decode(), None),
    ]


def test_record_numbers_after_quoted_records() -> None:
    body = b"\n".join(
        [row(event_id="a"), row(category='"x\n\ny"'), b"", row(event_id="c"), b'"', b""]
    )
    records = recs(body)
    assert [r.record_number for r in records] == [1, 2, 3, 4]
    assert records[1].fields is not None and records[1].fields[4] == "x\n\ny"
    assert records[3].malformed == "unclosed quote at end of file"


# --------------------------------------------------------------------------- quoting


def test_quoted_fields_commas_quotes_newlines() -> None:
    r = one(row(category='"a, ""b""\r\nc"', order_id='""', region='" NA\t"'))
    assert r.malformed is None
    assert r.fields is not None
    assert r.fields[4] == 'a, "b"\r\nc'
    assert r.fields[1] == ""
    assert r.fields[5] == "NA"
    assert r.raw == row(category='"a, ""b""\r\nc"', order_id='""', region='" NA\t"').decode()


def test_quoted_crlf_does_not_end_record_and_raw_keeps_it() -> None:
    body = row(category='"x\r\ny"') + b"\r\n" + row(event_id="next")
    records = recs(body, term=b"\r\n")
    assert len(records) == 2
    assert records[0].raw == row(category='"x\r\ny"').decode()
    assert records[1].event_id == "next" and records[1].record_number == 2


def test_quoted_last_field_at_end_of_file() -> None:
    r = one(row(event_time='"2024-01-02T03:04:05Z"'))
    assert r.fields == ROW_FIELDS


# --------------------------------------------------------------------------- malformed rows


@pytest.mark.parametrize(
    ("body", "malformed"),
    [
        (row(discount=""), None),
        (ROW.rsplit(",", 1)[0].encode(), "field count 11, header has 12"),
        (row() + b",", "field count 13, header has 12"),
        (row() + b',""', "field count 13, header has 12"),
        (row(category='to"ys'), "quote inside unquoted field 5"),
        (row(category='toys"'), "quote inside unquoted field 5"),
        (row(category=' "toys"'), "quote inside unquoted field 5"),
        (row(category='"toys"x'), "text after closing quote in field 5"),
        (row(category='"toys" '), "text after closing quote in field 5"),
        (row(category='"toys"\t'), "text after closing quote in field 5"),
        (row(category='"to"ys"'), "text after closing quote in field 5"),
        (row(category='"toys"x', region='N"A'), "text after closing quote in field 5"),
        (row(category="to\u00ffys"), None),  # U+00FF, written as UTF-8, is valid text
    ],
)
def test_malformed_descriptions(body: bytes, malformed: str | None) -> None:
    r = one(body)
    assert r.malformed == malformed
    assert r.raw == body.decode()
    assert (r.fields is None) == (malformed is not None)


def test_field_gone_wrong_is_read_to_the_next_delimiter() -> None:
    # After the stray quote the rest of the field is unquoted text: its quote opens nothing,
    # so the comma and the line end still split.
    records = recs(row(category='x"y,z"') + b"\n" + row(event_id="b"))
    assert [r.malformed for r in records] == [
        "quote inside unquoted field 5",
        None,
    ]
    assert records[0].raw == row(category='x"y,z"').decode()
    records = recs(row(category='"a"b"c\nd') + b"\n" + row(event_id="b"))
    before, after = row(category='"a"b"c\nd').decode().split("\n")
    assert [(r.raw, r.malformed) for r in records] == [
        (before, "text after closing quote in field 5"),
        (after, "field count 8, header has 12"),
        (row(event_id="b").decode(), None),
    ]


def test_unclosed_quote_takes_the_rest_of_the_file() -> None:
    rest = b"\r\n" + row(event_id="b") + b"\n\n" + row(event_id="c") + b"\r\n"
    records = recs(row(event_id="a") + b"\n" + row(category='"open') + rest)
    assert len(records) == 2
    assert records[1].malformed == "unclosed quote at end of file"
    assert records[1].raw == (row(category='"open') + rest).decode()
    assert records[1].fields is None and records[1].event_id is None
    assert records[1].record_number == 2


def test_unclosed_quote_after_earlier_problem_keeps_first_problem() -> None:
    r = one(b'a"b,"open\n' + row())
    assert r.malformed == "quote inside unquoted field 1"
    assert r.raw == 'a"b,"open\n' + ROW


def test_invalid_utf8_fast_and_careful() -> None:
    plain = row().replace(b"toys", b"to\xffys")
    quoted = row().replace(b"toys", b'"to\xffys"')
    overlong = row().replace(b"toys", b"\xc0\xaf")
    surrogate = row().replace(b"toys", b"\xed\xa0\x80")
    truncated = row().replace(b"toys", b"\xe2\x82")
    body = b"\n".join([row(event_id="ok1"), plain, quoted, overlong, surrogate, truncated, row()])
    records = recs(body)
    assert [r.malformed for r in records] == [None] + ["invalid UTF-8"] * 5 + [None]
    assert records[1].raw == plain.decode("utf-8", "replace")
    assert records[2].raw == quoted.decode("utf-8", "replace")
    assert records[3].raw == overlong.decode("utf-8", "replace")
    assert records[4].raw == surrogate.decode("utf-8", "replace")
    assert records[5].raw == truncated.decode("utf-8", "replace")
    assert "\ufffd" in records[1].raw
    assert [r.record_number for r in records] == list(range(1, 8))


def test_structural_problem_before_invalid_utf8_before_field_count() -> None:
    assert one(b'\xff,a"b').malformed == "quote inside unquoted field 2"
    assert one(b"\xff,ab").malformed == "invalid UTF-8"
    assert one(b'"\xff",ab').malformed == "invalid UTF-8"


# --------------------------------------------------------------------------- trimming


def test_trimming_spaces_and_tabs_only() -> None:
    r = one(row(order_id=" \t o 1 \t ", customer_id="\u00a0c\u00a0", product_id="\x0bp\x0c", category='" \ttoys \t"'))
    assert r.fields is not None
    assert r.fields[1:5] == ("o 1", "\u00a0c\u00a0", "\x0bp\x0c", "toys")
    r = one(row(event_id=" \t", discount="  "))
    assert r.fields is not None and r.fields[0] == "" and r.fields[9] == ""
    assert r.event_id is None


def test_trimming_is_per_stretch_not_per_file() -> None:
    body = b"\n".join([row(event_id="a"), row(category='"q"'), row(order_id=" o "), row(event_id="d")])
    records = recs(body)
    assert [r.fields[1] if r.fields else None for r in records] == ["o1", "o1", "o", "o1"]


# --------------------------------------------------------------------------- read_file


def test_read_file(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_bytes(BOM + HEADER + b"\r\n" + row(event_id="a") + b"\r\n" + b"oops\r\n")
    header, records = read_file(str(path), file_index=5)
    assert header.source_file == "sales.csv"
    assert records == [
        Record(5, "sales.csv", 1, row(event_id="a").decode(), tuple(row(event_id="a").decode().split(",")), None),
        Record(5, "sales.csv", 2, "oops", None, "field count 1, header has 12"),
    ]


# --------------------------------------------------------------------------- properties

# A small alphabet that hits every branch: delimiter, quote, each terminator,
# trimmed white space, an invalid byte, and plain text.
ALPHABET = [b"a", b",", b'"', b"\r", b"\n", b" ", b"\t", b"\xff", b"\xc3\xa9", b"\xe2"]


def _field_bytes() -> st.SearchStrategy[bytes]:
    plain = st.lists(st.sampled_from(ALPHABET), max_size=4).map(b"".join)
    quoted = plain.map(lambda b: b'"' + b.replace(b'"', b'""') + b'"')
    return st.one_of(st.sampled_from([b"", b"x", b" y\t"]), plain, quoted)


def _record_bytes(count: int) -> st.SearchStrategy[bytes]:
    quoted = _field_bytes().map(lambda b: b if b.startswith(b'"') else b'"' + b.replace(b'"', b"") + b'"')
    return st.one_of(
        st.lists(_field_bytes(), min_size=count - 1, max_size=count + 1),
        st.lists(quoted, min_size=count - 1, max_size=count + 1),  # every field quoted
    ).map(b",".join)


SHUFFLED = ",".join([*reversed(COLUMNS[:6]), "extra", *COLUMNS[6:]]).encode()
HEADERS = [HEADER, BOM + HEADER, SHUFFLED, b'"' + HEADER.replace(b",", b'\t"," ') + b'"']


@st.composite
def files(draw: st.DrawFn) -> bytes:
    header = draw(st.sampled_from(HEADERS))
    count = len(parse_header(header, "h")[0].columns)
    pieces = st.one_of(
        _record_bytes(count),
        st.lists(st.sampled_from(ALPHABET), max_size=20).map(b"".join),
    )
    terms = st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\r\n"])
    body = draw(st.lists(st.tuples(pieces, terms), max_size=8))
    end = draw(st.sampled_from([b"", b"\n", b"\r\n", b'"', b',"a']))
    return header + draw(terms) + b"".join(p + t for p, t in body) + end


def reference_records(data: bytes) -> list[tuple[int, str, tuple[str, ...] | None, str | None]]:
    """An independent byte-at-a-time reading of the body, for comparison with the reader."""
    header, start = parse_header(data, "ref")
    out: list[tuple[int, str, tuple[str, ...] | None, str | None]] = []
    i, n, number = start, len(data), 0
    terminators = (0x0D, 0x0A)

    def skip_terminator(j: int) -> int:
        return j + 2 if data[j] == 0x0D and j + 1 < n and data[j + 1] == 0x0A else j + 1

    while i < n:
        if data[i] in terminators:
            i = skip_terminator(i)
            continue
        begin, fields, cur, state, problem = i, [], bytearray(), "start", None
        record_end = n
        while True:
            if i >= n:
                if state == "quoted":
                    problem = problem or "unclosed quote at end of file"
                fields.append(bytes(cur))
                break
            c = data[i]
            if state == "quoted":
                if c == 0x22:
                    state = "quote_seen"
                else:
                    cur.append(c)
                i += 1
                continue
            if c == 0x2C:
                fields.append(bytes(cur))
                cur, state = bytearray(), "start"
                i += 1
                continue
            if c in terminators:
                fields.append(bytes(cur))
                record_end = i
                i = skip_terminator(i)
                break
            if state == "start":
                state = "quoted" if c == 0x22 else "unquoted"
                if c != 0x22:
                    cur.append(c)
            elif state == "unquoted":
                if c == 0x22:
                    problem = problem or f"quote inside unquoted field {len(fields) + 1}"
                    state = "broken"
                cur.append(c)
            elif state == "quote_seen":
                if c == 0x22:
                    cur.append(c)
                    state = "quoted"
                else:
                    problem = problem or f"text after closing quote in field {len(fields) + 1}"
                    cur.append(c)
                    state = "broken"
            else:  # broken: unquoted text up to the next delimiter or line end
                cur.append(c)
            i += 1
        raw_bytes = data[begin:record_end]
        number += 1
        try:
            raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            problem = problem or "invalid UTF-8"
        if problem is None and len(fields) != len(header.columns):
            problem = f"field count {len(fields)}, header has {len(header.columns)}"
        values = None
        if problem is None:
            values = tuple(fields[p].decode().strip(" \t") for p in header.positions)
        out.append((number, raw_bytes.decode("utf-8", "replace"), values, problem))
    return out


@settings(max_examples=examples_for("fast") * 2)
@given(files())
@example(HEADER + b"\n" + b"a" * 11 + b'\r"\n"\r\n')
@example(HEADER + b'\r\n\r"a\r\n')
def test_fast_path_equals_careful_path_equals_reference(data: bytes) -> None:
    fast = list(iter_records(data, source_file="f", file_index=1))
    careful = list(_iter_records_careful(data, source_file="f", file_index=1))
    assert fast == careful
    got = [(r.record_number, r.raw, r.fields, r.malformed) for r in fast]
    assert got == reference_records(data)
    assert all(type(r) is Record and r.file_index == 1 and r.source_file == "f" for r in fast)


@settings(max_examples=examples_for("fast") * 2)
@given(st.lists(st.sampled_from(ALPHABET + [HEADER, b"event_id"]), max_size=12).map(b"".join))
def test_any_bytes_are_refused_cleanly_or_read(data: bytes) -> None:
    try:
        records = iter_records(data, source_file="x")
    except InputError as exc:
        assert exc.file == "x" and exc.problem
        return
    fast = list(records)
    assert fast == list(_iter_records_careful(data, source_file="x"))


_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8
).map(lambda s: s.strip(" \t"))


@settings(max_examples=examples_for("fast"))
@given(
    rows=st.lists(st.tuples(*[_text] * 12), max_size=6),
    terminator=st.sampled_from(["\n", "\r\n", "\r"]),
    quote_all=st.booleans(),
)
def test_rows_written_by_the_csv_module_read_back(
    rows: list[tuple[str, ...]], terminator: str, quote_all: bool
) -> None:
    buffer = io.StringIO()
    if quote_all:
        writer = csv.writer(buffer, lineterminator=terminator, quoting=csv.QUOTE_ALL)
    else:
        # QUOTE_MINIMAL quotes a line break only when it is in lineterminator.
        writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    records = list(iter_records(data, source_file="w"))
    assert [r.fields for r in records] == rows
    assert [r.record_number for r in records] == list(range(1, len(rows) + 1))


@pytest.mark.parametrize(
    "body",
    [
        # Each has exactly one place to trim, found by a different check of the fast path.
        row(event_id=" a"),
        row(event_time="t ") + b"\n" + row(),
        row() + b"\n" + row(event_id=" a"),
        row() + b"\r" + row(event_time="t "),
        row(event_time="t "),
        row(order_id="o "),
        row(order_id=" o"),
        row(order_id="\to"),
    ],
)
def test_trimming_found_wherever_the_space_is(body: bytes) -> None:
    records = recs(body)
    assert all(r.fields is not None for r in records)
    assert not any(f != f.strip(" \t") for r in records for f in r.fields or ())


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        (['"e1"', '"a,b"', '""', '" x "'], ["e1", "a,b", "", "x"]),
        (['"e1"', '"a"",""b"', '"c"', '"d"'], ["e1", 'a","b', "c", "d"]),
        (['"e1"', '"a""b"', '"c"', "d"], ["e1", 'a"b', "c", "d"]),
        (['"e1"', '"a""b"', '"c"', '"d"'], ["e1", 'a"b', "c", "d"]),
        (['"e1"', "a", '"c,"', '"d"'], ["e1", "a", "c,", "d"]),
    ],
)
def test_every_field_quoted(cells: list[str], values: list[str]) -> None:
    cells = cells + [f'"{v}"' for v in ROW_FIELDS[4:]]
    r = one(",".join(cells).encode())
    assert r.malformed is None
    assert r.fields == (*values, *ROW_FIELDS[4:])
