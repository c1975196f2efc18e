"""pytest plugin (entry point ``pytest11``), so a team's own suite gets what ours has.

* the Hypothesis profiles ``dev``, ``ci`` and ``thorough`` (``--hypothesis-profile``),
  ``dev`` loaded when none is named (Hypothesis' own default has a 200 ms
  deadline, which every example that touches a service exceeds);
* session-scoped service fixtures: ``pp_settings``, ``infrastructure`` (an
  :class:`~pipeline_props.infra.InfrastructureManager` started once per
  session and stopped at its end if it started the services and nobody else
  uses them, else handed over to the last user), ``kafka_bootstrap``,
  ``postgres_dsn`` and ``spark`` (one SparkSession for the whole session);
* ``namespace``: a fresh dataset namespace per test;
* the markers, validated: a test that uses a service fixture must be marked
  ``integration``, ``properties``, ``faults`` or ``mutations``;
* engine versions in the report header;
* pytest-xdist (``-n 2``): per-worker names, services that live until the
  run ends (the controller holds a lease), fault and cluster tests one at a
  time (:mod:`pipeline_props.testing.xdist`, docs/cluster.md).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Generator, Iterator
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import settings

from pipeline_props.testing import xdist
from pipeline_props.testing.profiles import DEFAULT_PROFILE, register_profiles

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from pipeline_props.config import Settings
    from pipeline_props.infra import InfrastructureManager
    from pipeline_props.pipeline.stream import SharedStream

register_profiles()

MARKERS = {
    "unit": "fast, no services",
    "integration": "needs the real services (Kafka, Postgres, Spark)",
    "properties": "Hypothesis property tests",
    "faults": "fault injection against the real services",
    "mutations": "deliberate pipeline bugs that the properties must catch",
    "spark": "needs a SparkSession (no broker)",
    "slow": "takes more than a minute",
    "snowflake": "the Snowflake target (dbt-snowflake against the fakesnow emulator or a real account)",
    "cluster": "the cluster topology: 3 Kafka brokers, Spark standalone master + 2 workers (docs/cluster.md)",
}
SERVICE_FIXTURES = {"infrastructure", "kafka_bootstrap", "postgres_dsn", "shared_stream"}
SERVICE_MARKERS = {"integration", "properties", "faults", "mutations", "snowflake", "cluster"}


_XDIST_LEASE = pytest.StashKey[contextlib.ExitStack]()
_XDIST_STOPPED = pytest.StashKey[list[str]]()
_HOME = pytest.StashKey[str]()
#: The session's InfrastructureManager once the fixture made it (its broker may move, see below).
_SESSION_INFRA: list[InfrastructureManager] = []


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile(DEFAULT_PROFILE)
    if xdist.is_controller(config):
        stack = contextlib.ExitStack()
        stack.enter_context(xdist.controller_lease(_home(config)))
        config.stash[_XDIST_LEASE] = stack


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """In the xdist controller, every worker is done: stop what they handed over, if nobody else uses it."""
    stack = session.config.stash.get(_XDIST_LEASE, None)
    if stack is None:
        return
    from pipeline_props.config import load_settings
    from pipeline_props.infra import InfrastructureManager

    stack.close()
    mgr = InfrastructureManager.from_state(load_settings())
    handed = mgr.handed_over()
    mgr.cleanup()
    session.config.stash[_XDIST_STOPPED] = [n for n in handed if n not in mgr.handed_over()]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    stopped = config.stash.get(_XDIST_STOPPED, None)
    if stopped:
        terminalreporter.write_line(f"pipeline-props: stopped {', '.join(stopped)}, started by the "
                                    "xdist workers for this run")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    """Under xdist, a test that signals the shared services runs while no other worker uses them."""
    access = xdist.services_access(item, SERVICE_FIXTURES)
    if access is None or not xdist.worker_id():
        return (yield)
    with xdist.services_turn(_home(item.config), access):
        if _SESSION_INFRA:
            _SESSION_INFRA[0].adopt_recorded_broker()
        return (yield)


def _home(config: pytest.Config) -> str:
    """The local services' home (where their lock files are), read once per session."""
    if _HOME not in config.stash:
        from pipeline_props.config import load_settings

        config.stash[_HOME] = str(load_settings().infrastructure.home)
    return config.stash[_HOME]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def pytest_report_header(config: pytest.Config) -> list[str]:
    from pipeline_props.infra.jars import _POMS, cache_dir  # noqa: PLC0415
    from pipeline_props.config import load_settings

    engines = ", ".join(f"{d} {_version(d)}" for d in
                        ("pyspark", "duckdb", "dbt-core", "dbt-postgres", "dbt-duckdb",
                         "confluent-kafka", "psycopg", "hypothesis"))
    try:
        home = load_settings().infrastructure.home
        jars = ", ".join(cache_dir(home, k).name for k in _POMS)
    except Exception as exc:  # a bad config must not hide the header
        jars = f"unknown ({exc})"
    return [f"pipeline-props engines: {engines}", f"pipeline-props jar sets: {jars}"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _skip_slow_outside_thorough(config, items)
    if config.pluginmanager.hasplugin("xdist"):
        # With --dist loadgroup the cluster tests all go to one worker (one Spark application
        # holds both executors); with plain load, cluster_turn makes the other worker wait.
        for item in items:
            if item.get_closest_marker("cluster"):
                item.add_marker(pytest.mark.xdist_group("pp_cluster"))
    problems = []
    for item in items:
        used = set(getattr(item, "fixturenames", ())) & SERVICE_FIXTURES
        marks = {m.name for m in item.iter_markers()}
        if used and not marks & SERVICE_MARKERS:
            problems.append(f"{item.nodeid} uses {sorted(used)} but has none of the markers "
                            f"{sorted(SERVICE_MARKERS)}")
    if problems:
        raise pytest.UsageError("pipeline-props marker check failed:\n  " + "\n  ".join(problems))


def _skip_slow_outside_thorough(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``slow`` tests run in the thorough profile, or when selected with ``-m`` (``-m cluster`` too:
    asking for the cluster tests, which need a cluster, is asking for slow ones)."""
    from pipeline_props.testing.profiles import current_profile

    expr = config.getoption("markexpr", "") or ""
    if current_profile() == "thorough" or "slow" in expr or "cluster" in expr:
        return
    skip = pytest.mark.skip(reason="slow: runs with --hypothesis-profile=thorough or -m slow")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def pp_settings() -> Settings:
    """The settings (defaults < $E2E_CONFIG YAML < E2E_* environment)."""
    from pipeline_props.config import load_settings

    return load_settings()


@pytest.fixture(scope="session")
def infrastructure(pp_settings: Settings) -> Iterator[InfrastructureManager]:
    """Kafka and Postgres, started once per session (reused if `services up` already runs them)."""
    from pipeline_props.infra import InfrastructureManager

    mgr = InfrastructureManager(pp_settings)
    mgr.start_services()
    mgr.wait_for_readiness()
    _SESSION_INFRA[:] = [mgr]
    try:
        yield mgr
    finally:
        _SESSION_INFRA.clear()
        mgr.cleanup()


@pytest.fixture(scope="session")
def kafka_bootstrap(infrastructure: InfrastructureManager) -> str:
    """Bootstrap servers of the session's broker."""
    return infrastructure.kafka_bootstrap


@pytest.fixture(scope="session")
def postgres_dsn(infrastructure: InfrastructureManager) -> str:
    """libpq conninfo of the session's warehouse."""
    return infrastructure.postgres_dsn


@pytest.fixture(scope="session")
def spark(pp_settings: Settings) -> Iterator[SparkSession]:
    """One SparkSession for the whole test session (it takes ~10 s to start)."""
    from pipeline_props.infra.spark import get_spark_session, stop_spark_session

    session = get_spark_session(pp_settings.infrastructure)
    try:
        yield session
    finally:
        stop_spark_session()


@pytest.fixture(scope="session")
def shared_stream(infrastructure: InfrastructureManager) -> Iterator[SharedStream]:
    """The reference pipeline's long-lived streaming query, started once per session.

    Property examples share it (``ReferencePipeline(stream=shared_stream)``);
    at the session's end it is stopped and its topics, ledger and checkpoint dropped.
    """
    from pipeline_props.pipeline.stream import SharedStream

    stream = SharedStream.from_infra(infrastructure).start()
    try:
        yield stream
    finally:
        stream.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh dataset namespace (topic, checkpoint and schema name)."""
    return f"pp_t{uuid.uuid4().hex[:12]}"
