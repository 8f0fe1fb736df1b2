"""Migration SQLite → PostgreSQL of the demo database, with verification, beside raw copies.

``python -m benchmarks migration [--source URL] [--postgres URL] [--batch-size N] [--keep]``

The source (default: the shared 1,000,000-customer ``/work/bench/crm-1m.db``) is only read:
the benchmark works on a private copy of the file, as SQLite readers may otherwise create
``-wal``/``-shm`` files next to it. The target is a private PostgreSQL database
(``crm_bench_migration_<pid>``) created here and dropped afterwards (``--keep`` keeps it).

Prints rows/s per table and overall (copy, verification, both), the target (≥ 30,000 rows/s
overall, verification included) and two raw baselines for the customers table:

* *raw read*: ``SELECT *`` through the sqlite3 module, no conversion;
* *raw copy*: those raw tuples straight into ``COPY`` of an index-free scratch table.

The ratios say what the migration pays over the floor for types, checksums, indexes and proof.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import make_url

from crm_core.db import make_engine
from crm_core.migration import migrate
from crm_core.schema import upgrade_to_head

DEFAULT_SOURCE = "sqlite:////work/bench/crm-1m.db"
DEFAULT_POSTGRES = os.environ.get("CRM_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
TARGET_ROWS_PER_SECOND = 30_000


def _private_copy(url: str) -> tuple[str, Path]:
    source = Path(url.removeprefix("sqlite:///"))
    if not source.exists():
        raise SystemExit(f"{source} does not exist (build it with: "
                         f"python -m crm_core --database-url {url} demo --customers 1000000)")
    folder = Path(tempfile.mkdtemp(prefix="bench-migration-", dir=os.environ.get("BENCH_TMP", "/tmp")))
    target = folder / source.name
    for suffix in ("", "-wal"):
        if Path(str(source) + suffix).exists():
            shutil.copyfile(str(source) + suffix, str(target) + suffix)
    return f"sqlite:///{target}", folder


def _create_database(server_url: str, name: str) -> str:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, name: str) -> None:
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    admin.dispose()


def _server_cpu_seconds(server_pid: int | None) -> float | None:
    """CPU seconds used so far by a local PostgreSQL server: the postmaster, its reaped backends, live children.

    Backends are children of the postmaster, so the CPU of those that ended is in its
    ``cutime``/``cstime``; live ones (and the auxiliary processes) are read one by one. None
    when the server is not a local process this user can inspect.
    """
    if server_pid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")

    def fields(pid: int) -> list[str]:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()

    try:
        own = fields(server_pid)
        total = sum(int(value) for value in own[11:15])  # utime stime cutime cstime
        for child in Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split():
            try:
                total += sum(int(value) for value in fields(int(child))[11:13])
            except OSError:
                continue  # ended meanwhile: now counted in the postmaster's cutime
    except OSError:
        return None
    return total / ticks


def _postmaster_pid(server_url: str) -> int | None:
    """The pid of the local postmaster serving ``server_url`` (None when it is not local or not readable)."""
    admin = make_engine(server_url)
    try:
        with admin.connect() as connection:
            directory = connection.exec_driver_sql("SHOW data_directory").scalar()
        return int(Path(str(directory), "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    except Exception:  # noqa: BLE001 - e.g. not a superuser: the figure is optional
        return None
    finally:
        admin.dispose()


def _raw_baselines(sqlite_path: str, target_url: str) -> tuple[int, float, float]:
    """(customers, seconds to read raw, seconds to read raw and COPY into an index-free scratch table)."""
    import psycopg

    connection = sqlite3.connect(sqlite_path)
    started = time.perf_counter()
    rows = connection.execute("SELECT * FROM customers ORDER BY id").fetchall()
    read_seconds = time.perf_counter() - started
    columns = [description[0] for description in connection.execute("SELECT * FROM customers LIMIT 0").description]
    connection.close()
    conninfo = make_url(target_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as target:
        target.execute('CREATE TABLE bench_raw_customers (LIKE customers INCLUDING DEFAULTS)')
        started = time.perf_counter()
        with target.cursor().copy(f"COPY bench_raw_customers ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        target.commit()
        copy_seconds = time.perf_counter() - started + read_seconds
        target.execute("DROP TABLE bench_raw_customers")
    return len(rows), read_seconds, copy_seconds


def main(argv: list[str]) -> int:
    """Run the migration benchmark and print its figures; exit 1 when the target rate is missed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks migration")
    parser.add_argument("--source", default=DEFAULT_SOURCE, help="SQLite URL of the demo database (only read)")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="URL of a PostgreSQL server (any database)")
    parser.add_argument("--batch-size", type=int, default=20_000)
    parser.add_argument("--keep", action="store_true", help="keep the target database and the private copy")
    args = parser.parse_args(argv)

    source_url, folder = _private_copy(args.source)
    copy_engine = make_engine(source_url)
    before, after = upgrade_to_head(copy_engine)  # the private copy only: migrate wants a source at head
    copy_engine.dispose()
    if before != after:
        print(f"(private copy upgraded from schema {before} to {after})")
    name = f"crm_bench_migration_{os.getpid()}"
    target_url = _create_database(args.postgres, name)
    load_before = os.getloadavg()
    server_pid = _postmaster_pid(args.postgres)
    try:
        server_before = _server_cpu_seconds(server_pid)
        cpu_before = os.times()
        started = time.perf_counter()
        report = migrate(source_url, target_url, batch_size=args.batch_size)
        wall = time.perf_counter() - started
        cpu_after = os.times()
        server_after = _server_cpu_seconds(server_pid)
        payload = report.as_dict()
        print(f"Migration {safe(args.source)} → PostgreSQL ({name}), batch {args.batch_size:,}")
        print(f"{'table':<28}{'rows':>12}{'seconds':>10}{'rows/s':>12}")
        for table in report.tables:
            if table.rows:
                print(f"{table.table:<28}{table.rows:>12,}{table.seconds:>10.1f}{table.rows_per_second:>12,.0f}")
        copy_rate = report.rows / report.copy_seconds if report.copy_seconds else 0.0
        overall = report.rows / wall if wall else 0.0
        print(f"{'copy':<28}{report.rows:>12,}{report.copy_seconds:>10.1f}{copy_rate:>12,.0f}")
        print(f"{'verification':<28}{len(report.verification.figures):>12,}{report.verification.seconds:>10.1f}"
              f"{'(figures)':>12}")
        print(f"{'index/FK restore, waited':<28}{'':>12}{payload.get('restore_seconds', 0.0):>10.1f}")
        print(f"{'total (copy + verification)':<28}{report.rows:>12,}{wall:>10.1f}{overall:>12,.0f}")
        own_cpu = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
        server_cpu = (f"{server_after - server_before:.1f} s"
                      if server_before is not None and server_after is not None else "n/a")
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"wall {wall:.1f} s · CPU of this process {own_cpu:.1f} s (user {cpu_after.user - cpu_before.user:.1f}"
              f" + sys {cpu_after.system - cpu_before.system:.1f}) · PostgreSQL server CPU {server_cpu}"
              f" · peak RSS {peak_rss:,.0f} MiB")
        print(f"verification: {'every check passed' if report.success else 'FAILED'} "
              f"({payload['checks']['figures']} figures, {payload['checks']['failed']} failed)")
        for failure in payload["failures"][:20]:
            print(f"  ✗ {failure['check']} {failure['table']} tenant={failure['tenant_id']} "
                  f"column={failure['column']}: {failure['expected']} → {failure['actual']}")

        customers, raw_read, raw_copy = _raw_baselines(source_url.removeprefix("sqlite:///"), target_url)
        migrated = next((t for t in report.tables if t.table == "customers"), None)
        print(f"\ncustomers ({customers:,} rows) against raw baselines:")
        print(f"  raw sqlite3 read          {raw_read:>8.1f} s  {customers / raw_read:>12,.0f} rows/s")
        print(f"  raw read + COPY (no index){raw_copy:>8.1f} s  {customers / raw_copy:>12,.0f} rows/s")
        if migrated is not None and migrated.seconds:
            print(f"  migration (types, checksum, indexes rebuilt) {migrated.seconds:>6.1f} s  "
                  f"ratio {migrated.seconds / raw_copy:.1f}× raw copy")
        load_after = os.getloadavg()
        print(f"\nload average before/after: {load_before[0]:.1f} / {load_after[0]:.1f} on {os.cpu_count()} cores")
        met = overall >= TARGET_ROWS_PER_SECOND and report.success
        print(f"target ≥ {TARGET_ROWS_PER_SECOND:,} rows/s with verification: {'met' if met else 'NOT met'} "
              f"({overall:,.0f} rows/s)")
        return 0 if met else 1
    finally:
        if not args.keep:
            _drop_database(args.postgres, name)
            shutil.rmtree(folder, ignore_errors=True)
        else:
            print(f"kept: {target_url} and {folder}", file=sys.stderr)


def safe(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
