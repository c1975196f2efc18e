"""Two processes starting the services at once (two pytest-xdist workers): one starts, one reuses.

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
from pipeline_props.infra.manager import stop_kept_services

pytestmark = pytest.mark.integration

_WORKER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from pipeline_props.config import load_settings
    from pipeline_props.infra import InfrastructureManager
    home, kport, cport, pport, go = sys.argv[1:6]
    settings = load_settings(env={}, overrides={"infrastructure": {
        "home": home, "kafka_port": int(kport), "kafka_controller_port": int(cport),
        "postgres_port": int(pport)}})
    deadline = time.monotonic() + 30
    while not Path(go).exists() and time.monotonic() < deadline:  # start together
        time.sleep(0.01)
    mgr = InfrastructureManager(settings, keep_for="xdist-test-run").start_services()
    state = json.loads(mgr.state_file.read_text())
    print(json.dumps({"kafka": mgr.kafka.pid, "postgres_port": mgr.postgres.port,
                      "kept": state.get("kept")}))
    mgr.cleanup()  # a worker's end: kept services stay
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
    argv = [sys.executable, "-c", _WORKER, str(home), *map(str, ports), str(go)]
    workers = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    try:
        time.sleep(1.0)
        go.touch()
        results = []
        for proc in workers:
            out, err = proc.communicate(timeout=400)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        # One broker for both, started once; both workers' ends left it running for the run.
        assert results[0]["kafka"] == results[1]["kafka"]
        assert results[0]["kept"] == results[1]["kept"] == {
            "for": "xdist-test-run", "services": ["kafka", "postgres"]}
        kafka_pid = results[0]["kafka"]
        assert psutil.pid_exists(kafka_pid) and port_open(ports[0]) and port_open(ports[2])
        assert stop_kept_services(settings, "another-run") == []
        assert port_open(ports[0]), "services kept for another run must stay up"
        assert stop_kept_services(settings, "xdist-test-run") == ["kafka", "postgres"]
        for port in (ports[0], ports[2]):
            assert not port_open(port), f"port {port} still listening after the controller's stop"
        assert not (home / "services.json").exists()
    finally:
        for proc in workers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        InfrastructureManager.from_state(settings).cleanup(stop_all=True)
