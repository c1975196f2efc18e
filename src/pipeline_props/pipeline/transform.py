"""Spark stage: Kafka messages -> validated, normalised rows (contract section 2).

Every rule is a Spark SQL expression (SQL text, no Python UDF), so validation runs
in the JVM. The expressions never throw, whatever the input and whether ANSI
mode is on or off: numbers are cast with ``try_cast`` and only after their
regular expression matched, and so is event_time (its offset and year are
checked on the matched digits), so a bad row can never fail a batch.

Java regex notes (they matter): ``$`` also matches before a final line
terminator, so every full match here ends in ``\\z``; ``[0-9]`` is ASCII only;
case folding is done with ``translate`` over the 26 ASCII letters, never with
``upper``/``lower`` (Unicode case mapping turns ``ſtore`` into ``STORE``).

The streaming query that applies them (Kafka source, trigger, foreachBatch
sink, catching up) is in pipeline/streaming_query.py.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import BinaryType, StringType

from pipeline_props import contract as C
from pipeline_props.errors import PipelineStageError, UsageError
from pipeline_props.pipeline.messages import COMPACT_PREFIX, NAMESPACE_HEADER

STAGE = "transform"

#: JSON message version this stage understands (docs/architecture.md "Kafka message");
#: it also reads the compact form (pipeline/messages.py, version 2).
MESSAGE_VERSION = 1

#: Explicit schema for from_json. A top-level value of the wrong JSON type
#: (e.g. "file_index": "3") makes Spark null the whole struct, so the message
#: loses its position and becomes an unknown-position MALFORMED_ROW.
MESSAGE_SCHEMA = (
    "v int, run string, file string, file_index int, record bigint, raw string, "
    "malformed string, fields struct<" + ", ".join(f"{c}: string" for c in C.COLUMNS) + ">"
)

#: file_index and source_file of a message whose position cannot be read.
UNKNOWN_FILE_INDEX = -1
UNKNOWN_SOURCE_FILE = "<kafka>"
#: record_number of such a message: partition * this + offset (the offset itself
#: on partition 0), so two partitions never collide on (file_index, record_number).
PARTITION_STRIDE = 10**12

#: Columns of validate()'s output, in order (the sink selects them by name).
OUTPUT_COLUMNS: tuple[str, ...] = (
    "file_index", "source_file", "record_number", "raw_record", "event_id", "reason", *C.COLUMNS[1:],
)

#: Where a message came from, carried through parse and validation when the input
#: has Kafka's topic, partition and offset: a shared query routes each row to its
#: namespace by topic, and the sink's ledger records the offsets it committed.
SOURCE_COLUMNS: tuple[str, ...] = ("kafka_topic", "kafka_partition", "kafka_offset", "kafka_namespace")

_LOWER = "abcdefghijklmnopqrstuvwxyz"
_UPPER = _LOWER.upper()

_EVENT_ID_RE = r"^[A-Za-z0-9_.:-]{1,64}\z"
_CONTROL_RE = r"[\x00-\x1F\x7F]"
_QUANTITY_RE = r"^[+-]?[0-9]{1,9}\z"
_PRICE_RE = r"^[+-]?[0-9]{1,9}(\.[0-9]{1,2})?\z"
_DISCOUNT_RE = r"^[+-]?[0-9]{1,3}(\.[0-9]{1,3})?\z"
_EVENT_TIME_RE = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})\z"
)

_TEXT_ID_COLUMNS = ("order_id", "customer_id", "product_id", "category")


def ensure_utc(spark: SparkSession) -> None:
    """Set the session time zone to UTC and check that it took."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    tz = spark.conf.get("spark.sql.session.timeZone")
    if tz != "UTC":
        raise PipelineStageError(STAGE, f"session time zone is {tz!r}, expected 'UTC'")


# --------------------------------------------------------------------- parsing
#
# Every expression below is Spark SQL text applied with one selectExpr per
# stage: building the same plan from Column objects took ~4,500 Py4J round
# trips (1.5-3 s per query on a loaded machine), most of a small run's cost.


