"""pytest-xdist support: per-worker names, run keys, which tests run alone, the file locks."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline_props.errors import InfrastructureError, UsageError
from pipeline_props.infra.locks import file_lock, readers_writer
from pipeline_props.testing import xdist

pytestmark = pytest.mark.unit


def test_names_are_unchanged_without_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert xdist.worker_id() == "" and xdist.worker_suffix() == ""
    assert xdist.per_worker("pp_properties") == "pp_properties"


def test_each_worker_gets_its_own_names(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {}
    for wid in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", wid)
        names[wid] = [xdist.per_worker(n) for n in ("pp_properties", "pp_fault_machine", "props")]
    assert names["gw0"] == ["pp_properties_gw0", "pp_fault_machine_gw0", "props_gw0"]
    assert not set(names["gw0"]) & set(names["gw1"])


def test_a_strange_worker_id_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0; DROP SCHEMA x")
    with pytest.raises(UsageError, match="PYTEST_XDIST_WORKER"):
        xdist.per_worker("pp_properties")


def test_fault_tests_run_alone_and_service_tests_share() -> None:
    def item(fixtures: list[str], *marks: str) -> SimpleNamespace:
        return SimpleNamespace(fixturenames=fixtures,
                               iter_markers=lambda: [SimpleNamespace(name=m) for m in marks])

    services = {"infrastructure", "shared_stream"}
    assert xdist.services_access(item(["infrastructure", "fault_injector"], "faults"), services) == "exclusive"
    assert xdist.services_access(item(["tmp_path"], "faults", "integration"), services) == "exclusive"  # a CLI
    assert xdist.services_access(item(["shared_stream"], "properties"), services) == "shared"
    assert xdist.services_access(item(["tmp_path"], "integration"), services) == "shared"
    assert xdist.services_access(item(["tmp_path"], "unit"), services) is None
    assert xdist.services_access(item(["cluster_infra"], "cluster", "faults"), services) is None


def test_a_fixture_holding_fixed_ports_lives_one_test_under_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    scope = xdist.alone_scope("session")
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert scope("fault_injector", None) == "session"
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    assert scope("fault_injector", None) == "function"


_HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from pipeline_props.infra.locks import file_lock
    with file_lock(Path(sys.argv[1]), timeout=10, what="test", shared=sys.argv[2] == "shared"):
        print("held", flush=True)
        time.sleep(float(sys.argv[3]))
""")


def _holder(path: Path, mode: str, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path), mode, str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_an_exclusive_lock_makes_another_process_wait_and_times_out_clearly(tmp_path: Path) -> None:
    path = tmp_path / "locks" / "services.start"
    proc = _holder(path, "exclusive", 30)
    try:
        with pytest.raises(InfrastructureError, match=rf"waited 0 s for the lock .*pid {proc.pid}"), \
                file_lock(path, timeout=0.3, what="infrastructure"):
            pass
    finally:
        proc.kill()
        proc.wait(10)
    # A dead holder released it; and it is reentrant in one thread.
    with file_lock(path, timeout=5, what="infrastructure"), file_lock(path, timeout=0.1, what="infrastructure"):
        pass


def test_shared_holders_coexist_and_a_writer_waits_for_them(tmp_path: Path) -> None:
    reader = _holder(tmp_path / "services-in-use.lock", "shared", 1.5)
    try:
        t0 = time.monotonic()
        with readers_writer(tmp_path, "services-in-use", exclusive=False, timeout=0.5, what="t"):
            assert time.monotonic() - t0 < 0.5  # a second reader gets in at once
        with readers_writer(tmp_path, "services-in-use", exclusive=True, timeout=20, what="t"):
            assert reader.poll() is not None or time.monotonic() - t0 >= 1.0  # after the reader left
    finally:
        reader.kill()
        reader.wait(10)


def test_a_worker_follows_a_broker_the_other_worker_restarted(tmp_path: Path) -> None:
    """After a fault test on the other worker restarted the broker, our pid is dead: adopt the live one."""
    import json

    import psutil

    from pipeline_props.config import load_settings
    from pipeline_props.infra import InfrastructureManager
    from pipeline_props.infra.kafka import KafkaBroker

    settings = load_settings(env={}, overrides={"infrastructure": {"home": str(tmp_path / "home")}})
    mgr = InfrastructureManager(settings)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    mgr.kafka = KafkaBroker(home=mgr.home, data_dir=tmp_path / "kafka", port=1, controller_port=2,
                            heap="64m", pid=dead.pid, create_time=1.0)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        recorded = {"pid": live.pid, "create_time": psutil.Process(live.pid).create_time(),
                    "data_dir": str(tmp_path / "kafka")}
        mgr.home.mkdir(parents=True)
        mgr.state_file.write_text(json.dumps({"kafka": recorded}))
        mgr.adopt_recorded_broker()
        assert (mgr.kafka.pid, mgr.kafka.create_time) == (live.pid, recorded["create_time"])
        mgr.state_file.write_text(json.dumps({"kafka": {**recorded, "pid": dead.pid}}))
        mgr.adopt_recorded_broker()  # ours is alive: a dead pid on record never replaces it
        assert mgr.kafka.pid == live.pid
    finally:
        live.kill()
        live.wait(10)


def test_a_forgotten_manager_holds_no_lease(tmp_path: Path) -> None:
    """A manager dropped without cleanup must not keep the services alive for ever (its lease closes)."""
    import gc

    from pipeline_props.config import load_settings
    from pipeline_props.infra import InfrastructureManager, local
    from pipeline_props.infra.locks import nobody_else_holds

    settings = load_settings(env={}, overrides={"infrastructure": {"home": str(tmp_path / "home")}})
    mgr = InfrastructureManager(settings)
    users = local.users_file(mgr.home)
    mgr._lease = local.take_lease(mgr, mgr.home)
    assert not nobody_else_holds(users)
    del mgr
    gc.collect()
    assert nobody_else_holds(users)
