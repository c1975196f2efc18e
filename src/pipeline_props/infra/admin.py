"""Topics, schemas and probes on running services (any backend): the admin side of the manager."""

from __future__ import annotations

import concurrent.futures

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process

__all__ = ["create_schema", "create_topics", "delete_topics", "drop_schema", "probe_kafka", "probe_postgres"]


def create_schema(dsn: str, schema: str | None = None) -> None:
    """Check the warehouse answers and create ``schema`` when given (idempotent)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        if schema:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))


def drop_schema(dsn: str, schema: str) -> None:
    """Drop one dataset's schema and everything in it."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def create_topics(bootstrap: str, topics: str | list[str], *, partitions: int = 1, timeout: float = 30.0,
                  config: dict[str, str] | None = None) -> None:
    """Create topics (idempotent, the brokers' default replication) and wait until they have leaders.

    ``config``: topic-level settings, which override the brokers' defaults for these topics alone.
    """
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    names = [topics] if isinstance(topics, str) else list(topics)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    pending = list(names)
    # A broker that has just restarted, or a starved machine, can time a
    # creation out; such errors are retriable and creation is idempotent.
    for attempt in range(1, 4):
        futures = admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=-1,
                                                config=dict(config or {}))
                                       for t in pending], operation_timeout=timeout)
        retry: list[str] = []
        for name, fut in futures.items():
            try:
                fut.result(timeout)
            except KafkaException as exc:
                err = exc.args[0]
                if err.name() == "TOPIC_ALREADY_EXISTS":
                    continue
                if attempt < 3 and (err.retriable() or "TIMED_OUT" in err.name()):
                    retry.append(name)
                    continue
                raise InfrastructureError("kafka", f"cannot create topic {name}: {exc}") from exc
            except concurrent.futures.TimeoutError:
                if attempt == 3:
                    raise InfrastructureError(
                        "kafka", f"creating topic {name} got no answer in {timeout:.0f} s (3 attempts)"
                    ) from None
                retry.append(name)
        if not retry:
            break
        pending = retry

    def ready() -> bool:
        md = admin.list_topics(timeout=5)
        return all(n in md.topics and md.topics[n].partitions and
                   all(p.leader >= 0 for p in md.topics[n].partitions.values()) for n in names)

    if not _process.wait_until(ready, timeout, 0.2):
        raise InfrastructureError("kafka", f"topics {names} have no leader after {timeout:.0f} s")


def delete_topics(bootstrap: str, topics: str | list[str], *, timeout: float = 30.0) -> None:
    """Delete topics; missing ones are ignored."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    names = [topics] if isinstance(topics, str) else list(topics)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    for fut in admin.delete_topics(names, operation_timeout=timeout).values():
        try:
            fut.result(timeout)
        except KafkaException:
            pass


def probe_kafka(bootstrap: str) -> bool:
    """The brokers at ``bootstrap`` answer a metadata request (within 5 s)."""
    from confluent_kafka.admin import AdminClient

    try:
        return bool(AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
                    .list_topics(timeout=5).brokers)
    except Exception:
        return False


def probe_postgres(dsn: str) -> bool:
    """The warehouse at ``dsn`` answers ``SELECT 1`` (within 5 s)."""
    import psycopg

    try:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return conn.execute("SELECT 1").fetchone() == (1,)
    except psycopg.Error:
        return False
