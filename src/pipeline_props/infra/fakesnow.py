"""The Snowflake target's endpoint: a local fakesnow emulator, or a real account.

The emulator (fakesnow, Snowflake's HTTP API on DuckDB) runs from a virtualenv
of its own, ``<home>/fakesnow-venv-<hash>``, created at setup with the exact
pins of ``emulator/requirements.txt`` (fakesnow needs duckdb 2, the project
pins duckdb 1.5). It is a server process like the broker and the Postgres
cluster: its own port, its own pid, stopped by that pid. The entry script
``emulator/fakesnow_server.py`` patches fakesnow before serving.

Every connection is bounded (login, network and socket timeouts), so a
dead or wedged emulator is an :class:`InfrastructureError` naming it, never a hang.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process

SERVICE = "snowflake emulator (fakesnow)"
SETUP_HINT = "run `./dev setup` (or `pipeline-props setup`) to create the emulator's virtualenv"
#: Seconds: login, each HTTP request (the connector's retries included), each socket read.
LOGIN_TIMEOUT = 20
NETWORK_TIMEOUT = 120
SOCKET_TIMEOUT = 60


def _emulator_file(name: str) -> Path:
    return Path(str(resources.files("pipeline_props.infra").joinpath("emulator").joinpath(name)))


def venv_dir(home: str | Path) -> Path:
    """The emulator's virtualenv, named after its requirements' hash so a pin bump rebuilds it."""
    digest = hashlib.sha256(_emulator_file("requirements.txt").read_bytes()).hexdigest()[:12]
    return Path(home) / f"fakesnow-venv-{digest}"


def ensure_venv(home: str | Path) -> Path:
    """Create the emulator's virtualenv with the pinned packages unless it is complete. Needs PyPI."""
    target = venv_dir(home)
    if (target / ".complete").exists():
        return target
    shutil.rmtree(target, ignore_errors=True)
    steps = [[sys.executable, "-m", "venv", str(target)],
             [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
              "-r", str(_emulator_file("requirements.txt"))]]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise InfrastructureError(SERVICE, f"creating its virtualenv failed ({cmd[2]}):\n{tail}")
    (target / ".complete").write_text("ok\n")
    return target


@dataclass(frozen=True)
class SnowflakeEndpoint:
    """How to reach the Snowflake target; secrets are kept out of ``repr``.

    ``emulator`` is true for the local fakesnow server (``host``/``port`` over
    http, any credentials accepted); otherwise ``account`` is a real one.
    """

    account: str
    user: str
    database: str
    password: str = field(default="", repr=False)
    private_key_path: str = ""
    private_key_passphrase: str = field(default="", repr=False)
    role: str = ""
    warehouse: str = ""
    host: str = ""
    port: int | None = None
    protocol: str = "https"
    emulator: bool = False

    @property
    def service(self) -> str:
        """The name errors give the service."""
        return SERVICE if self.emulator else f"snowflake account {self.account}"

    def connect_args(self) -> dict[str, Any]:
        """Keyword arguments of ``snowflake.connector.connect`` (bounded; may hold secrets)."""
        args: dict[str, Any] = {"account": self.account, "user": self.user,
                                "login_timeout": LOGIN_TIMEOUT, "network_timeout": NETWORK_TIMEOUT,
                                "socket_timeout": SOCKET_TIMEOUT, "application": "pipeline-props"}
        if self.password:
            args["password"] = self.password
        if self.private_key_path:
            args["private_key_file"] = self.private_key_path
            if self.private_key_passphrase:
                args["private_key_file_pwd"] = self.private_key_passphrase
        for key in ("role", "warehouse", "host"):
            if getattr(self, key):
                args[key] = getattr(self, key)
        if self.port:
            args["port"] = self.port
        args["protocol"] = self.protocol
        return args

    def connect(self, *, schema: str | None = None, database: bool = True) -> Any:
        """A bounded connection (autocommit on); InfrastructureError naming the service on failure."""
        import snowflake.connector

        args = self.connect_args()
        if database:
            args["database"] = self.database
        if schema:
            args["schema"] = schema
        try:
            return snowflake.connector.connect(**args)
        except snowflake.connector.errors.Error as exc:
            raise InfrastructureError(
                self.service, f"cannot connect: {type(exc).__name__}: {_short(exc)}",
                hint=("`pipeline-props services up --warehouse snowflake` starts it; "
                      "`pipeline-props services status` shows it") if self.emulator
                else "check the E2E_SNOWFLAKE_* settings (docs/snowflake.md)") from None

    def healthy(self) -> bool:
        """``SELECT 1`` answered."""
        try:
            conn = self.connect(database=False)
        except InfrastructureError:
            return False
        try:
            return conn.cursor().execute("SELECT 1").fetchone() == (1,)
        except Exception:
            return False
        finally:
            conn.close()


