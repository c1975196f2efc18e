"""CPU and memory of service processes, sampled by pid with psutil in a background thread.

A *target* is a name (``kafka``, ``postgres``, ``spark``, ``python``) and a
function returning the pids to watch right now, so a process that starts late
(the Spark driver JVM starts on the first use of the session) or forks
(Postgres starts a backend per connection) is picked up at the next tick.

CPU is the change in user+system CPU seconds of the target's processes between
two ticks divided by the wall time between them, as a percentage of one core
(a JVM using both cores reads 200 %). A process that appears between ticks
counts from its first sample on; one that exits loses its last interval (at
most ``interval`` seconds of CPU), which is why sampling is frequent.
A target watched with ``reaped_children=True`` (Postgres) also counts the CPU
of members that exited between two ticks: their parent (the postmaster) reaps
them, and its ``children_user``/``children_system`` times grow by their total,
from which the part already counted is taken off. A member that started
after the previous tick counts all its CPU. So short-lived backends (one per
connection) are not lost.
Memory is the sum of the processes' RSS (shared pages counted in each process,
so Postgres' shared buffers count once per backend: an upper bound).
"""

from __future__ import annotations

import bisect
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import psutil

PidSource = Callable[[], Iterable[int]]


@dataclass(frozen=True)
class Sample:
    """One tick for one target: monotonic time, CPU % of one core since the last tick, RSS bytes."""

    t: float
    cpu_percent: float
    rss_bytes: int
    processes: int


@dataclass
class ResourceStats:
    """CPU and memory of one target over a time window."""

    samples: int = 0
    cpu_avg_percent: float = 0.0
    cpu_max_percent: float = 0.0
    rss_avg_mb: float = 0.0
    rss_max_mb: float = 0.0
    processes_max: int = 0

    def to_dict(self) -> dict[str, float | int]:
        """The stats rounded for JSON."""
        return {"samples": self.samples, "cpu_avg_percent": round(self.cpu_avg_percent, 1),
                "cpu_max_percent": round(self.cpu_max_percent, 1),
                "rss_avg_mb": round(self.rss_avg_mb, 1), "rss_max_mb": round(self.rss_max_mb, 1),
                "processes_max": self.processes_max}


def with_children(pid: int | None) -> list[int]:
    """``pid`` and all its descendants (empty when it is not running)."""
    if pid is None:
        return []
    try:
        proc = psutil.Process(pid)
        return [pid, *(c.pid for c in proc.children(recursive=True))]
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


def spark_driver_pid() -> int | None:
    """The pid of this process' Spark driver JVM (pyspark's py4j gateway), or None.

    Never starts Spark: it only looks at a gateway pyspark already launched.
    pyspark starts ``spark-submit``, a shell script that ``exec``s java, so the
    launched pid is normally the JVM; a java child is preferred when there is one.
    """
    import sys

    if "pyspark" not in sys.modules:
        return None
    from pyspark import SparkContext

    gateway = getattr(SparkContext, "_gateway", None)
    proc = getattr(gateway, "proc", None)
    pid = getattr(proc, "pid", None)
    if pid is None:
        return None
    try:
        root = psutil.Process(pid)
        for p in (root, *root.children(recursive=True)):
            if p.name().startswith("java"):
                return p.pid
        return pid
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


@dataclass
class _Target:
    source: PidSource
    reaped_children: bool = False
    samples: list[Sample] = field(default_factory=list)
    last_cpu: dict[int, float] = field(default_factory=dict)
    procs: dict[int, psutil.Process] = field(default_factory=dict)


