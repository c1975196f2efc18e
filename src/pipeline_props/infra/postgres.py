"""A throwaway PostgreSQL cluster from Debian's server package: own data dir, own port.

Never touches a system cluster. initdb and postgres refuse to run as root, so
as root they run as the ``postgres`` user (runuser) on a data dir it owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline_props.errors import InfrastructureError
from pipeline_props.infra import _process

INSTALL_HINT = "apt-get update && apt-get install -y postgresql (or run `./dev setup`)"


def find_bindir() -> Path:
    """The bin dir of the newest installed PostgreSQL server (pg_ctl, initdb, postgres)."""
    env = os.environ.get("PIPELINE_PROPS_PG_BINDIR")
    candidates = [env] if env else sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))[::-1]
    for cand in candidates:
        if cand and (Path(cand) / "initdb").exists() and (Path(cand) / "pg_ctl").exists():
            return Path(cand)
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    raise InfrastructureError("postgres", "no PostgreSQL server binaries (initdb, pg_ctl) found",
                              hint=INSTALL_HINT)


@dataclass
class PostgresServer:
    """One throwaway cluster. ``data_dir`` survives restarts (faults restart it in place)."""

    home: Path
    data_dir: Path
    port: int = 15432
    user: str = "postgres"
    dbname: str = "postgres"

    @property
    def log_path(self) -> Path:
        return Path(self.home) / "logs" / "postgres.log"

    @property
    def dsn(self) -> str:
        """libpq conninfo (trust auth on loopback only: no secret in it)."""
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={self.dbname}"

    @property
    def _pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise InfrastructureError("postgres", "running as root but there is no 'postgres' user",
                                      hint=INSTALL_HINT) from None
        return ["runuser", "-u", "postgres", "--", *cmd]

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    def _run(self, cmd: list[str], what: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self._as_owner(cmd), capture_output=True, text=True, cwd="/")
        if proc.returncode != 0:
            raise InfrastructureError(
                "postgres", f"{what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}",
                log_path=self.log_path)
        return proc

    def init(self) -> None:
        """initdb once (trust auth on loopback and the socket dir)."""
        bindir = find_bindir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._chown(self.data_dir)
        if os.geteuid() == 0:
            # tempfile.mkdtemp makes 0700 folders: let the postgres user reach its data dir.
            for parent in self.data_dir.parents:
                if parent == Path(tempfile.gettempdir()) or parent == Path("/"):
                    break
                parent.chmod(parent.stat().st_mode | 0o711)
        if (self._pgdata / "PG_VERSION").exists():
            return
        self._run([str(bindir / "initdb"), "-D", str(self._pgdata), "-A", "trust", "-U", self.user,
                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"], "initdb")

    def start(self, timeout: float = 60.0) -> None:
        """Start the cluster on its own port and wait for ``SELECT 1``."""
        if self.running() and self.healthy():
            return
        _process.ensure_port_free("postgres", self.port, "postgres_port", "E2E_POSTGRES_PORT")
        self.init()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "server.log"  # written by the postgres user; copied on errors
        opts = (f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
                # fsync off: only an OS crash could lose data, and this cluster is thrown away.
                # synchronous_commit stays on: the fault tests crash Postgres (immediate stop),
                # and an asynchronous COMMIT is one such a crash can take back.
                "-c fsync=off -c synchronous_commit=on -c full_page_writes=off "
                "-c max_connections=100 -c shared_buffers=256MB -c max_wal_size=2GB "
                "-c work_mem=32MB -c maintenance_work_mem=256MB")
        proc = subprocess.run(
            self._as_owner([str(find_bindir() / "pg_ctl"), "-D", str(self._pgdata), "-o", opts,
                            "-l", str(log), "-w", "-t", str(int(timeout)), "start"]),
            capture_output=True, text=True, cwd="/")
        if proc.returncode != 0 or not _process.wait_until(self.healthy, timeout):
            self._copy_log(log)
            raise InfrastructureError("postgres", f"server did not start: {proc.stderr.strip()[-400:]}\n"
                                      f"{_process.tail(self.log_path)}", log_path=self.log_path)
        self._copy_log(log)

    def _copy_log(self, log: Path) -> None:
        try:
            shutil.copyfile(log, self.log_path)
        except OSError:
            pass

    @property
    def pid(self) -> int | None:
        """The postmaster's pid from our own data dir's postmaster.pid."""
        try:
            return int((self._pgdata / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        pid = self.pid
        return pid is not None and _process.pid_alive(pid)

    def healthy(self) -> bool:
        """``SELECT 1`` answered."""
        import psycopg

        try:
            with psycopg.connect(self.dsn, connect_timeout=3) as conn:
                return conn.execute("SELECT 1").fetchone() == (1,)
        except psycopg.Error:
            return False

    def stop(self, mode: str = "fast", timeout: float = 60.0) -> None:
        """pg_ctl stop (mode fast, or immediate to simulate a crash)."""
        if not (self._pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            self._as_owner([str(find_bindir() / "pg_ctl"), "-D", str(self._pgdata), "-m", mode,
                            "-w", "-t", str(int(timeout)), "stop"]),
            capture_output=True, text=True, cwd="/")
        self._copy_log(self.data_dir / "server.log")
