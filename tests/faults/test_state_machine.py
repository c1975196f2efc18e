"""A Hypothesis state machine over the running services: produce, stream, inject, recover, dbt.

Rules: produce a small generated batch (optionally with the producer killed
mid-file; every schedule starts with one, and with one fault injected), run the stream (availableNow; this
is also "restart the query"), inject a fault from the menu, produce a batch
under a newly injected fault, recover one active fault, run dbt.

Invariants, checked with every stage's findings (lost / duplicated / phantom
records and the stage where it went wrong, see pipeline_props.faults.findings):

* after every recovery that leaves no fault active, once the stream caught up:
  every acknowledged record is in the topic and in staging exactly once, no
  record sent once is in the topic twice (an idempotent producer), records
  whose send outcome is unknown are staged at most once, nothing is staged that
  was never sent (conservation: staging == distinct positions in the topic);
* at teardown, after healing every fault, rerunning the producer for batches
  whose outcome was unknown (same positions) and catching up: the same, plus
  the five tables after dbt equal the oracle over every batch.

A failure shrinks to the minimal schedule and Hypothesis prints it as a
runnable program. Budgets per profile: see ``_BUDGET``.

An infrastructure error of the harness itself (a service that does not come
back from a restart, a read of the topic or of staging that gets no answer
with every fault healed) is not a finding about the pipeline: that schedule is
abandoned, the services are restored, and the tally names it. An abandoned
schedule keeps drawing its steps without running them (its bookkeeping goes
on, so the rules Hypothesis can choose are the same as in a normal run) and is
rejected at teardown: Hypothesis neither counts nor shrinks it, and its
choice sequence stays consistent with every other run (stopping it at the
error made Hypothesis report FlakyStrategyDefinition). Too many abandoned
schedules fail the test: a proof over schedules that never ran is no proof.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator

import pytest
from hypothesis import HealthCheck, Phase, event, reject, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)

from pipeline_props.errors import InfrastructureError
from pipeline_props.faults import FaultHarness
from pipeline_props.faults.harness import HEADER_ONLY
from pipeline_props.pipeline.incremental import IncrementalPipeline
from pipeline_props.pipeline.reference import ReferencePipeline
from pipeline_props.pipeline.staging import StagingSink
from pipeline_props.strategies import sales_datasets
from pipeline_props.testing.profiles import current_profile
from pipeline_props.testing.xdist import per_worker

pytestmark = pytest.mark.faults

#: (max_examples, steps per example, dbt runs allowed mid-run) per Hypothesis profile.
_BUDGET = {"dev": (1, 5, 0), "ci": (1, 6, 0), "thorough": (50, 8, 1)}
#: Faults the machine draws from. kafka_kill costs a 20-30 s broker restart here and
#: a driver kill a 15-30 s driver start in a new process, so only the thorough profile
#: draws them.
FAULT_MENU: tuple[str, ...] = (
    "postgres_stop", "postgres_cut", "kafka_cut", "kafka_pause", "postgres_latency",
    "spark_crash_before_write", "spark_crash_after_write", "kafka_ack_loss",
)
THOROUGH_EXTRA: tuple[str, ...] = ("kafka_kill", "kafka_packet_loss", "spark_driver_kill_after_write")
SPARK_FAULTS = frozenset({"spark_crash_before_write", "spark_crash_after_write",
                          "spark_driver_kill_before_write", "spark_driver_kill_after_write"})
KAFKA_FAULTS = frozenset({"kafka_cut", "kafka_pause", "kafka_kill", "kafka_packet_loss"})

BATCHES = sales_datasets(min_rows=1, max_rows=6, files=1, error_rate=0.15, duplicate_rate=0.15,
                         formatting=False)


@dataclass
class Tally:
    """What a run of the machine did: printed at the end, the figures of a measurement run."""

    schedules: int = 0
    steps: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    checks: int = 0
    records_checked: int = 0
    #: lost / duplicated / phantom records summed over every check (staging, the outcome that matters)
    outcome: Counter[str] = field(default_factory=lambda: Counter(lost=0, duplicated=0, phantom=0))
    seconds: Counter[str] = field(default_factory=Counter)
    #: schedules given up on an infrastructure error (not findings), one line each
    abandoned: list[str] = field(default_factory=list)

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.seconds[what] += time.monotonic() - t0

    def render(self) -> str:
        by_phase = ", ".join(f"{k} {v:.0f} s" for k, v in self.seconds.most_common())
        return (f"fault schedules: {self.schedules} schedules ({len(self.abandoned)} abandoned on an "
                f"infrastructure error), {self.steps} steps, {self.checks} checks "
                f"({self.records_checked} acknowledged records), lost {self.outcome['lost']}, duplicated "
                f"{self.outcome['duplicated']}, phantom {self.outcome['phantom']}; faults {dict(self.faults)}; "
                f"time: {by_phase}")


class PipelineFaultMachine(RuleBasedStateMachine):
    """The pipeline under a generated schedule of batches, stream runs, faults and recoveries."""

    infra: ClassVar[Any] = None
    injector: ClassVar[Any] = None
    pipeline_kwargs: ClassVar[dict[str, Any]] = {}
    pipeline_class: ClassVar[type] = ReferencePipeline
    fault_menu: ClassVar[tuple[str, ...]] = FAULT_MENU
    dbt_budget: ClassVar[int] = 0
    tally: ClassVar[Tally] = Tally()

    def __init__(self) -> None:
        super().__init__()
        self.tally.schedules += 1
        pipeline = self.pipeline_class(self.infra, partitions=1, **self.pipeline_kwargs)
        self.h = FaultHarness(self.infra, self.injector, pipeline=pipeline)
        self.active: list[tuple[str, str]] = []  # (kind, error id)
        self.dbt_runs = 0
        self.abandoned = False
        with self._services("prepare"):
            self.h.prepare()

    @contextmanager
    def _services(self, what: str) -> Iterator[None]:
        """Run a step's service work; an infrastructure error abandons the schedule (module docstring).

        The error is swallowed here: the step returns and the schedule goes on
        drawing its steps, without running them, until teardown rejects it.
        """
        try:
            yield
        except InfrastructureError as exc:
            self._abandon(what, exc)

    def _abandon(self, what: str, exc: InfrastructureError) -> None:
        self.abandoned = True
        restored = self.injector.restore_services()
        line = f"{what}: {exc.service}: {exc.problem[:200]}" + (f" ({'; '.join(restored)})" if restored else "")
        self.tally.abandoned.append(line)
        print(f"ABANDONED schedule {self.tally.schedules}: {line}", flush=True)  # noqa: T201
        event(f"schedule abandoned on an infrastructure error: {exc.service}")

    # -- rules -----------------------------------------------------------------------
    def _first_batch(self, dataset: Any, kind: str) -> None:
        """Every schedule starts with data in the topic and one fault injected (a schedule without one proves little)."""
        self._produce(dataset, None)
        self._inject(kind)

    first_batch = initialize(dataset=BATCHES, kind=st.sampled_from(FAULT_MENU))(_first_batch)

    @rule(dataset=BATCHES, crash_after=st.none() | st.integers(1, 4))
    def produce(self, dataset: Any, crash_after: int | None) -> None:
        self.tally.steps += 1
        self._produce(dataset, crash_after)

    def _produce(self, dataset: Any, crash_after: int | None) -> None:
        data = dataset.files[0][1]
        if data.count(b"\n") < 1:
            data = HEADER_ONLY
        if self.abandoned:
            return
        if crash_after is not None:  # the producer killed mid-file: outcome unknown
            self.injector.armed.producer_crash_after = crash_after
        try:
            with self.tally.timed("produce"), self._services("produce"):
                self.h.produce(data)
        finally:
            self.injector.armed.producer_crash_after = None

    @rule()
    def run_stream(self) -> None:
        """Run (or restart) the query on its checkpoint; under faults it may fail, loudly."""
        self.tally.steps += 1
        self._stream()

    def _stream(self) -> None:
        if self.abandoned:
            return
        kafka_down = any(k in KAFKA_FAULTS for k, _ in self.active)
        with self.tally.timed("stream"), self._services("run_stream"):
            # a query against an unreachable broker fails in ~10-20 s (KAFKA_SOURCE_FAULT_OPTIONS);
            # one still waiting after 30 s is stopped, which is a query restart as well
            self.h.run_stream(timeout_s=30 if kafka_down else None)

    def _inject(self, kind: str, run_now: bool = True) -> None:
        self.tally.steps += 1
        if any(k == kind for k, _ in self.active):
            return
        error_id = ""
        if not self.abandoned:
            with self.tally.timed("inject"), self._services(f"inject {kind}"):
                error_id = self.injector.inject(kind)
                self.tally.faults[kind] += 1
        self.active.append((kind, error_id))  # also when abandoned: the same rules stay drawable
        if kind in SPARK_FAULTS and run_now:
            # A driver crash exists only inside a running micro-batch: run the query now.
            self._stream()

    inject = precondition(lambda self: len(self.active) < 2)(
        rule(kind=st.sampled_from(FAULT_MENU))(_inject))

    def _produce_under_fault(self, kind: str, dataset: Any) -> None:
        """Inject a fault (it stays active until a recover step) and produce a batch under it."""
        if len(self.active) < 2:
            self._inject(kind, run_now=False)
        else:
            self.tally.steps += 1
        self._produce(dataset, None)
        if kind in SPARK_FAULTS:  # one run: the crash hits the batch holding the new data
            self._stream()

    produce_under_fault = rule(kind=st.sampled_from(FAULT_MENU), dataset=BATCHES)(_produce_under_fault)

    @precondition(lambda self: bool(self.active))
    @rule(which=st.integers(0, 3))
    def recover(self, which: int) -> None:
        self.tally.steps += 1
        _, error_id = self.active.pop(which % len(self.active))
        if self.abandoned:
            return
        with self.tally.timed("recover"), self._services("recover"):
            self.injector.recover_from_error(error_id)
        if not self.active:
            self._check(marts=False, when="after recovery")

    @precondition(lambda self: not self.active and self.dbt_runs < self.dbt_budget)
    @rule()
    def run_dbt(self) -> None:
        self.tally.steps += 1
        self.dbt_runs += 1
        if self.abandoned:
            return
        with self.tally.timed("dbt"), self._services("run_dbt"):
            self.h.run_dbt()

    # -- checks ----------------------------------------------------------------------
    def _check(self, *, marts: bool, when: str) -> None:
        if self.abandoned:
            return
        with self._services(f"check {when}"):
            self._check_once(marts=marts, when=when)

    def _check_once(self, *, marts: bool, when: str) -> None:
        with self.tally.timed("catch_up"):
            out = self.h.catch_up()
        assert out.ok, f"{when}: the stream did not catch up with every fault healed: {out.error}"
        batches = ", ".join(f"{b.file_index}:{b.status}" for b in self.h.batches)
        findings = self._findings(marts=False)  # kafka and staging first: dbt tests may choke on dups
        self._report(findings, when, batches)
        if marts:
            with self.tally.timed("dbt"):
                self.h.run_dbt()
            findings = self._findings(marts=True)
            self._report(findings, when, batches)

    @staticmethod
    def _report(findings: Any, when: str, batches: str) -> None:
        if not findings.ok:
            # Printed now as well: if shrinking later hits an infrastructure error,
            # Hypothesis reports that instead and this check's findings would be lost.
            print(f"FINDING {when} (batches {batches}):\n{findings.render()}", flush=True)  # noqa: T201
        assert findings.ok, f"{when} (batches {batches}):\n{findings.render()}"

    def _findings(self, *, marts: bool) -> Any:
        with self.tally.timed("check"):
            findings = self.h.check(marts=marts)
        self.tally.checks += 1
        self.tally.records_checked += len(self.h.acked)
        self.tally.outcome.update(findings.counts())
        return findings

    def teardown(self) -> None:
        try:
            self.active.clear()
            if not self.abandoned:
                with self.tally.timed("recover"), self._services("recover_all"):
                    self.injector.recover_all()
            if not self.abandoned:
                with self.tally.timed("produce"), self._services("resend_unknown"):
                    self.h.resend_unknown()
            self._check(marts=True, when="at teardown")
            if self.abandoned and not _concluded():
                reject()  # only now, with every step drawn (see the module docstring)
        finally:
            try:
                self.injector.recover_all()
            finally:
                self.h.cleanup()


def _concluded() -> bool:
    """Whether Hypothesis already ended this test case (an overrun: teardown then runs in a finally)."""
    from hypothesis.control import current_build_context

    # ConjectureData.frozen is internal API: rejecting a frozen test case raises Frozen instead.
    return bool(current_build_context().data.frozen)


def machine(menu: tuple[str, ...], *, dbt_budget: int = 0, **pipeline_kwargs: Any
            ) -> type[PipelineFaultMachine]:
    """The state machine drawing its faults from ``menu``, with the pipeline built from ``pipeline_kwargs``."""
    attrs = {
        "fault_menu": menu, "dbt_budget": dbt_budget, "pipeline_kwargs": pipeline_kwargs,
        "first_batch": initialize(dataset=BATCHES, kind=st.sampled_from(menu))(PipelineFaultMachine._first_batch),
        "inject": precondition(lambda self: len(self.active) < 2)(
            rule(kind=st.sampled_from(menu))(PipelineFaultMachine._inject)),
        "produce_under_fault": rule(kind=st.sampled_from(menu), dataset=BATCHES)(
            PipelineFaultMachine._produce_under_fault),
    }
    return type("PipelineFaultMachine", (PipelineFaultMachine,), attrs)


def _settings(examples: int, steps: int, **kw: Any) -> settings:
    return settings(max_examples=examples, stateful_step_count=steps, deadline=None,
                    suppress_health_check=list(HealthCheck), **kw)


def _run(cls: type[PipelineFaultMachine], infra: Any, injector: Any, s: settings) -> None:
    cls.infra, cls.injector, cls.tally = infra, injector, Tally()
    t0 = time.monotonic()
    try:
        run_state_machine_as_test(cls, settings=s)
    finally:
        cls.tally.seconds["total"] = time.monotonic() - t0
        print(cls.tally.render())  # noqa: T201 - the figures of a measurement run (pytest -s / -rP)
        injector.recover_all()
    tally = cls.tally
    assert len(tally.abandoned) <= max(2, tally.schedules // 5), (
        f"{len(tally.abandoned)} of {tally.schedules} fault schedules were abandoned on infrastructure "
        "errors, too many for the run to prove anything:\n" + "\n".join(tally.abandoned))


def test_pipeline_survives_fault_schedules(infrastructure, fault_injector) -> None:
    """The reference pipeline keeps every acknowledged record exactly once under generated faults."""
    examples, steps, dbt = _BUDGET[current_profile()]
    examples = int(os.environ.get("PP_FAULT_SCHEDULES", examples))  # for measurement runs

    menu = FAULT_MENU + (THOROUGH_EXTRA if current_profile() == "thorough" else ())
    # One warehouse schema for every schedule (truncated between them): dbt reuses its parsed manifest.
    reference = machine(menu, dbt_budget=dbt, schema=per_worker("pp_fault_machine"))
    _run(reference, infrastructure, fault_injector, _settings(examples, steps))


# -------------------------------------------------------------------------- the proof


class AppendingSink(StagingSink):
    """A sink that is NOT idempotent on replay: no batch ledger, no key, plain INSERT (append)."""

    def __init__(self, dsn: str, schema: str, **kw: Any) -> None:
        super().__init__(dsn, schema, **kw)
        import psycopg
        from psycopg import sql

        with psycopg.connect(dsn, autocommit=True) as conn:
            for t in ("stg_events", "stg_rejects"):
                conn.execute(sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT IF EXISTS {}").format(
                    sql.Identifier(schema), sql.Identifier(t), sql.Identifier(f"{t}_pkey")))

    def _write(self, batch_id: int, valid: Any, rejects: Any) -> bool:
        from psycopg import sql

        from pipeline_props.pipeline import staging as S

        with S._connect(self._dsn) as conn:  # noqa: SLF001
            for stmt in S._TEMP_DDL:  # noqa: SLF001
                conn.execute(stmt)
            with conn.cursor() as cur:
                if valid.num_rows:
                    S._copy(cur, "_pp_events", valid)  # noqa: SLF001
                    cols = sql.SQL(", ").join(sql.Identifier(c) for c in S.EVENT_COLUMNS)
                    select = sql.SQL(", ").join(
                        sql.SQL(S._EVENT_TIME_FROM_US) if c == "event_time" else sql.Identifier(c)  # noqa: SLF001
                        for c in S.EVENT_COLUMNS)
                    cur.execute(sql.SQL("INSERT INTO {}.stg_events ({}) SELECT {} FROM _pp_events").format(
                        self._ident, cols, select))
                if rejects.num_rows:
                    S._copy(cur, "_pp_rejects", rejects)  # noqa: SLF001
                    cols = sql.SQL(", ").join(sql.Identifier(c) for c in S.REJECT_COLUMNS)
                    cur.execute(sql.SQL("INSERT INTO {}.stg_rejects ({}) SELECT {} FROM _pp_rejects").format(
                        self._ident, cols, cols))
            conn.commit()
        return True


_PROOF = dict(phases=[Phase.generate], database=None, derandomize=True)


def test_state_machine_catches_a_sink_that_is_not_idempotent(infrastructure, fault_injector) -> None:
    """Crash after the write + replay makes the appending sink store records twice: caught in staging."""

    broken = machine(("spark_crash_after_write",), sink_factory=AppendingSink)
    with pytest.raises(AssertionError) as info:
        _run(broken, infrastructure, fault_injector, _settings(4, 5, **_PROOF))
    assert "staging" in str(info.value) and "duplicated" in str(info.value), str(info.value)


def test_state_machine_catches_a_producer_without_idempotence(infrastructure, fault_injector) -> None:
    """A lost ack makes a non-idempotent producer's retry append the batch twice: caught in the topic."""

    broken = machine(("kafka_ack_loss",),
                     producer_config={"enable.idempotence": False, "acks": "all", "retries": 5})
    with pytest.raises(AssertionError) as info:
        _run(broken, infrastructure, fault_injector, _settings(4, 5, **_PROOF))
    assert "kafka" in str(info.value) and "duplicated" in str(info.value), str(info.value)