def _short(exc: BaseException, limit: int = 400) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[:limit] + "..."


def emulator_endpoint(port: int, database: str = "PIPELINE_PROPS") -> SnowflakeEndpoint:
    """The local emulator on ``port`` (fakesnow accepts any user and password)."""
    return SnowflakeEndpoint(account="fakesnow", user="fake", password="snow", database=database,
                             host="127.0.0.1", port=port, protocol="http", emulator=True)


@dataclass
class FakesnowServer:
    """One emulator process, started from its virtualenv; stopped only by its own pid."""

    home: Path
    port: int = 18931
    pid: int | None = None
    create_time: float | None = None

    @property
    def log_path(self) -> Path:
        return Path(self.home) / "logs" / "fakesnow.log"

    @property
    def endpoint(self) -> SnowflakeEndpoint:
        return emulator_endpoint(self.port)

    def start(self, timeout: float = 60.0) -> None:
        """Start the patched emulator on its port and wait for ``SELECT 1``."""
        if self.running():
            return
        python = venv_dir(self.home) / "bin" / "python"
        if not (venv_dir(self.home) / ".complete").exists():
            raise InfrastructureError(SERVICE, f"its virtualenv {venv_dir(self.home)} is missing",
                                      hint=SETUP_HINT)
        _process.ensure_port_free(SERVICE, self.port, "fakesnow_port", "E2E_FAKESNOW_PORT")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== starting fakesnow at {time.ctime()} ===\n".encode())
            proc = subprocess.Popen(
                [str(python), str(_emulator_file("fakesnow_server.py")), "--port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=str(self.home))
        self.pid = proc.pid
        self.create_time = _process.process_create_time(proc.pid)
        ready = _process.wait_until(lambda: proc.poll() is not None or _process.port_open(self.port),
                                    timeout, 0.2)
        if proc.poll() is not None:
            self.pid = None
            raise InfrastructureError(SERVICE, f"exited with code {proc.returncode}:\n"
                                      f"{_process.tail(self.log_path)}", log_path=self.log_path)
        if not (ready and self.endpoint.healthy()):
            self.stop()
            raise InfrastructureError(SERVICE, f"not ready after {timeout:.0f} s", log_path=self.log_path)

    def running(self) -> bool:
        return self.pid is not None and _process.pid_alive(self.pid, self.create_time)

    def healthy(self) -> bool:
        """The process runs and answers ``SELECT 1``."""
        return self.running() and self.endpoint.healthy()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (then SIGKILL) the emulator we started; its in-memory data goes with it."""
        if self.pid is not None:
            _process.terminate(self.pid, self.create_time, timeout=timeout)
            _process.wait_until(lambda: not _process.port_open(self.port), 10.0)
        self.pid = None
        self.create_time = None


def configured_endpoint(infra: Any) -> SnowflakeEndpoint | None:
    """The real account of the ``snowflake_*`` settings, or None when the emulator is meant."""
    if not infra.snowflake_account:
        return None
    missing = [k for k in ("snowflake_user", "snowflake_database") if not getattr(infra, k)]
    if not (infra.snowflake_password or infra.snowflake_private_key_path):
        missing.append("snowflake_password or snowflake_private_key_path")
    if missing:
        raise InfrastructureError(
            f"snowflake account {infra.snowflake_account}", "incomplete settings: " + ", ".join(missing),
            hint="set E2E_SNOWFLAKE_USER, E2E_SNOWFLAKE_DATABASE and E2E_SNOWFLAKE_PASSWORD "
                 "(or E2E_SNOWFLAKE_PRIVATE_KEY_PATH); see docs/snowflake.md")
    return SnowflakeEndpoint(
        account=infra.snowflake_account, user=infra.snowflake_user, database=infra.snowflake_database,
        password=infra.snowflake_password, private_key_path=infra.snowflake_private_key_path,
        private_key_passphrase=infra.snowflake_private_key_passphrase, role=infra.snowflake_role,
        warehouse=infra.snowflake_warehouse)


def server_state(server: FakesnowServer) -> dict[str, Any]:
    """The emulator's entry in ``services.json``."""
    return {"pid": server.pid, "create_time": server.create_time, "port": server.port}


def server_from_state(home: Path, entry: dict[str, Any] | None) -> FakesnowServer | None:
    """The emulator recorded in ``services.json`` (None when there is none)."""
    if not entry:
        return None
    return FakesnowServer(home=home, port=entry["port"], pid=entry.get("pid"),
                          create_time=entry.get("create_time"))
