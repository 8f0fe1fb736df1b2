"""Backups of the whole database, restores, and the drill that proves a backup restores.

One file per backup, named ``kestrel-<dialect>-<UTC time>.<ext>`` and readable by its owner only:
- SQLite: the online backup API (a consistent copy while the app keeps writing), ``.sqlite3``;
- PostgreSQL: ``pg_dump --format=custom`` (restored with ``pg_restore``), ``.pgdump``;
- MariaDB/MySQL: ``mariadb-dump --single-transaction`` (restored with ``mariadb``), ``.sql``.
Passwords reach the dump tools through their environment (``PGPASSWORD``, ``MYSQL_PWD``), never
their command line (which ``ps`` shows).

``verify_backup`` is the drill: restore into a scratch database beside the source, run the
migration verifier's checks (row counts and money sums per table and tenant, key and foreign-key
checks, checksums) of the source against the restore, report how long the restore took and how
old the backup is (the data-loss window if the source were lost now), then drop the scratch.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, make_url

from crm_core.config import keep_private
from crm_core.db import make_engine
from crm_core.errors import DomainError

EXTENSIONS = {"sqlite": "sqlite3", "postgresql": "pgdump", "mysql": "sql"}
NAME = re.compile(r"^kestrel-(sqlite|postgresql|mysql)-(\d{8}T\d{6}Z)\.(sqlite3|pgdump|sql)$")
TOOL_TIMEOUT_SECONDS = 6 * 3600


class BackupRefused(DomainError):
    """A backup, restore or drill that cannot be done as asked (nothing was changed)."""

    message_key = "backup.refused"

    def __init__(self, reason_key: str, **params: object) -> None:
        super().__init__(reason_key, **params)
        self.message_key = reason_key


@dataclass(frozen=True)
class BackupFile:
    """One backup on disk."""

    path: Path
    dialect: str
    taken_at: dt.datetime  # naive UTC
    size: int
    seconds: float = 0.0


@dataclass(frozen=True)
class DrillResult:
    """What the restore drill found."""

    backup: BackupFile
    restore_seconds: float
    verify_seconds: float
    data_loss_window: dt.timedelta  # how old the backup was when drilled
    success: bool
    failures: list[str]


def _dialect(url: URL) -> str:
    name = url.get_backend_name()
    if name not in EXTENSIONS:
        raise BackupRefused("backup.unsupported", dialect=name)
    return name


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupRefused("backup.unsupported", dialect="sqlite (memory)")
    return Path(url.database)


def _tool(name: str, *alternatives: str) -> str:
    for candidate in (name, *alternatives):
        found = shutil.which(candidate)
        if found:
            return found
    raise BackupRefused("backup.tool_missing", tool=name)


def _run(command: list[str], env: dict[str, str], *, stdin: Path | None = None, stdout: Path | None = None) -> None:
    """Run a dump/restore tool; its own error text (never the password) becomes the refusal."""
    with (open(stdin, "rb") if stdin else open(os.devnull, "rb")) as given, \
            (open(stdout, "wb") if stdout else open(os.devnull, "wb")) as taken:
        done = subprocess.run(command, stdin=given, stdout=taken, stderr=subprocess.PIPE, env={**os.environ, **env},
                              timeout=TOOL_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise BackupRefused("backup.tool_failed", tool=Path(command[0]).name, reason=(reason or ["?"])[-1][:300])


def _pg_args(url: URL) -> tuple[list[str], dict[str, str]]:
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 5432}",
            f"--username={url.username or 'postgres'}"]
    return args, ({"PGPASSWORD": str(url.password)} if url.password else {})


def _maria_args(url: URL) -> tuple[list[str], dict[str, str]]:
    args = [f"--host={url.host or '127.0.0.1'}", f"--port={url.port or 3306}", f"--user={url.username or 'root'}"]
    return args, ({"MYSQL_PWD": str(url.password)} if url.password else {})


def backup_name(dialect: str, taken_at: dt.datetime) -> str:
    """``kestrel-<dialect>-<UTC time>.<ext>``: sorts by time, says what restores it."""
    return f"kestrel-{dialect}-{taken_at:%Y%m%dT%H%M%SZ}.{EXTENSIONS[dialect]}"


def read_backup(path: Path) -> BackupFile:
    """A backup file by its name; refused when the name is not one this module wrote."""
    found = NAME.match(path.name)
    if not found or not path.is_file():
        raise BackupRefused("backup.not_a_backup", path=str(path))
    taken_at = dt.datetime.strptime(found.group(2), "%Y%m%dT%H%M%SZ")
    return BackupFile(path, found.group(1), taken_at, path.stat().st_size)


def take_backup(database_url: str, directory: Path, *, now: dt.datetime | None = None) -> BackupFile:
    """Write a consistent backup of the database into ``directory``."""
    url = make_url(database_url)
    dialect = _dialect(url)
    taken_at = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None, microsecond=0)
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    target = directory / backup_name(dialect, taken_at)
    partial = target.with_name(target.name + ".partial")
    keep_private(partial)
    started = time.perf_counter()
    try:
        if dialect == "sqlite":
            with sqlite3.connect(_sqlite_path(url)) as source, sqlite3.connect(partial) as copy:
                source.backup(copy)
        elif dialect == "postgresql":
            args, env = _pg_args(url)
            _run([_tool("pg_dump"), *args, "--format=custom", "--no-owner", f"--file={partial}", str(url.database)],
                 env)
        else:
            args, env = _maria_args(url)
            _run([_tool("mariadb-dump", "mysqldump"), *args, "--single-transaction", "--routines", "--triggers",
                  "--default-character-set=utf8mb4", str(url.database)], env, stdout=partial)
        partial.replace(target)  # a backup file exists only once it is whole
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(target, dialect, taken_at, target.stat().st_size, time.perf_counter() - started)


def list_backups(directory: Path) -> list[BackupFile]:
    """The backups in ``directory``, newest first."""
    if not directory.is_dir():
        return []
    found = [read_backup(path) for path in directory.iterdir() if NAME.match(path.name)]
    return sorted(found, key=lambda backup: backup.taken_at, reverse=True)


def prune_backups(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups; returns what was deleted."""
    if keep < 1:
        raise BackupRefused("backup.keep_at_least_one")
    removed = [backup.path for backup in list_backups(directory)[keep:]]
    for path in removed:
        path.unlink()
        path.with_name(path.name + ".drill.json").unlink(missing_ok=True)  # its drill record goes with it
    return removed


