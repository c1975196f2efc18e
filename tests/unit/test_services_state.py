"""services.json: a manager that never touched the emulator keeps a running one on record."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pipeline_props.infra import state
from pipeline_props.infra.kafka import KafkaBroker
from pipeline_props.infra.postgres import PostgresServer

pytestmark = pytest.mark.unit


@pytest.fixture
def live_process() -> Iterator[psutil.Process]:
    """A process of this test's own that stands in for a running emulator."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield psutil.Process(proc.pid)
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _save(home: Path) -> None:
    state.save_services(home, home / "root", KafkaBroker(home=home, data_dir=home / "kafka"),
                        PostgresServer(home=home, data_dir=home / "postgres"), None)


def test_a_running_emulator_on_record_stays_on_record(tmp_path: Path, live_process: psutil.Process) -> None:
    entry = {"pid": live_process.pid, "create_time": live_process.create_time(), "port": 18999}
    state.write_state(tmp_path, {"root": "r", "fakesnow": entry, "handed_over": ["fakesnow"]})
    _save(tmp_path)  # as a fault test's restart of Kafka saves, from a manager without the emulator
    saved = state.load_state(tmp_path)
    assert saved["fakesnow"] == entry
    assert saved["handed_over"] == ["fakesnow"]
    server = state.recorded_fakesnow(tmp_path)
    assert server is not None and server.running()


def test_a_dead_emulator_on_record_is_dropped(tmp_path: Path, live_process: psutil.Process) -> None:
    entry = {"pid": live_process.pid, "create_time": live_process.create_time() - 100.0, "port": 18999}
    state.write_state(tmp_path, {"root": "r", "fakesnow": entry})  # the pid was reused: not our emulator
    _save(tmp_path)
    assert "fakesnow" not in state.load_state(tmp_path)
