"""The state file ``<home>/services.json``: the local services on record, for every process of a home.

It holds what the local backend started (the temp root, each service's pid,
ports and data dir) so another process reuses those services (a second ``up``,
the other pytest-xdist worker) or stops exactly them (``services down``), and
the services handed over to their last user (``handed_over``, see
:mod:`~pipeline_props.infra.local`). Knows the file's format, not when to
start or stop anything.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pipeline_props.infra import fakesnow as _fakesnow
from pipeline_props.infra.kafka import KafkaBroker
from pipeline_props.infra.postgres import PostgresServer

if TYPE_CHECKING:
    from pipeline_props.config import InfrastructureSettings


def state_path(home: Path) -> Path:
    """Where the state file of ``home`` lives."""
    return home / "services.json"


def load_state(home: Path) -> dict[str, Any]:
    """The state on record; ``{}`` when there is none or it cannot be read."""
    try:
        return json.loads(state_path(home).read_text())
    except (OSError, ValueError):
        return {}


def write_state(home: Path, state: dict[str, Any]) -> None:
    """Replace the state on record (through a temp file, so no reader sees half of it)."""
    home.mkdir(parents=True, exist_ok=True)
    path = state_path(home)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(path)


def save_services(home: Path, root: Path | None, kafka: KafkaBroker, postgres: PostgresServer,
                  fakesnow: _fakesnow.FakesnowServer | None) -> None:
    """Record the running services; the services handed over stay on record.

    With ``fakesnow`` None, a running emulator on record stays on record: the
    manager saving may never have touched it (a fault test restarting Kafka,
    another process), and the one that started it, or its last user, must
    still find it to stop it. Dropping it left the emulator running, on its
    port, after the session that started it had ended.
    """
    previous = load_state(home)
    if fakesnow is None:
        fakesnow = _fakesnow.server_from_state(home, previous.get("fakesnow"))
        if fakesnow is not None and not fakesnow.running():
            fakesnow = None
    state = {
        "root": str(root),
        "kafka": {"pid": kafka.pid, "create_time": kafka.create_time,
                  "port": kafka.port, "controller_port": kafka.controller_port,
                  "data_dir": str(kafka.data_dir)},
        "postgres": {"pid": postgres.pid, "port": postgres.port,
                     "data_dir": str(postgres.data_dir)},
        "saved_at": time.time(),
    }
    if fakesnow is not None:
        state["fakesnow"] = _fakesnow.server_state(fakesnow)
    handed = previous.get("handed_over")
    if handed:
        state["handed_over"] = handed
    write_state(home, state)


class RecordedServices(NamedTuple):
    """The services on record, as objects that signal and probe the recorded pids."""

    kafka: KafkaBroker
    postgres: PostgresServer
    fakesnow: _fakesnow.FakesnowServer | None


def recorded_services(home: Path, infra: InfrastructureSettings, state: dict[str, Any]) -> RecordedServices:
    """The services of a non-empty ``state`` (its ``root`` is the caller's to read)."""
    ks, ps = state["kafka"], state["postgres"]
    return RecordedServices(
        kafka=KafkaBroker(home=home, data_dir=Path(ks["data_dir"]), port=ks["port"],
                          controller_port=ks["controller_port"], heap=infra.kafka_heap,
                          pid=ks["pid"], create_time=ks["create_time"]),
        postgres=PostgresServer(home=home, data_dir=Path(ps["data_dir"]), port=ps["port"],
                                user=infra.postgres_user, dbname=infra.postgres_db),
        fakesnow=_fakesnow.server_from_state(home, state.get("fakesnow")))


def recorded_fakesnow(home: Path) -> _fakesnow.FakesnowServer | None:
    """The Snowflake emulator on record now (another process may have started one since)."""
    return _fakesnow.server_from_state(home, load_state(home).get("fakesnow"))


def record_stopped(home: Path, names: set[str]) -> None:
    """Take the stopped ``names`` off the record (when Kafka and Postgres both stop, the file goes instead)."""
    state = load_state(home)
    if state:
        if "fakesnow" in names:
            state.pop("fakesnow", None)
        left = sorted(set(state.get("handed_over", [])) - names)
        state.pop("handed_over", None)
        if left:
            state["handed_over"] = left
        write_state(home, state)