def _is_empty(database_url: str) -> bool:
    from sqlalchemy import inspect

    engine = make_engine(database_url)
    try:
        return not inspect(engine).get_table_names()
    finally:
        engine.dispose()


def restore_backup(backup: BackupFile, database_url: str, *, replace: bool = False) -> float:
    """Restore ``backup`` into the (empty, unless ``replace``) database at ``database_url``; returns seconds."""
    url = make_url(database_url)
    dialect = _dialect(url)
    if dialect != backup.dialect:
        raise BackupRefused("backup.wrong_dialect", backup=backup.dialect, target=dialect)
    if dialect == "sqlite" and not _sqlite_path(url).exists():
        keep_private(_sqlite_path(url))
    if not replace and not _is_empty(database_url):
        raise BackupRefused("backup.target_not_empty")
    started = time.perf_counter()
    if dialect == "sqlite":
        with sqlite3.connect(backup.path) as source, sqlite3.connect(_sqlite_path(url)) as target:
            source.backup(target)
    elif dialect == "postgresql":
        args, env = _pg_args(url)
        clean = ["--clean", "--if-exists"] if replace else []
        _run([_tool("pg_restore"), *args, "--no-owner", "--exit-on-error", *clean, f"--dbname={url.database}",
              str(backup.path)], env)
    else:
        args, env = _maria_args(url)
        _run([_tool("mariadb", "mysql"), *args, "--default-character-set=utf8mb4", str(url.database)], env,
             stdin=backup.path)
    return time.perf_counter() - started


@contextmanager
def scratch_database(database_url: str, *, prefix: str = "kestrel_drill") -> Iterator[str]:
    """An empty database of the same kind beside the source (a temporary file for SQLite), dropped afterwards.

    Its name is ``prefix`` and a random suffix, so that several users of one server (drills,
    test runs) never drop each other's databases.
    """
    url = make_url(database_url)
    dialect = _dialect(url)
    if dialect == "sqlite":
        path = _sqlite_path(url).with_name(f".kestrel-drill-{secrets.token_hex(4)}.sqlite3")
        try:
            yield url.set(database=str(path)).render_as_string(hide_password=False)
        finally:
            for leftover in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
                leftover.unlink(missing_ok=True)
        return
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = make_engine(url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT")
    quote = "`" if dialect == "mysql" else '"'
    suffix = " CHARACTER SET utf8mb4" if dialect == "mysql" else ""
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}{suffix}")
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                if dialect == "postgresql":
                    connection.exec_driver_sql(
                        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                connection.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote}{name}{quote}")
    finally:
        admin.dispose()


def verify_backup(backup: BackupFile, source_url: str, *, now: dt.datetime | None = None) -> DrillResult:
    """The drill: restore into a scratch database and check it against the source with the migration checks.

    Run it right after the backup (the nightly job does): the source has not moved on yet, so
    every figure must agree. Later, a figure that differs is the data written since.
    """
    from crm_core.migration import digests_like_target, verify

    with scratch_database(source_url) as scratch_url:
        restore_seconds = restore_backup(backup, scratch_url)
        source, restored = make_engine(source_url), make_engine(scratch_url)
        try:
            verification = verify(source, restored, source_digests=digests_like_target(source, restored))
        finally:
            source.dispose()
            restored.dispose()
    window = (now or dt.datetime.now(dt.UTC)).replace(tzinfo=None) - backup.taken_at
    failures = [f"{figure.check} {figure.table}: {figure.expected} ≠ {figure.actual}"
                for figure in verification.failures][:20]
    return DrillResult(backup, restore_seconds, verification.seconds, window, verification.success, failures)
