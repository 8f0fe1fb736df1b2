"""PostgreSQL through PgBouncer in transaction mode (issue 15: statements a transaction pooler can carry).

A real PgBouncer (Debian's package) in front of a private PostgreSQL database, ``pool_mode = transaction``: each
transaction may run on another server connection, so nothing may outlive a transaction on the server — psycopg's
automatic server-side prepared statements included (decision 0059). Skips, saying why, without PostgreSQL or
pgbouncer.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from crm_core.db import Database, make_engine
from crm_core.queries.customers import CustomerFilters, list_customers
from crm_core.services.customers import CustomerInput, create_customer
from tests.conftest import live_database
from tests.factories import build_world
from tests.hosting import free_port

PGBOUNCER = Path("/usr/sbin/pgbouncer")


@pytest.fixture(scope="module")
def bouncer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Database]]:
    """PgBouncer's URL (transaction mode, two server connections) and the same database reached directly."""
    if not PGBOUNCER.exists():
        pytest.skip("pgbouncer is not installed (apt-get install pgbouncer): the transaction-pooler test skips")
    with live_database("postgresql", tmp_path_factory, "pgbouncer") as direct:
        url = direct.engine.url
        # PgBouncer refuses to run as root: as root it is started as the postgres user, who must read its files
        directory = Path(tempfile.mkdtemp(prefix="kestrel-pgbouncer-"))
        directory.chmod(0o755)
        port = free_port()
        (directory / "userlist.txt").write_text(f'"{url.username}" ""\n')
        (directory / "pgbouncer.ini").write_text(
            f"[databases]\nkestrel = host={url.host} port={url.port or 5432} dbname={url.database} "
            f"user={url.username}\n"
            f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\nauth_type = trust\n"
            f"auth_file = {directory / 'userlist.txt'}\npool_mode = transaction\ndefault_pool_size = 2\n"
            "max_client_conn = 100\nignore_startup_parameters = extra_float_digits,options\n")
        for path in directory.iterdir():
            path.chmod(0o644)
        command = [str(PGBOUNCER), *(["-u", "postgres"] if os.geteuid() == 0 else []), str(directory / "pgbouncer.ini")]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
                    pytest.fail(f"pgbouncer did not start: {stderr[-1000:]}")
                time.sleep(0.1)
        try:
            yield f"postgresql+psycopg://{url.username}@127.0.0.1:{port}/kestrel", direct
        finally:
            process.terminate()
            process.wait(timeout=20)


def run_in_turns(engine: Engine, statement: str, times: int) -> None:
    """``statement`` ``times`` times, each in a transaction of its own, on one pooled client connection."""
    with engine.connect() as connection:
        for _ in range(times):
            with connection.begin():
                connection.execute(text(statement)).all()


def test_psycopgs_own_prepared_statements_break_behind_a_transaction_pooler(
        bouncer: tuple[str, Database], monkeypatch: pytest.MonkeyPatch) -> None:
    """Why the setting exists: two clients each prepare their sixth statement as ``_pg3_0`` on the server
    connection the pooler lends both of them in turn."""
    monkeypatch.delenv("CRM_DATABASE_POOLER", raising=False)
    url, _ = bouncer
    first, second = make_engine(url), make_engine(url)
    try:
        run_in_turns(first, "SELECT count(*) FROM customers", 6)
        with pytest.raises(Exception, match="prepared statement"):
            run_in_turns(second, "SELECT count(*) FROM users", 6)
    finally:
        first.dispose()
        second.dispose()


def test_with_the_pooler_setting_the_app_writes_and_reads_through_pgbouncer(
        bouncer: tuple[str, Database], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_DATABASE_POOLER", "transaction")
    url, direct = bouncer
    world = build_world(direct)
    pooled = Database(make_engine(url, pool_size=6))
    try:
        def work(index: int) -> int:  # a rep's day in small transactions, on six clients over two server connections
            created = 0
            for turn in range(8):
                create_customer(pooled, world.rep, CustomerInput(name=f"Pooled {index}-{turn} 连接池"))
                created += 1
                with pooled.session(world.rep) as session:
                    list_customers(session, filters=CustomerFilters(search="Pooled"), per_page=50)
            return created

        with ThreadPoolExecutor(max_workers=6) as pool:
            assert sum(pool.map(work, range(6))) == 48
        with direct.session(world.rep) as session:
            page = list_customers(session, filters=CustomerFilters(search="连接池"), per_page=100)
        assert len(page.items) == 48
    finally:
        pooled.engine.dispose()
