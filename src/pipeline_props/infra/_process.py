"""Process and port helpers shared by the local services. No business rules here."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from pipeline_props.errors import InfrastructureError


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_owner(port: int) -> str:
    """A short description of who listens on ``port`` (pid and name when visible)."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN:
                if conn.pid:
                    try:
                        return f"pid {conn.pid} ({psutil.Process(conn.pid).name()})"
                    except psutil.Error:
                        return f"pid {conn.pid}"
    except psutil.Error:
        pass
    return "another process"


def ensure_port_free(service: str, port: int, setting: str, env_var: str) -> None:
    """Raise a clear error when ``port`` is taken by a process we did not start."""
    if port_open(port):
        raise InfrastructureError(
            service,
            f"port {port} is already in use by {port_owner(port)}",
            hint=f"stop that process, or pick another port: {env_var}=<port> "
            f"(or infrastructure.{setting} in the YAML config)",
        )


def pid_alive(pid: int, create_time: float | None = None) -> bool:
    """True when ``pid`` runs and, if given, was created at ``create_time`` (not a reused pid)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return create_time is None or abs(proc.create_time() - create_time) < 1.0
    except psutil.Error:
        return False


def process_create_time(pid: int) -> float | None:
    """Creation time of ``pid``, used to recognise it later."""
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def terminate(pid: int, create_time: float | None, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Stop a process we started (and only it): ``sig``, then SIGKILL after ``timeout``."""
    if not pid_alive(pid, create_time):
        return
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    if wait_until(lambda: not pid_alive(pid, create_time), timeout):
        _reap(pid)
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_until(lambda: not pid_alive(pid, create_time), 10.0)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll ``predicate`` until it is true or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 20) -> str:
    """Last lines of a log file, for error messages."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
