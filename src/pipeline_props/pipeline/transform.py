"""Spark stage: Kafka messages -> validated, normalised rows (contract section 2).

Every rule is a Spark SQL column expression (no Python UDF), so validation runs
in the JVM. The expressions never throw, whatever the input and whether ANSI
mode is on or off: numbers are cast with ``try_cast`` and only after their
regular expression matched, and event_time is checked and converted with
integer arithmetic on the matched digits, so a bad row can never fail a batch.

Java regex notes (they matter): ``$`` also matches before a final line
terminator, so every full match here ends in ``\\z``; ``[0-9]`` is ASCII only;
case folding is done with ``translate`` over the 26 ASCII letters, never with
``upper``/``lower`` (Unicode case mapping turns ``ſtore`` into ``STORE``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery
from pyspark.sql.types import BinaryType, StringType

from pipeline_props import contract as C
from pipeline_props.errors import PipelineStageError, UsageError

log = logging.getLogger(__name__)

STAGE = "transform"

#: Message version this stage understands (docs/architecture.md "Kafka message").
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


@dataclass(frozen=True)
class TransformStats:
    """What one run of the transform did: input rows, micro-batches, wall time."""

    rows: int
    batches: int
    seconds: float


def ensure_utc(spark: SparkSession) -> None:
    """Set the session time zone to UTC and check that it took."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    tz = spark.conf.get("spark.sql.session.timeZone")
    if tz != "UTC":
        raise PipelineStageError(STAGE, f"session time zone is {tz!r}, expected 'UTC'")


# --------------------------------------------------------------------- parsing


def parse_messages(df: DataFrame, value_col: str = "value") -> DataFrame:
    """Parse Kafka message values into position, raw record, field strings.

    Output columns: file_index, source_file, record_number, raw_record,
    reason (MALFORMED_ROW or NULL) and the twelve field strings named as in
    ``contract.COLUMNS`` (NULL for a malformed message). A value that is not
    JSON of the message shape never fails: without a readable file, file_index
    and record it becomes a MALFORMED_ROW at file_index -1, source_file
    ``<kafka>``, record_number from the Kafka partition and offset when the
    input has them (else a hash of the value), raw_record the value itself.
    A message with a position but a wrong body (malformed set, fields missing
    or incomplete, unknown version) is a MALFORMED_ROW at that position.
    """
    if value_col not in df.columns:
        raise UsageError(f"parse_messages: no column {value_col!r} in {df.columns}")
    value = F.col(value_col)
    dtype = df.schema[value_col].dataType
    if isinstance(dtype, BinaryType):
        text = F.make_valid_utf8(value.cast("string"))
    elif isinstance(dtype, StringType):
        text = value
    else:
        raise UsageError(f"parse_messages: column {value_col!r} must be string or binary, not {dtype}")

    if "offset" in df.columns:
        part = F.coalesce(F.col("partition").cast("bigint"), F.lit(0)) if "partition" in df.columns else F.lit(0)
        fallback_record = part * F.lit(PARTITION_STRIDE) + F.col("offset").cast("bigint")
    else:
        fallback_record = F.xxhash64(F.coalesce(text, F.lit("")))

    # inline_outer(array(from_json)) parses each value once: with plain struct
    # access the optimizer splits from_json into one pruned parse per field.
    # A NULL struct (empty or missing value) still yields one row, of NULLs.
    parsed = df.select(
        text.alias("__text"),
        fallback_record.alias("__fallback_record"),
        F.inline_outer(F.array(F.from_json(text, MESSAGE_SCHEMA))),
    )
    m = {name: F.col(name) for name in ("v", "file", "file_index", "record", "raw", "malformed", "fields")}
    positioned = (
        m["file"].isNotNull()
        & m["file_index"].isNotNull()
        & (m["file_index"] >= 0)
        & m["record"].isNotNull()
    )
    fields_ok = m["fields"].isNotNull()
    for c in C.COLUMNS:
        fields_ok = fields_ok & m["fields"][c].isNotNull()
    well_formed = (
        positioned
        & (m["v"] == F.lit(MESSAGE_VERSION))
        & m["malformed"].isNull()
        & m["raw"].isNotNull()
        & fields_ok
    )
    text = F.col("__text")
    fallback_record = F.col("__fallback_record")
    decoded = F.coalesce(text, F.lit(""))
    cols: list[Column] = [
        F.when(positioned, m["file_index"]).otherwise(F.lit(UNKNOWN_FILE_INDEX)).alias("file_index"),
        F.when(positioned, m["file"]).otherwise(F.lit(UNKNOWN_SOURCE_FILE)).alias("source_file"),
        F.when(positioned, m["record"]).otherwise(fallback_record).alias("record_number"),
        F.when(positioned, F.coalesce(m["raw"], decoded)).otherwise(decoded).alias("raw_record"),
        F.when(well_formed, F.lit(None).cast("string")).otherwise(F.lit(C.MALFORMED_ROW)).alias("reason"),
    ]
    cols += [F.when(well_formed, m["fields"][c]).alias(c) for c in C.COLUMNS]
    return parsed.select(*cols)