def _lit(text: str) -> str:
    """``text`` as a Spark SQL string literal (backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_messages(df: DataFrame, value_col: str = "value") -> DataFrame:
    """Parse Kafka message values into position, raw record, field strings.

    Output columns: file_index, source_file, record_number, raw_record,
    reason (MALFORMED_ROW or NULL) and the twelve field strings named as in
    ``contract.COLUMNS`` (NULL for a malformed message). A value that is
    neither form of the message never fails: without a readable file, file_index
    and record it becomes a MALFORMED_ROW at file_index -1, source_file
    ``<kafka>``, record_number from the Kafka partition and offset when the
    input has them (else a hash of the value), raw_record the value itself.
    A message with a position but a wrong body (malformed set, fields missing
    or incomplete, unknown version) is a MALFORMED_ROW at that position.
    """
    if value_col not in df.columns:
        raise UsageError(f"parse_messages: no column {value_col!r} in {df.columns}")
    dtype = df.schema[value_col].dataType
    value = f"`{value_col}`"
    if isinstance(dtype, BinaryType):
        text = f"CAST({value} AS STRING)"
    elif isinstance(dtype, StringType):
        text = value
    else:
        raise UsageError(f"parse_messages: column {value_col!r} must be string or binary, not {dtype}")

    carried = []
    source: list[str] = []
    if {"topic", "partition", "offset"} <= set(df.columns):
        source = ["`topic` AS kafka_topic", "CAST(`partition` AS INT) AS kafka_partition",
                  "CAST(`offset` AS BIGINT) AS kafka_offset"]
        if "headers" in df.columns:  # the namespace header, NULL when a message has none
            source.append("CAST(try_element_at(filter(`headers`, h -> h.key = "
                          f"{_lit(NAMESPACE_HEADER)}), 1).value AS STRING) AS kafka_namespace")
    if "offset" in df.columns:
        part = "coalesce(CAST(`partition` AS BIGINT), 0)" if "partition" in df.columns else "0"
        carried = [f"{part} AS __part", "CAST(`offset` AS BIGINT) AS __offset"]
        fallback_record = f"__part * {PARTITION_STRIDE} + __offset"
    else:
        fallback_record = "xxhash64(__decoded)"

    # A compact value ("#2,<file_index>,<record>,<file>,<raw>", pipeline/messages.py)
    # is split on commas: about half the JVM time of from_json on 2 cores. Only a
    # valid UTF-8 value is read as compact, so raw_record never carries invalid
    # bytes; anything else goes to from_json, once per message: its struct is a
    # column of its own projection (from_json is not cheap, so the optimizer does
    # not inline it into each field reference). Jackson reads the bytes through a
    # UTF-8 decoder that replaces invalid sequences, so the parsed strings are
    # valid UTF-8; the value itself is repaired (make_valid_utf8) only where it
    # becomes raw_record. get() and not [i]: an index past the end is NULL, never
    # an error under ANSI mode.
    compact = f"(startswith({text}, {_lit(COMPACT_PREFIX.decode())}) AND is_valid_utf8({text}))"
    parsed = df.selectExpr(
        f"{text} AS __text", *carried, *source, f"{compact} AS __compact",
        f"CASE WHEN {compact} THEN split({text}, ',', 5) END AS __c",
        f"CASE WHEN NOT {compact} THEN from_json({text}, {_lit(MESSAGE_SCHEMA)}) END AS __m",
    ).selectExpr(
        "*", "try_cast(get(__c, 1) AS INT) AS __c_index", "try_cast(get(__c, 2) AS BIGINT) AS __c_record",
        "split(get(__c, 4), ',', -1) AS __c_fields",
    )
    # Integers as the producer writes them (CAST back to text gives the same digits).
    positioned_compact = ("size(__c) = 5 AND __c_index >= 0 AND CAST(__c_index AS STRING) = get(__c, 1)"
                          " AND CAST(__c_record AS STRING) = get(__c, 2)")
    positioned = ("__m.file IS NOT NULL AND __m.file_index IS NOT NULL AND __m.file_index >= 0"
                  " AND __m.record IS NOT NULL")
    well_formed = " AND ".join([
        f"({positioned})", f"__m.v = {MESSAGE_VERSION}", "__m.malformed IS NULL", "__m.raw IS NOT NULL",
        "__m.fields IS NOT NULL", *[f"__m.fields.{c} IS NOT NULL" for c in C.COLUMNS],
    ])
    decoded = "coalesce(make_valid_utf8(__text), '')"
    staged = parsed.selectExpr(
        "*",
        f"coalesce(CASE WHEN __compact THEN {positioned_compact} ELSE {positioned} END, false) AS __positioned",
        f"coalesce(CASE WHEN __compact THEN {positioned_compact} AND size(__c_fields) = {len(C.COLUMNS)}"
        f" ELSE {well_formed} END, false) AS __well_formed",
    )

    def field(i: int, column: str) -> str:
        return f"CASE WHEN __compact THEN get(__c_fields, {i}) ELSE __m.fields.{column} END"

    return staged.selectExpr(
        f"CASE WHEN NOT __positioned THEN {UNKNOWN_FILE_INDEX} WHEN __compact THEN __c_index"
        " ELSE __m.file_index END AS file_index",
        f"CASE WHEN NOT __positioned THEN {_lit(UNKNOWN_SOURCE_FILE)} WHEN __compact THEN get(__c, 3)"
        " ELSE __m.file END AS source_file",
        "CASE WHEN NOT __positioned THEN " + fallback_record.replace("__decoded", decoded)
        + " WHEN __compact THEN __c_record ELSE __m.record END AS record_number",
        "CASE WHEN __positioned AND __compact THEN get(__c, 4) WHEN __positioned AND __m.raw IS NOT NULL"
        f" THEN __m.raw ELSE {decoded} END AS raw_record",
        f"CASE WHEN __well_formed THEN CAST(NULL AS STRING) ELSE {_lit(C.MALFORMED_ROW)} END AS reason",
        *[f"CASE WHEN __well_formed THEN {field(i, c)} END AS {c}" for i, c in enumerate(C.COLUMNS)],
        *[name for name in SOURCE_COLUMNS if name in parsed.columns],
    )


# ------------------------------------------------------------------ validation


def _ascii_upper(x: str) -> str:
    return f"translate({x}, {_lit(_LOWER)}, {_lit(_UPPER)})"


def _ascii_lower(x: str) -> str:
    return f"translate({x}, {_lit(_UPPER)}, {_lit(_LOWER)})"


def _reason(*checks: tuple[str, str | None]) -> str:
    """CASE WHEN check1 THEN reason1 WHEN ... END (NULL when no check fails), as SQL text.

    A check with reason None stops the chain with NULL (the value is valid).
    """
    assert checks
    whens = " ".join(
        f"WHEN {cond} THEN " + ("CAST(NULL AS STRING)" if reason is None else _lit(reason))
        for cond, reason in checks
    )
    return f"(CASE {whens} END)"


# A code already written as the contract lists it (the common case) skips the
# fold: translate() looks each character up in a map, ~5% of the stage's time.
def _code_reason(x: str, codes: tuple[str, ...], fold: Callable[[str], str]) -> str:
    listed = ", ".join(_lit(code) for code in codes)
    return _reason((f"{x} = ''", C.MISSING_FIELD), (f"{x} IN ({listed})", None),
                   (f"NOT ({fold(x)} IN ({listed}))", C.UNKNOWN_CODE))


def _code(x: str, codes: tuple[str, ...], fold: Callable[[str], str]) -> str:
    listed = ", ".join(_lit(code) for code in codes)
    return f"CASE WHEN {x} IN ({listed}) THEN {x} ELSE {fold(x)} END"


def _text_id_reason(x: str) -> str:
    return _reason(
        (f"{x} = ''", C.MISSING_FIELD),
        (f"(char_length({x}) > {C.ID_MAX_CODE_POINTS} OR {x} RLIKE {_lit(_CONTROL_RE)})", C.INVALID_FORMAT),
    )


# An event_time that matched _EVENT_TIME_RE carries its own offset, so try_cast
# to TIMESTAMP reads it the same under any session or JVM time zone; java.time
# refuses what the contract calls invalid (month 13, 30 February, hour 24,
# second 60, offset minutes 60 or past 18 hours), and a written year and an
# offset past the contract's bound are checked on the digits. Held equal to the
# oracle on a grid of every edge by tests/spark/test_compact_messages.py.
_ET_INSTANT = "try_cast(event_time AS TIMESTAMP)"
_ET_OFFSET_MINUTES = (
    "CASE WHEN substring(event_time, -1, 1) = 'Z' THEN 0 ELSE"
    " try_cast(substring(event_time, -5, 2) AS INT) * 60 + try_cast(substring(event_time, -2, 2) AS INT) END"
)


def validate(df: DataFrame) -> DataFrame:
    """Apply contract section 2 to parse_messages() output.

    Returns the columns of ``OUTPUT_COLUMNS``: position, raw_record, event_id
    (NULL for MALFORMED_ROW or when empty), reason (NULL when valid: the
    reason of the first failing column in contract order; within a column
    missing, then format, then range or code list) and the normalised typed
    values, which are NULL on rejected rows: region and currency upper case,
    channel lower case, quantity int, unit_price decimal(11,2), discount
    decimal(4,3) (0.000 when missing), event_time the UTC instant.
    """
    # Numbers: regex first, then try_cast (never throws, never rounds: the
    # regex bounds digits to what the target type holds exactly).
    staged = df.selectExpr(
        "*",
        f"quantity RLIKE {_lit(_QUANTITY_RE)} AS __q_fmt",
        f"unit_price RLIKE {_lit(_PRICE_RE)} AS __p_fmt",
        f"discount RLIKE {_lit(_DISCOUNT_RE)} AS __d_fmt",
        f"event_time RLIKE {_lit(_EVENT_TIME_RE)} AS __et_fmt",
    )
    staged = staged.selectExpr(
        "*",
        "CASE WHEN __q_fmt THEN try_cast(quantity AS BIGINT) END AS __q",
        "CASE WHEN __p_fmt THEN try_cast(unit_price AS DECIMAL(11,2)) END AS __p",
        "CASE WHEN __d_fmt THEN try_cast(discount AS DECIMAL(6,3)) END AS __d",
        f"CASE WHEN __et_fmt THEN {_ET_INSTANT} END AS __et",
        "CASE WHEN __et_fmt THEN try_cast(substring(event_time, 1, 4) AS INT) END AS __et_y",
    )
    staged = staged.selectExpr(
        "*", f"coalesce(__et IS NOT NULL AND {_ET_OFFSET_MINUTES} <= {C.MAX_OFFSET_MINUTES}, false) AS __et_ok",
    )
    reasons = [
        "reason",
        _reason(("event_id = ''", C.MISSING_FIELD), (f"NOT (event_id RLIKE {_lit(_EVENT_ID_RE)})", C.INVALID_FORMAT)),
        *[_text_id_reason(c) for c in _TEXT_ID_COLUMNS],
        _code_reason("region", C.REGIONS, _ascii_upper),
        _code_reason("channel", C.CHANNELS, _ascii_lower),
        _reason(
            ("quantity = ''", C.MISSING_FIELD),
            ("NOT __q_fmt", C.INVALID_FORMAT),
            (f"__q IS NULL OR __q = 0 OR __q < {C.QUANTITY_MIN} OR __q > {C.QUANTITY_MAX}", C.OUT_OF_RANGE),
        ),
        _reason(
            ("unit_price = ''", C.MISSING_FIELD),
            ("NOT __p_fmt", C.INVALID_FORMAT),
            (f"__p IS NULL OR __p < {_dec(C.UNIT_PRICE_MIN)} OR __p > {_dec(C.UNIT_PRICE_MAX)}", C.OUT_OF_RANGE),
        ),
        _reason(
            ("discount = ''", None),  # missing discount means 0: valid
            ("NOT __d_fmt", C.INVALID_FORMAT),
            (f"__d IS NULL OR __d < {_dec(C.DISCOUNT_MIN)} OR __d > {_dec(C.DISCOUNT_MAX)}", C.OUT_OF_RANGE),
        ),
        _code_reason("currency", C.CURRENCIES, _ascii_upper),
        _reason(
            ("event_time = ''", C.MISSING_FIELD),
            ("NOT __et_fmt OR NOT __et_ok", C.INVALID_FORMAT),
            (f"NOT (__et_y BETWEEN {C.YEAR_MIN} AND {C.YEAR_MAX})", C.OUT_OF_RANGE),
        ),
    ]
    staged = staged.selectExpr("*", f"coalesce({', '.join(reasons)}) AS __reason")

    def keep(expr: str, name: str) -> str:
        return f"CASE WHEN __reason IS NULL THEN {expr} END AS {name}"

    return staged.selectExpr(
        "CAST(file_index AS INT) AS file_index",
        "source_file",
        "CAST(record_number AS BIGINT) AS record_number",
        "raw_record",
        f"CASE WHEN __reason IS NULL OR __reason != {_lit(C.MALFORMED_ROW)} THEN nullif(event_id, '') END"
        " AS event_id",
        "__reason AS reason",
        *[keep(c, c) for c in _TEXT_ID_COLUMNS],
        keep(_code("region", C.REGIONS, _ascii_upper), "region"),
        keep(_code("channel", C.CHANNELS, _ascii_lower), "channel"),
        keep("try_cast(__q AS INT)", "quantity"),
        keep("__p", "unit_price"),
        keep("try_cast(CASE WHEN discount = '' THEN CAST(0 AS DECIMAL(6,3)) ELSE __d END AS DECIMAL(4,3))",
             "discount"),
        keep(_code("currency", C.CURRENCIES, _ascii_upper), "currency"),
        keep("__et", "event_time"),
        *[name for name in SOURCE_COLUMNS if name in df.columns],
    )


def _dec(value: object) -> str:
    """A contract bound as an exact decimal literal."""
    d = Decimal(str(value))
    places = max(0, -d.as_tuple().exponent)  # type: ignore[operator]
    digits = max(len(d.as_tuple().digits), places + 1)
    return f"CAST({_lit(str(d))} AS DECIMAL({digits}, {places}))"


def transform(df: DataFrame, value_col: str = "value") -> DataFrame:
    """parse_messages() then validate(): Kafka values in, staging rows out."""
    return validate(parse_messages(df, value_col))