class _BrokerGoneAtFirstCheck(PipelineFaultMachine):
    """The first check's topic read gets no answer, as from a broker that did not come back."""

    failed_once: ClassVar[list[bool]] = []

    def _check_once(self, *, marts: bool, when: str) -> None:
        if not self.failed_once:
            self.failed_once.append(True)
            raise InfrastructureError("kafka", "no answer to a metadata request (simulated)")
        super()._check_once(marts=marts, when=when)


def test_an_infrastructure_error_abandons_the_schedule_not_the_run(infrastructure, fault_injector) -> None:
    """A harness-side service error rejects that schedule (no finding, no Flaky) and the run goes on."""
    cls = type("Machine", (_BrokerGoneAtFirstCheck, machine(("postgres_cut",), schema=per_worker("pp_fault_machine"))), {})
    cls.failed_once = []
    _run(cls, infrastructure, fault_injector, _settings(1, 2, **_PROOF))
    assert len(cls.tally.abandoned) == 1 and "simulated" in cls.tally.abandoned[0], cls.tally.abandoned
    assert cls.tally.schedules >= 2 and cls.tally.checks >= 1  # a later schedule ran to its checks
    assert not fault_injector.active


# ------------------------------------------------------------------ incremental marts under faults


class IncrementalFaultMachine(PipelineFaultMachine):
    """The machine with incremental marts (pipeline/incremental.py) and two more rules.

    * dbt killed mid-run (faults/dbt_kill.py: SIGKILL of the process running
      ``dbt run`` once some models committed the run and others had not),
      then the pipeline's next model run: the marts must equal a full refresh
      of the same staging (no partial merge survives, no batch counts twice);
    * a rerun of the same batch: a model run repeated with no new data
      changes no table.

    Every schedule starts with batch 1, the marts built, batch 2 and a dbt
    kill; the teardown check compares the marts with the oracle as usual.
    """

    pipeline_class = IncrementalPipeline

    def __init__(self) -> None:
        super().__init__()
        self.built = False

    def _first_kill(self, dataset: Any, later: Any) -> None:
        self._produce(dataset, None)
        self._model(self.h.run_dbt)
        self._produce(later, None)
        self._kill_dbt()

    def _model(self, run: Any) -> None:
        """Catch up, then ``run`` (a model run) under the services guard."""
        if self.abandoned:
            return
        with self.tally.timed("dbt"), self._services("incremental dbt"):
            out = self.h.catch_up()
            assert out.ok, f"the stream did not catch up with every fault healed: {out.error}"
            run()
            self.built = True

    def _kill_dbt(self) -> None:
        from pipeline_props.faults.dbt_kill import run_killed_dbt

        self.tally.steps += 1
        self.tally.faults["dbt_kill"] += 1

        def kill_and_rerun() -> None:
            kill = run_killed_dbt(self.infra.postgres_dsn, self.h.pipeline.warehouse_target(self.h.ns))
            event(f"dbt killed: {len(kill.applied)} model(s) had applied the run")
            print(f"dbt killed at run {kill.run}: applied {kill.applied}, pending {kill.pending}", flush=True)  # noqa: T201
            self.h.run_dbt()  # the recovery: the next model run
            self._same_as_full_refresh("after dbt was killed mid-run and rerun")

        self._model(kill_and_rerun)

    def _same_as_full_refresh(self, when: str) -> None:
        from pipeline_props.compare import compare

        incremental = self.h.pipeline.read_tables(self.h.ns)
        self.h.pipeline.full_refresh(self.h.ns)
        div = compare(incremental, self.h.pipeline.read_tables(self.h.ns))
        assert div.ok, f"{when}, the incremental marts differ from a full refresh:\n" + div.render(max_rows=8) \
            .replace("pipeline and oracle", "incremental and full refresh")

    @precondition(lambda self: not self.active and self.built)
    @rule()
    def dbt_killed_mid_run(self) -> None:
        self._kill_dbt()

    @precondition(lambda self: not self.active)
    @rule()
    def run_incremental_dbt(self) -> None:
        self.tally.steps += 1
        self._model(self.h.run_dbt)

    @precondition(lambda self: not self.active and self.built)
    @rule()
    def rerun_with_no_new_data(self) -> None:
        """The same batch's model run again: no table may change."""
        from pipeline_props.compare import compare

        self.tally.steps += 1

        def twice() -> None:
            self.h.run_dbt()
            before = self.h.pipeline.read_tables(self.h.ns)
            self.h.run_dbt()
            div = compare(self.h.pipeline.read_tables(self.h.ns), before)
            assert div.ok, "a model run with no new data changed the tables:\n" + div.render(max_rows=8) \
                .replace("pipeline and oracle", "rerun and first run")

        self._model(twice)


