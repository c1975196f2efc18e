"""Two processes starting the services at once (two pytest-xdist workers): one starts, one reuses;
the one that started them does not stop them while the other still uses them: the last one out does.

On an isolated home with free ports, so the shared services are never touched.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from pipeline_props.config import load_settings
from pipeline_props.infra import InfrastructureManager
from pipeline_props.infra._process import port_open

pytestmark = pytest.mark.integration

_WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from pipeline_props.config import load_settings
    from pipeline_props.infra import InfrastructureManager
    home, kport, cport, pport, go, leave = sys.argv[1:7]
    settings = load_settings(env={}, overrides={"infrastructure": {
        "home": home, "kafka_port": int(kport), "kafka_controller_port": int(cport),
        "postgres_port": int(pport)}})
    deadline = time.monotonic() + 30
    while not Path(go).exists() and time.monotonic() < deadline:  # start together
        time.sleep(0.01)
    mgr = InfrastructureManager(settings).start_services()
    print(json.dumps({"kafka": mgr.kafka.pid, "started": sorted(mgr._started)}), flush=True)
    deadline = time.monotonic() + 400
    while not Path(leave).exists() and time.monotonic() < deadline:  # the test says when
        time.sleep(0.05)
    mgr.cleanup()
    print(json.dumps({"handed_over": mgr.handed_over()}), flush=True)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_starting_at_once_start_the_services_once(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "jars").symlink_to(Path(load_settings().infrastructure.home) / "jars")
    ports = [_free_port() for _ in range(3)]
    settings = load_settings(env={}, overrides={"infrastructure": {
        "home": str(home), "kafka_port": ports[0], "kafka_controller_port": ports[1],
        "postgres_port": ports[2]}})
    go = tmp_path / "go"
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(home), *map(str, ports), str(go),
                                 str(tmp_path / f"leave{i}")], stdout=subprocess.PIPE, text=True)
               for i in range(2)]
    try:
        time.sleep(1.0)
        go.touch()
        started = [json.loads(proc.stdout.readline()) for proc in workers]  # type: ignore[union-attr]
        # One broker for both, started once (the start lock): one started it, the other reused it.
        assert started[0]["kafka"] == started[1]["kafka"]
        assert sorted(s["started"] for s in started) == [[], ["kafka", "postgres"]]
        starter = 0 if started[0]["started"] else 1
        user = 1 - starter

        # The starter ends first: the other still uses them, so they are handed over, not stopped.
        (tmp_path / f"leave{starter}").touch()
        out, _ = workers[starter].communicate(timeout=120)
        assert workers[starter].returncode == 0
        assert json.loads(out.strip().splitlines()[-1]) == {"handed_over": ["kafka", "postgres"]}
        assert psutil.pid_exists(started[0]["kafka"]) and port_open(ports[0]) and port_open(ports[2])

        # The last user out stops them.
        (tmp_path / f"leave{user}").touch()
        out, _ = workers[user].communicate(timeout=120)
        assert workers[user].returncode == 0
        for port in (ports[0], ports[2]):
            assert not port_open(port), f"port {port} still listening after the last user left"
        assert not (home / "services.json").exists()
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        InfrastructureManager.from_state(settings).cleanup(stop_all=True)
