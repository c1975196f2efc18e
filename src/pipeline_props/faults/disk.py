"""Disk faults: a filesystem filled to the brim, and Postgres tables moved onto a small tmpfs.

Only a tmpfs the harness mounted is ever filled (never a shared disk), and
only root can mount one. ErrorInjector (faults/injector.py) registers these
faults and their undo like every other.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline_props.errors import InfrastructureError, UsageError
from pipeline_props.infra.postgres import PostgresServer

__all__ = ["TmpfsTablespace", "create_tmpfs_tablespace", "drop_tmpfs_tablespace", "fill", "is_tmpfs",
           "mount_tmpfs", "unmount_tmpfs"]


@dataclass
class TmpfsTablespace:
    """A Postgres tablespace whose LOCATION is a small tmpfs we mounted (see :func:`create_tmpfs_tablespace`)."""

    name: str
    directory: Path
    #: The tablespace exists in the cluster (DROP TABLESPACE still to do).
    created: bool = False


def fill(directory: Path, *, keep_bytes: int = 0) -> Callable[[], None]:
    """Fill the filesystem of ``directory`` (a tmpfs) to the brim, or up to ``keep_bytes`` free; returns the undo."""
    if not is_tmpfs(directory):
        raise UsageError(f"{directory} is not a tmpfs mount: refusing to fill a shared disk")
    filler = directory / f".pp-filler-{uuid.uuid4().hex[:6]}"
    st = os.statvfs(directory)
    size = max(0, st.f_bavail * st.f_frsize - keep_bytes)
    try:
        with open(filler, "wb", buffering=0) as fh:
            fh.write(b"\0" * size)
            while not keep_bytes:  # top off whatever the estimate missed
                fh.write(b"\0" * 4096)
    except OSError:  # ENOSPC: full, as wanted
        pass
    return lambda: filler.unlink(missing_ok=True)


def create_tmpfs_tablespace(postgres: PostgresServer, schema: str, tables: Sequence[str], *,
                            size: str = "8m") -> TmpfsTablespace:
    """Move ``tables`` of ``schema`` and their indexes onto a new tablespace on a ``size`` tmpfs (root).

    The tmpfs is mounted under the cluster's data dir and handed to the OS user
    that runs the cluster; the tablespace name is unique per call. Only relation
    files live there (WAL stays in the main data dir), so filling the tmpfs with
    :func:`fill` makes the next write that extends one of these
    tables fail (``could not extend file ...: No space left on device``). Undo
    with :func:`drop_tmpfs_tablespace`; a failure half-way undoes itself.
    """
    import psycopg
    from psycopg import sql

    name = f"pp_ts_{uuid.uuid4().hex[:10]}"
    ts = TmpfsTablespace(name, postgres.data_dir / "tablespaces" / name)
    space = sql.Identifier(name)
    try:
        mount_tmpfs(ts.directory, size)
        postgres._chown(ts.directory)  # noqa: SLF001 - the cluster's OS user must own LOCATION
        with psycopg.connect(postgres.dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(
                space, sql.Literal(str(ts.directory))))
            ts.created = True
            for table in tables:
                conn.execute(sql.SQL("ALTER TABLE {} SET TABLESPACE {}").format(
                    sql.Identifier(schema, table), space))
                indexes = conn.execute(
                    "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                    "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
                    "WHERE n.nspname = %s AND t.relname = %s", (schema, table)).fetchall()
                for (index,) in indexes:
                    conn.execute(sql.SQL("ALTER INDEX {} SET TABLESPACE {}").format(
                        sql.Identifier(schema, index), space))
    except psycopg.Error as exc:
        drop_tmpfs_tablespace(postgres, ts, force=True)
        raise InfrastructureError("postgres", f"cannot move {schema}.{{{','.join(tables)}}} onto a tmpfs "
                                  f"tablespace: {str(exc).strip()[:300]}") from None
    except BaseException:
        drop_tmpfs_tablespace(postgres, ts, force=True)
        raise
    return ts


def drop_tmpfs_tablespace(postgres: PostgresServer, ts: TmpfsTablespace, *, force: bool = False) -> list[str]:
    """Best effort: move every relation in ``ts`` back to pg_default, DROP TABLESPACE, unmount.

    The tmpfs is unmounted only once the tablespace is gone (or with ``force``:
    a last attempt, after the schema was dropped), so tables are never left on
    a vanished directory by a first try that failed. Returns what went wrong.
    """
    import psycopg
    from psycopg import sql

    problems: list[str] = []
    space = sql.Identifier(ts.name)
    if ts.created:
        try:
            with psycopg.connect(postgres.dsn, autocommit=True, connect_timeout=10) as conn:
                for kind in ("TABLE", "INDEX"):
                    conn.execute(sql.SQL("ALTER {} ALL IN TABLESPACE {} SET TABLESPACE pg_default").format(
                        sql.SQL(kind), space))
                conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(space))
            ts.created = False
        except psycopg.Error as exc:
            problems.append(f"tablespace {ts.name}: {type(exc).__name__}: {str(exc).strip()[:200]}")
    if not ts.created or force:
        unmount_tmpfs(ts.directory)
        try:
            ts.directory.rmdir()
        except OSError:
            pass
    return problems


def is_tmpfs(directory: Path) -> bool:
    """Whether ``directory`` is the mount point of a tmpfs."""
    try:
        target = os.path.realpath(directory)
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1] == target and parts[2] == "tmpfs":
                return True
    except OSError:
        pass
    return False


def mount_tmpfs(directory: Path, size: str = "4m") -> None:
    """Mount a small tmpfs at ``directory`` (root only); raises InfrastructureError when not possible."""
    directory.mkdir(parents=True, exist_ok=True)
    if is_tmpfs(directory):
        return
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise InfrastructureError("faults", f"cannot mount a tmpfs at {directory}: {proc.stderr.strip()}",
                                  hint="disk-full faults need root (mount -t tmpfs)")


def unmount_tmpfs(directory: Path) -> None:
    """Unmount a tmpfs :func:`mount_tmpfs` mounted (no-op when it is not one)."""
    if is_tmpfs(directory):
        subprocess.run(["umount", "-l", str(directory)], capture_output=True)