class ProcessSampler:
    """Samples the CPU and RSS of named groups of processes every ``interval`` seconds.

    Use as a context manager or with :meth:`start` / :meth:`stop`; read the
    results with :meth:`stats` (over a time window) or :meth:`samples`.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._targets: dict[str, _Target] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_t: float | None = None

    def watch(self, name: str, source: PidSource | Iterable[int], *, reaped_children: bool = False) -> None:
        """Watch the processes ``source`` returns (a function, or a fixed list of pids) as ``name``.

        ``reaped_children``: count the CPU of members that exited between ticks
        through their parent's reaped-children times (for a process tree such
        as Postgres' postmaster and its backends).
        """
        if not callable(source):
            fixed = list(source)
            source = lambda: fixed  # noqa: E731
        with self._lock:
            target = self._targets.setdefault(name, _Target(source))
            target.source = source
            target.reaped_children = reaped_children

    @property
    def targets(self) -> list[str]:
        """Names being watched."""
        return list(self._targets)

    def start(self) -> ProcessSampler:
        """Start the sampling thread (takes a first sample at once)."""
        if self._thread is None:
            self._stop.clear()
            self.sample_once()
            # The thread holds the sampler weakly: a sampler dropped without stop()
            # (its run raised) ends its thread at the next tick.
            self._thread = threading.Thread(target=_loop, args=(weakref.ref(self), self._stop, self.interval),
                                            name="pp-sampler", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread after one last sample."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None
            self.sample_once()

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def sample_once(self) -> None:
        """Take one sample of every target now."""
        now = time.monotonic()
        wall = time.time()
        with self._lock:
            dt = None if self._last_t is None else now - self._last_t
            since = None if dt is None else wall - dt
            self._last_t = now
            for target in self._targets.values():
                self._sample(target, now, dt, since)

    @staticmethod
    def _sample(target: _Target, now: float, dt: float | None, since: float | None) -> None:
        try:
            pids = list(dict.fromkeys(target.source()))
        except Exception:  # a pid source must never kill the sampler
            pids = []
        cpu_delta = 0.0
        rss = 0
        seen: dict[int, float] = {}
        alive = 0
        for pid in pids:
            proc = target.procs.get(pid)
            try:
                if proc is None:
                    proc = target.procs[pid] = psutil.Process(pid)
                with proc.oneshot():
                    times = proc.cpu_times()
                    mem = proc.memory_info().rss
                    created = proc.create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                target.procs.pop(pid, None)
                continue
            cpu = times.user + times.system
            if target.reaped_children:
                cpu += times.children_user + times.children_system
            if pid in target.last_cpu:
                cpu_delta += max(cpu - target.last_cpu[pid], 0.0)
            elif target.reaped_children and since is not None and created >= since:
                cpu_delta += cpu  # started since the last tick: all of its CPU is new
            seen[pid] = cpu
            rss += mem
            alive += 1
        if target.reaped_children:
            # Members gone since the last tick were reaped by a member whose
            # children times now hold their total: take off what was counted.
            gone = sum(c for pid, c in target.last_cpu.items() if pid not in seen)
            cpu_delta = max(cpu_delta - gone, 0.0)
        target.last_cpu = seen
        if dt is not None and dt > 0:
            target.samples.append(Sample(now, 100.0 * cpu_delta / dt, rss, alive))

    def samples(self, name: str) -> list[Sample]:
        """All samples of ``name`` so far."""
        with self._lock:
            return list(self._targets[name].samples) if name in self._targets else []

    def stats(self, name: str, windows: Iterable[tuple[float, float]] | None = None) -> ResourceStats:
        """CPU and RSS of ``name`` over the union of ``windows`` (monotonic start, end), or all samples.

        A sample belongs to a window when the interval it measured ends inside it.
        """
        samples = self.samples(name)
        if windows is not None:
            times = [s.t for s in samples]
            picked: dict[float, Sample] = {}
            for start, end in windows:
                lo = bisect.bisect_left(times, start)
                hi = bisect.bisect_right(times, end + self.interval)  # the tick that closes the window
                for s in samples[lo:hi]:
                    picked[s.t] = s
            samples = [picked[t] for t in sorted(picked)]
        samples = [s for s in samples if s.processes > 0]
        if not samples:
            return ResourceStats()
        n = len(samples)
        return ResourceStats(
            samples=n,
            cpu_avg_percent=sum(s.cpu_percent for s in samples) / n,
            cpu_max_percent=max(s.cpu_percent for s in samples),
            rss_avg_mb=sum(s.rss_bytes for s in samples) / n / 2**20,
            rss_max_mb=max(s.rss_bytes for s in samples) / 2**20,
            processes_max=max(s.processes for s in samples),
        )


def _loop(ref: weakref.ReferenceType[ProcessSampler], stop: threading.Event, interval: float) -> None:
    while not stop.wait(interval):
        sampler = ref()
        if sampler is None:
            return
        sampler.sample_once()
        del sampler


__all__ = ["ProcessSampler", "ResourceStats", "Sample", "spark_driver_pid", "with_children"]
