"""A team's sales pipeline: CSV lines on Kafka -> a plain consumer -> Postgres -> dbt views.

* ingest: one Kafka message per CSV record, the record's own bytes as the
  value, the namespace as the key, file and record number in headers;
* consumer (in ``wait_until_caught_up``): reads the topic up to what was
  produced, validates each row (csv_records.py) and COPYs it into one
  staging table, ``stg_records`` (reason NULL for a valid row);
* dbt (dbt_project/, built once): views for duplicates, amounts and the five
  marts, every mart keyed by namespace.

The whole adapter to pipeline-props is the five methods of
``pipeline_props.testing.protocol.PipelineUnderTest`` at the bottom.
``refund_bug=True`` (or ``CSV_LINES_BUG=refund``) turns on a deliberate bug.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from psycopg import sql

import csv_records
from pipeline_props.compare import normalise_table
from pipeline_props.errors import InfrastructureError, InputError, PipelineStageError

PROJECT = Path(__file__).parent / "dbt_project"
MARTS = {
    "daily_sales": ("sale_date", "region", "category", "gross_revenue_usd", "returns_usd", "net_revenue_usd",
                    "units_sold", "units_returned", "order_count", "line_count"),
    "customer_summary": ("customer_id", "first_purchase_date", "last_purchase_date", "order_count",
                         "net_revenue_usd"),
    "product_performance": ("product_id", "units_sold", "units_returned", "net_revenue_usd", "return_rate"),
    "rejected_rows": ("source_file", "record_number", "event_id", "reason", "raw_record"),
    "ingestion_audit": ("rows_read", "rows_accepted", "rows_duplicate", "rows_rejected",
                        "rejected_malformed_row", "rejected_missing_field", "rejected_invalid_format",
                        "rejected_out_of_range", "rejected_unknown_code", "rejected_conflicting_duplicate"),
}
STAGING = ("namespace", "file_index", "source_file", "record_number", "event_id", "reason", "raw_record",
           "order_id", "customer_id", "product_id", "category", "region", "channel", "quantity", "unit_price",
           "discount", "currency", "event_time")
DDL = """
CREATE TABLE IF NOT EXISTS {s}.stg_records (
  namespace text, file_index int, source_file text, record_number bigint, event_id text, reason text,
  raw_record text, order_id text, customer_id text, product_id text, category text, region text,
  channel text, quantity int, unit_price numeric(11,2), discount numeric(4,3), currency text,
  event_time timestamptz);
