"""Unit and property tests for pipeline_props.pipeline.messages (the Kafka message)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_props.contract import COLUMNS
from pipeline_props.pipeline.messages import COMPACT_VERSION, MESSAGE_VERSION, decode, encode, position
from pipeline_props.pipeline.reader import Record, iter_records
from pipeline_props.testing.profiles import examples_for

pytestmark = pytest.mark.unit

FIELDS = ("e1", "o1", "c1", "p1", "toys", "NA", "online", "2", "3.50", "", "USD", "2024-01-02T03:04:05Z")
KEYS = ["v", "run", "file", "file_index", "record", "raw", "malformed", "fields"]


def expected(record: Record, run_id: str) -> dict[str, Any]:
    return {
        "v": MESSAGE_VERSION,
        "run": run_id,
        "file": record.source_file,
        "file_index": record.file_index,
        "record": record.record_number,
        "raw": record.raw,
        "malformed": record.malformed,
        "fields": None if record.fields is None else dict(zip(COLUMNS, record.fields)),
    }


def expected_compact(record: Record) -> dict[str, Any]:
    assert record.fields is not None
    return {"v": COMPACT_VERSION, "file": record.source_file, "file_index": record.file_index,
            "record": record.record_number, "raw": record.raw, "malformed": None,
            "fields": dict(zip(COLUMNS, record.fields))}


def json_dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def test_valid_record_is_compact() -> None:
    record = Record(2, "sales.csv", 17, ",".join(FIELDS), FIELDS, None)
    key, value = encode(record, "r1")
    assert key == b"e1"
    assert value == b"#2,2,17,sales.csv," + ",".join(FIELDS).encode()
    assert decode(value) == expected_compact(record)
    assert position(value) == (2, 17)


@pytest.mark.parametrize("raw, source_file", [
    (" " + ",".join(FIELDS), "sales.csv"),  # padding the reader trimmed
    ('"e1",' + ",".join(FIELDS[1:]), "sales.csv"),  # quotes
    (",".join(FIELDS) + ",extra", "sales.csv"),  # an extra column
    (",".join(FIELDS), "sa,les.csv"),  # a comma in the file name
    (",".join(FIELDS), "sales\n.csv"),
])
def test_a_record_that_a_comma_split_would_not_give_back_is_json(raw: str, source_file: str) -> None:
    record = Record(2, source_file, 17, raw, FIELDS, None)
    key, value = encode(record, "r1")
    assert key == b"e1"
    assert value.startswith(b'{"v":1,"run":"r1","file":')
    message = decode(value)
    assert list(message) == KEYS
    assert list(message["fields"]) == list(COLUMNS)
    assert message == expected(record, "r1")
    assert position(value) == (2, 17)


@pytest.mark.parametrize("value", [b"#2,", b"#2,0,1", b"#2,x,1,f,a", b"#2,01,1,f,a", b"#2,-1,1,f,a",
                                   b"#2,0,1,f,\xff", b'{"v":1,"file_index":0,"record":1}', b"{bad"])
def test_position_is_none_where_the_transform_reads_none(value: bytes) -> None:
    assert position(value) is None


def test_decode_refuses_a_compact_value_without_twelve_fields() -> None:
    with pytest.raises(ValueError, match="not a compact Kafka message"):
        decode(b"#2,0,1,f.csv,a,b")


def test_malformed_record_has_no_key_and_null_fields() -> None:
    record = Record(0, "a.csv", 3, "\ufffd,x", None, "invalid UTF-8")
    key, value = encode(record, "r")
    assert key is None
    assert b'"malformed":"invalid UTF-8","fields":null}' in value
    assert decode(value) == expected(record, "r")


def test_empty_event_id_has_no_key() -> None:
    record = Record(0, "a.csv", 1, "raw", ("",) + FIELDS[1:], None)
    key, value = encode(record, "r")
    assert key is None
    assert decode(value)["fields"]["event_id"] == ""


def test_non_ascii_kept_and_specials_escaped() -> None:
    fields = ("é😀", 'q"uote', "back\\slash", "tab\tnl\ncr\r", "\x00\x1f\x7f", "\u2028") + FIELDS[6:]
    record = Record(0, "fïle.csv", 1, "ÿ\ufffd", fields, None)
    key, value = encode(record, "rün")
    assert key == "é😀".encode()
    assert "é😀".encode() in value  # not \u-escaped
    assert b"\\u0000" in value and b"\\u001f" in value  # control characters are
    assert value == json_dumps(expected(record, "rün"))
    assert decode(value) == expected(record, "rün")


def test_lone_surrogate_in_file_name_still_gives_json() -> None:
    record = Record(0, "bad\udcff.csv", 1, "raw", None, "field count 1, header has 12")
    _, value = encode(record, "r")
    value.decode("utf-8")  # valid UTF-8
    assert decode(value)["file"] == "bad\udcff.csv"


def test_encode_records_from_the_reader() -> None:
    header = ",".join(COLUMNS).encode()
    data = header + b"\n" + ",".join(FIELDS).encode() + b'\n"a,b\n' + b"x\xff\n"
    records = list(iter_records(data, source_file="s.csv", file_index=4))
    forms = []
    for record in records:
        key, value = encode(record, "run7")
        forms.append(value[:1])
        if value.startswith(b"#2,"):
            assert decode(value) == expected_compact(record)
        else:
            assert value == json_dumps(expected(record, "run7"))
        assert key == (record.event_id.encode() if record.event_id else None)
    assert forms == [b"#", b"{"]  # a plain record; an unclosed quote to the end (malformed)


@pytest.mark.parametrize("value", [b"[1]", b'"x"', b"1", b"null"])
def test_decode_refuses_non_objects(value: bytes) -> None:
    with pytest.raises(ValueError, match="not a JSON object"):
        decode(value)


def test_decode_refuses_bad_json() -> None:
    with pytest.raises(ValueError):
        decode(b'{"v":1')


_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=10)


@settings(max_examples=examples_for("fast"))
@given(
    file_index=st.integers(0, 10**6),
    source_file=_text,
    record_number=st.integers(1, 10**10),
    raw=_text,
    fields=st.none() | st.tuples(*[_text] * len(COLUMNS)),
    malformed=_text,
    run_id=_text,
)
def test_encode_matches_json_dumps(
    file_index: int,
    source_file: str,
    record_number: int,
    raw: str,
    fields: tuple[str, ...] | None,
    malformed: str,
    run_id: str,
) -> None:
    record = Record(file_index, source_file, record_number, raw, fields, None if fields else malformed)
    key, value = encode(record, run_id)
    if value.startswith(b"#2,"):
        assert decode(value) == expected_compact(record)
    else:
        assert value == json_dumps(expected(record, run_id))
        assert decode(value) == expected(record, run_id)
    assert key == (fields[0].encode() if fields and fields[0] else None)


_field = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters=",\n\r"), max_size=6)


@settings(max_examples=examples_for("fast"))
@given(file_index=st.integers(0, 10**6), source_file=_field, record_number=st.integers(1, 10**10),
       fields=st.tuples(*[_field] * len(COLUMNS)))
def test_a_record_whose_raw_is_its_joined_fields_is_compact_and_round_trips(
    file_index: int, source_file: str, record_number: int, fields: tuple[str, ...],
) -> None:
    record = Record(file_index, source_file, record_number, ",".join(fields), fields, None)
    key, value = encode(record, "r")
    assert value.startswith(b"#2,")
    assert decode(value) == expected_compact(record)
    assert position(value) == (file_index, record_number)
    assert key == (fields[0].encode() if fields[0] else None)