# ------------------------------------------------------------------ validation


def _ascii_upper(c: Column) -> Column:
    return F.translate(c, _LOWER, _UPPER)


def _ascii_lower(c: Column) -> Column:
    return F.translate(c, _UPPER, _LOWER)


def _reason(*checks: tuple[Column, str | None]) -> Column:
    """CASE WHEN check1 THEN reason1 WHEN ... END (NULL when no check fails).

    A check with reason None stops the chain with NULL (the value is valid).
    """
    expr: Column | None = None
    for cond, reason in checks:
        value = F.lit(reason).cast("string")
        expr = F.when(cond, value) if expr is None else expr.when(cond, value)
    assert expr is not None
    return expr


def _code_reason(x: Column, codes: tuple[str, ...], fold: Callable[[Column], Column]) -> Column:
    return _reason((x == "", C.MISSING_FIELD), (~fold(x).isin(*codes), C.UNKNOWN_CODE))


def _text_id_reason(x: Column) -> Column:
    return _reason(
        (x == "", C.MISSING_FIELD),
        ((F.length(x) > C.ID_MAX_CODE_POINTS) | x.rlike(_CONTROL_RE), C.INVALID_FORMAT),
    )


def _event_time_parts(x: Column) -> dict[str, Column]:
    """Integer parts of an event_time string, read by position.

    Only meaningful once the string matched _EVENT_TIME_RE (then it is pure
    ASCII and every part is at a fixed place, except that the fraction runs
    from position 21 to the offset); callers use them only then. try_cast
    keeps junk from ever throwing.
    """

    def num(start: int, length: int) -> Column:
        return F.substring(x, start, length).try_cast("bigint")

    zero = F.lit(0).cast("bigint")
    zulu = F.substring(x, -1, 1) == "Z"
    off_len = F.when(zulu, F.lit(1)).otherwise(F.lit(6))
    has_frac = F.substring(x, 20, 1) == "."
    frac = F.substr(x, F.lit(21), F.length(x) - F.lit(20) - off_len)
    return {
        "y": num(1, 4),
        "mo": num(6, 2),
        "d": num(9, 2),
        "h": num(12, 2),
        "mi": num(15, 2),
        "s": num(18, 2),
        "us": F.when(has_frac, F.rpad(frac, 6, "0").try_cast("bigint")).otherwise(zero),
        "off_sign": F.when(zulu, zero).when(F.substring(x, -6, 1) == "-", F.lit(-1)).otherwise(F.lit(1)),
        "oh": F.when(zulu, zero).otherwise(num(-5, 2)),
        "om": F.when(zulu, zero).otherwise(num(-2, 2)),
    }


# Validity of the matched event_time and its instant, in Spark SQL over the
# integer parts. Days from civil: H. Hinnant's algorithm (proleptic Gregorian).
_ET_LEAP = "((__et_y % 4 = 0 AND __et_y % 100 != 0) OR __et_y % 400 = 0)"
_ET_DIM = (
    f"CASE WHEN __et_mo = 2 THEN CASE WHEN {_ET_LEAP} THEN 29 ELSE 28 END "
    "WHEN __et_mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END"
)
_ET_VALID = (
    "(__et_mo BETWEEN 1 AND 12) AND (__et_d BETWEEN 1 AND " + _ET_DIM + ") "
    "AND __et_h < 24 AND __et_mi < 60 AND __et_s < 60 AND __et_om < 60 "
    f"AND __et_oh * 60 + __et_om <= {C.MAX_OFFSET_MINUTES}"
)
_ET_DAYS = """(
  (CASE WHEN __et_yy >= 0 THEN __et_yy ELSE __et_yy - 399 END) div 400 * 146097
  + (__et_yy - (CASE WHEN __et_yy >= 0 THEN __et_yy ELSE __et_yy - 399 END) div 400 * 400) * 365
  + (__et_yy - (CASE WHEN __et_yy >= 0 THEN __et_yy ELSE __et_yy - 399 END) div 400 * 400) div 4
  - (__et_yy - (CASE WHEN __et_yy >= 0 THEN __et_yy ELSE __et_yy - 399 END) div 400 * 400) div 100
  + (153 * ((__et_mo + 9) % 12) + 2) div 5 + __et_d - 1
  - 719468)"""