CREATE TABLE IF NOT EXISTS {s}.datasets (namespace text PRIMARY KEY);
"""


class CsvLinesPipeline:
    """CSV lines through Kafka and a plain consumer into Postgres; marts are dbt views."""

    name = "csv-lines"

    def __init__(self, kafka: str, dsn: str, schema: str, *, refund_bug: bool | None = None) -> None:
        self.kafka, self.dsn, self.schema = kafka, dsn, schema
        self.refund_bug = os.environ.get("CSV_LINES_BUG") == "refund" if refund_bug is None else refund_bug
        self.topic = f"{schema}_{uuid.uuid4().hex[:6]}"
        self.produced: dict[str, int] = {}  # namespace -> offset after its last message
        self.producer = Producer({"bootstrap.servers": kafka, "enable.idempotence": True, "acks": "all"})
        self.consumer = Consumer({"bootstrap.servers": kafka, "group.id": self.topic,
                                  "enable.auto.commit": False, "log_level": 3})
        self.headers: dict[tuple[str, int], list[str]] = {}  # (namespace, file_index) -> columns
        self.offset = 0  # the consumer's next offset

    # -- setup, once per pipeline ------------------------------------------------------
    def setup(self) -> CsvLinesPipeline:
        """Create the topic, the staging tables and the dbt views."""
        admin = AdminClient({"bootstrap.servers": self.kafka})
        for future in admin.create_topics([NewTopic(self.topic, 1, 1)]).values():
            future.result(timeout=30)
        self.consumer.assign([TopicPartition(self.topic, 0, 0)])
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
            conn.execute(sql.SQL(DDL).format(s=sql.Identifier(self.schema)))
        self._dbt("run")
        return self

    def teardown(self) -> None:
        """Drop the schema and the topic."""
        self.consumer.close()
        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(self.schema)))
        AdminClient({"bootstrap.servers": self.kafka}).delete_topics([self.topic])

    def _dbt(self, command: str) -> None:
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        with tempfile.TemporaryDirectory(prefix="csv_lines_dbt_") as tmp:
            Path(tmp, "profiles.yml").write_text(
                "csv_lines:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n      threads: 1\n"
                f"      host: '{info.get('host', 'localhost')}'\n      port: {info.get('port', 5432)}\n"
                f"      user: '{info.get('user', 'postgres')}'\n      dbname: '{info.get('dbname', 'postgres')}'\n"
                "      password: \"{{ env_var('DBT_ENV_SECRET_PG_PASSWORD', '') }}\"\n"
                f"      schema: '{self.schema}'\n")
            env = {**os.environ, "DBT_ENV_SECRET_PG_PASSWORD": str(info.get("password", ""))}
            args = [str(Path(sys.executable).with_name("dbt")), command, "--project-dir", str(PROJECT),
                    "--profiles-dir", tmp, "--target-path", f"{tmp}/target", "--log-path", f"{tmp}/logs"]
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise PipelineStageError("dbt", f"dbt {command} exited {done.returncode}:\n{done.stdout[-2000:]}")

    # -- the consumer -------------------------------------------------------------------
    def _row(self, namespace: str, file_index: int, name: str, number: int, raw: bytes) -> tuple:
        text = raw.decode("utf-8", "replace").replace("\x00", "\ufffd")
        position = (namespace, file_index, name, number)
        fields = next(csv_records.records(raw), (raw, None))[1]
        names = self.headers[(namespace, file_index)]
        row: dict[str, str] | None = None
        if fields is not None and len(fields) == len(names):
            try:
                row = dict(zip(names, (f.decode("utf-8").strip(" \t") for f in fields)))
            except UnicodeDecodeError:  # UTF-8 is judged per record
                row = None
        try:
            if row is None:
                raise csv_records.Rejected("MALFORMED_ROW")
            values = csv_records.validate(row, refund_bug=self.refund_bug)
        except csv_records.Rejected as rejected:
            event_id = (row["event_id"].replace("\x00", "\ufffd") or None) if row else None
            return (*position, event_id, rejected.args[0], text) + (None,) * 11
        return (*position, values.pop("event_id"), None, text, *values.values())

    def _consume(self, until: int, timeout: float) -> None:
        """Stage every message below offset ``until`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        rows = []
        while self.offset < until:
            if time.monotonic() > deadline:
                raise PipelineStageError("consumer", f"topic {self.topic}: at offset {self.offset} of {until} "
                                                     f"after {timeout:.0f} s")
            for msg in self.consumer.consume(min(until - self.offset, 10_000), 1.0):
                if msg.error():
                    raise PipelineStageError("consumer", str(msg.error()))
                h = {k: v.decode() for k, v in msg.headers() or []}
                if "header" in h:  # a file's header: its column names, for its records
                    self.headers[(msg.key().decode(), int(h["file_index"]))] = h["header"].split("\x1f")
                else:
                    rows.append(self._row(msg.key().decode(), int(h["file_index"]), h["file"],
                                          int(h["record"]), msg.value()))
                self.offset = msg.offset() + 1
        with psycopg.connect(self.dsn, connect_timeout=10) as conn, conn.cursor() as cur:
            copy = sql.SQL("COPY {}.stg_records ({}) FROM STDIN").format(
                sql.Identifier(self.schema), sql.SQL(", ").join(map(sql.Identifier, STAGING)))
            with cur.copy(copy) as sink:
                for row in rows:
                    sink.write_row(row)

    # -- the protocol ---------------------------------------------------------------------
    def prepare(self, namespace: str) -> None:
        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            conn.execute(sql.SQL("INSERT INTO {}.datasets VALUES (%s) ON CONFLICT DO NOTHING").format(
                sql.Identifier(self.schema)), [namespace])

    def ingest(self, namespace: str, files: list[tuple[str, bytes]]) -> None:
        names = []
        for name, data in files:  # every header checked before anything is sent
            try:
                names.append(csv_records.header(data))
            except csv_records.RefusedFile as refused:
                raise InputError(name, str(refused)) from None
        key = namespace.encode()
        for index, ((name, data), columns) in enumerate(zip(files, names)):
            meta = [("file_index", str(index).encode()), ("file", name.encode())]
            self.producer.produce(self.topic, key=key, headers=[*meta, ("header", "\x1f".join(columns).encode())])
            body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
            for number, (raw, _) in enumerate(csv_records.records(body)):
                if number:  # record 0 is the header
                    self.producer.produce(self.topic, raw, key=key, headers=[*meta, ("record", b"%d" % number)])
                self.producer.poll(0)
        if self.producer.flush(30) != 0:
            raise InfrastructureError("kafka", f"messages to {self.topic} not delivered in 30 s")
        _, high = self.consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=10)
        self.produced[namespace] = high

    def wait_until_caught_up(self, namespace: str, timeout: float = 600.0) -> None:
        try:
            self._consume(self.produced.get(namespace, 0), timeout)
        except KafkaException as exc:
            raise InfrastructureError("kafka", str(exc)) from None

    def read_tables(self, namespace: str) -> dict[str, list[tuple]]:
        out = {}
        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            for table, columns in MARTS.items():
                query = sql.SQL("SELECT {} FROM {}.{} WHERE namespace = %s").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(self.schema),
                    sql.Identifier(table))
                out[table] = normalise_table(table, conn.execute(query, [namespace]).fetchall())
        return out

    def cleanup(self, namespace: str) -> None:
        with psycopg.connect(self.dsn, connect_timeout=10) as conn:
            for table in ("stg_records", "datasets"):
                conn.execute(sql.SQL("DELETE FROM {}.{} WHERE namespace = %s").format(
                    sql.Identifier(self.schema), sql.Identifier(table)), [namespace])
        self.produced.pop(namespace, None)