def incremental_machine(menu: tuple[str, ...], **pipeline_kwargs: Any) -> type[IncrementalFaultMachine]:
    """The incremental machine drawing its faults from ``menu`` (every schedule starts with a dbt kill)."""
    base = machine(menu, **pipeline_kwargs)
    attrs = {k: v for k, v in vars(base).items() if k in ("fault_menu", "pipeline_kwargs", "inject",
                                                           "produce_under_fault")}
    attrs["first_batch"] = initialize(dataset=BATCHES, later=BATCHES)(IncrementalFaultMachine._first_kill)
    return type("IncrementalFaultMachine", (IncrementalFaultMachine,), attrs)


#: (max_examples, steps per example) of the incremental machine per profile: in ci one schedule, so one
#: dbt kill (its child process starts dbt: ~15-30 s here).
_INCREMENTAL_BUDGET = {"dev": (1, 2), "ci": (1, 2), "thorough": (10, 8)}


def test_incremental_marts_survive_dbt_kills_and_reruns(infrastructure, fault_injector) -> None:
    """dbt killed mid-run and reruns with no new data: the marts equal a full refresh and, at the end, the oracle."""
    examples, steps = _INCREMENTAL_BUDGET[current_profile()]
    menu = ("postgres_cut", "spark_crash_after_write") + (FAULT_MENU[2:] if current_profile() == "thorough" else ())
    cls = incremental_machine(menu, schema=per_worker("pp_fault_incremental"))
    _run(cls, infrastructure, fault_injector, _settings(examples, steps))
    assert cls.tally.faults["dbt_kill"] >= 1
    assert cls.tally.outcome["lost"] == 0 and cls.tally.outcome["duplicated"] == 0, cls.tally.render()