_ET_MICROS = (
    f"(({_ET_DAYS} * 86400 + __et_h * 3600 + __et_mi * 60 + __et_s"
    " - __et_off_sign * (__et_oh * 3600 + __et_om * 60)) * 1000000 + __et_us)"
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
    f = {c: F.col(c) for c in C.COLUMNS}

    # Numbers: regex first, then try_cast (never throws, never rounds: the
    # regex bounds digits to what the target type holds exactly).
    q_fmt = f["quantity"].rlike(_QUANTITY_RE)
    p_fmt = f["unit_price"].rlike(_PRICE_RE)
    d_fmt = f["discount"].rlike(_DISCOUNT_RE)
    et_fmt = f["event_time"].rlike(_EVENT_TIME_RE)

    staged = df.select(
        "*",
        q_fmt.alias("__q_fmt"),
        F.when(q_fmt, f["quantity"].try_cast("bigint")).alias("__q"),
        p_fmt.alias("__p_fmt"),
        F.when(p_fmt, f["unit_price"].try_cast("decimal(11,2)")).alias("__p"),
        d_fmt.alias("__d_fmt"),
        F.when(d_fmt, f["discount"].try_cast("decimal(6,3)")).alias("__d"),
        et_fmt.alias("__et_fmt"),
    )
    parts = _event_time_parts(f["event_time"])
    staged = staged.select("*", *[F.when(F.col("__et_fmt"), v).alias(f"__et_{k}") for k, v in parts.items()])
    staged = staged.select(
        "*",
        (F.col("__et_y") - F.when(F.col("__et_mo") <= 2, F.lit(1)).otherwise(F.lit(0))).alias("__et_yy"),
        F.coalesce(F.expr(_ET_VALID), F.lit(False)).alias("__et_ok"),
    )

    q, p, d = F.col("__q"), F.col("__p"), F.col("__d")
    reasons = [
        F.col("reason"),
        _reason(
            (f["event_id"] == "", C.MISSING_FIELD),
            (~f["event_id"].rlike(_EVENT_ID_RE), C.INVALID_FORMAT),
        ),
        *[_text_id_reason(f[c]) for c in _TEXT_ID_COLUMNS],
        _code_reason(f["region"], C.REGIONS, _ascii_upper),
        _code_reason(f["channel"], C.CHANNELS, _ascii_lower),
        _reason(
            (f["quantity"] == "", C.MISSING_FIELD),
            (~F.col("__q_fmt"), C.INVALID_FORMAT),
            (
                q.isNull() | (q == 0) | (q < C.QUANTITY_MIN) | (q > C.QUANTITY_MAX),
                C.OUT_OF_RANGE,
            ),
        ),
        _reason(
            (f["unit_price"] == "", C.MISSING_FIELD),
            (~F.col("__p_fmt"), C.INVALID_FORMAT),
            (
                p.isNull()
                | (p < F.lit(C.UNIT_PRICE_MIN))
                | (p > F.lit(Decimal(C.UNIT_PRICE_MAX))),
                C.OUT_OF_RANGE,
            ),
        ),
        _reason(
            (f["discount"] == "", None),  # missing discount means 0: valid
            (~F.col("__d_fmt"), C.INVALID_FORMAT),
            (d.isNull() | (d < F.lit(C.DISCOUNT_MIN)) | (d > F.lit(C.DISCOUNT_MAX)), C.OUT_OF_RANGE),
        ),
        _code_reason(f["currency"], C.CURRENCIES, _ascii_upper),
        _reason(
            (f["event_time"] == "", C.MISSING_FIELD),
            (~F.col("__et_fmt") | ~F.col("__et_ok"), C.INVALID_FORMAT),
            (~F.col("__et_y").between(C.YEAR_MIN, C.YEAR_MAX), C.OUT_OF_RANGE),
        ),
    ]
    reason = F.coalesce(*reasons)
    valid = reason.isNull()

    def keep(c: Column) -> Column:
        return F.when(F.col("__valid"), c)

    staged = staged.select("*", reason.alias("__reason"), valid.alias("__valid"))
    return staged.select(
        F.col("file_index").cast("int").alias("file_index"),
        F.col("source_file"),
        F.col("record_number").cast("bigint").alias("record_number"),
        F.col("raw_record"),
        F.when(
            (F.col("__reason") != F.lit(C.MALFORMED_ROW)) | F.col("__reason").isNull(),
            F.nullif(f["event_id"], F.lit("")),
        ).alias("event_id"),
        F.col("__reason").alias("reason"),
        *[keep(f[c]).alias(c) for c in _TEXT_ID_COLUMNS],
        keep(_ascii_upper(f["region"])).alias("region"),
        keep(_ascii_lower(f["channel"])).alias("channel"),
        keep(q.try_cast("int")).alias("quantity"),
        keep(p).alias("unit_price"),
        keep(F.when(f["discount"] == "", F.lit(Decimal("0.000"))).otherwise(d).try_cast("decimal(4,3)")).alias(
            "discount"
        ),
        keep(_ascii_upper(f["currency"])).alias("currency"),
        keep(F.timestamp_micros(F.expr(_ET_MICROS))).alias("event_time"),
    )


def transform(df: DataFrame, value_col: str = "value") -> DataFrame:
    """parse_messages() then validate(): Kafka values in, staging rows out."""
    return validate(parse_messages(df, value_col))


# ------------------------------------------------------------------ streaming


def start_stream(
    spark: SparkSession,
    *,
    bootstrap_servers: str,
    topic: str,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    trigger: Literal["available_now", "processing_time"] = "available_now",
    processing_time: str = "1 second",
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    query_name: str | None = None,
) -> StreamingQuery:
    """Start the streaming query: Kafka topic -> transform -> ``sink`` per micro-batch.

    ``sink`` is called through foreachBatch (normally a
    :class:`pipeline_props.pipeline.staging.StagingSink`); progress is kept in
    ``checkpoint_dir``, so a restarted query replays only uncommitted batches.
    """
    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap_servers)
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets)
    )
    if max_offsets_per_trigger is not None:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets_per_trigger))
    return start_query(
        reader.load(),
        checkpoint_dir=checkpoint_dir,
        sink=sink,
        trigger=trigger,
        processing_time=processing_time,
        query_name=query_name,
    )


def start_query(
    messages: DataFrame,
    *,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    trigger: Literal["available_now", "processing_time"] = "available_now",
    processing_time: str = "1 second",
    query_name: str | None = None,
) -> StreamingQuery:
    """Like :func:`start_stream` over any streaming DataFrame with a ``value`` column.

    Used by start_stream (Kafka) and by tests with a file source.
    """
    ensure_utc(messages.sparkSession)
    if trigger not in ("available_now", "processing_time"):
        raise UsageError(f"trigger must be 'available_now' or 'processing_time', not {trigger!r}")
    writer = transform(messages).writeStream.foreachBatch(sink).option("checkpointLocation", checkpoint_dir)
    if trigger == "available_now":
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=processing_time)
    if query_name:
        writer = writer.queryName(query_name)
    try:
        return writer.start()
    except Exception as exc:  # noqa: BLE001 - re-raised as our error with the cause
        raise PipelineStageError(STAGE, f"could not start the streaming query: {exc}") from exc


def _progress_stats(query: StreamingQuery) -> tuple[int, int]:
    rows_by_batch: dict[int, int] = {}
    for p in query.recentProgress:
        rows_by_batch[int(p.batchId)] = int(p.numInputRows)
    return sum(rows_by_batch.values()), len(rows_by_batch)


def await_query(query: StreamingQuery, started: float | None = None) -> TransformStats:
    """Wait for a query to end; PipelineStageError if it failed."""
    t0 = time.monotonic() if started is None else started
    try:
        query.awaitTermination()
    except Exception as exc:  # noqa: BLE001 - StreamingQueryException and py4j errors
        raise PipelineStageError(STAGE, f"streaming query failed: {_short(exc)}") from exc
    failure = query.exception()
    if failure is not None:
        raise PipelineStageError(STAGE, f"streaming query failed: {_short(failure)}")
    rows, batches = _progress_stats(query)
    stats = TransformStats(rows=rows, batches=batches, seconds=time.monotonic() - t0)
    log.info("transform done: %d rows in %d batches, %.1f s", stats.rows, stats.batches, stats.seconds)
    return stats


def run_available_now(
    spark: SparkSession,
    *,
    bootstrap_servers: str,
    topic: str,
    checkpoint_dir: str,
    sink: Callable[[DataFrame, int], None],
    starting_offsets: str = "earliest",
    max_offsets_per_trigger: int | None = None,
    query_name: str | None = None,
) -> TransformStats:
    """Process everything in the topic now (availableNow trigger) and return stats.

    rows and batches come from the query's progress reports (rows read from
    Kafka, micro-batches run by this query, replays included).
    """
    _keep_progress(spark)
    t0 = time.monotonic()
    query = start_stream(
        spark,
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        checkpoint_dir=checkpoint_dir,
        sink=sink,
        trigger="available_now",
        starting_offsets=starting_offsets,
        max_offsets_per_trigger=max_offsets_per_trigger,
        query_name=query_name,
    )
    return await_query(query, t0)


def _keep_progress(spark: SparkSession, at_least: int = 100_000) -> None:
    # recentProgress keeps only the last N reports (default 100); stats need all.
    key = "spark.sql.streaming.numRecentProgressUpdates"
    if int(spark.conf.get(key, "100") or 100) < at_least:
        spark.conf.set(key, str(at_least))


def _short(exc: BaseException, limit: int = 2000) -> str:
    text = str(exc).strip()
    return text if len(text) <= limit else text[:limit] + " ..."
