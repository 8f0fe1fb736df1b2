"""`make cluster` (scripts/cluster.sh) on free ports: log in through nginx, kill the replica serving the
session by its pid, reload, and the user is still logged in — on the other replica, by the signed cookie.
Then Ctrl-C (SIGINT) stops everything the script started.

Runs when nginx, Redis (``CRM_TEST_REDIS_URL``), PostgreSQL (``CRM_TEST_POSTGRES_URL``) and Chromium are
present (``.ci/run`` provides them all); skips with the reason otherwise. The cluster gets a PostgreSQL
database, a Redis queue name and a run directory of its own, all removed afterwards.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from crm_core.db import Database, make_engine
from tests.e2e.conftest import CHROMIUM, ROOT, Server, log_in
from tests.factories import build_world
from tests.hosting import free_port
from tests.integration.test_jobs import redis_url_for_tests

pytestmark = pytest.mark.e2e

STARTUP_SECONDS = 180.0  # migrating a new PostgreSQL database and starting four Python processes


def wait_for(condition: Callable[[], Any], what: str, timeout: float, log: Path) -> Any:
    """Poll ``condition`` until it returns something true; fail with the cluster's log after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.1)  # poll again
    pytest.fail(f"{what} within {timeout:g} s; the cluster said:\n{log.read_text(errors='replace')[-6000:]}")


@dataclass
class Cluster:
    script: subprocess.Popen[bytes]
    url: str
    run_dir: Path
    log: Path
    database_url: str

    def replicas(self) -> dict[int, int]:
        """port → pid of each app replica (RUN_DIR/replicas)."""
        lines = (self.run_dir / "replicas").read_text().split()
        return {int(port): int(pid) for port, pid in zip(lines[::2], lines[1::2], strict=True)}

    def log_lines(self) -> list[str]:
        return (self.run_dir / "nginx-access.log").read_text().splitlines()

    def upstreams_of(self, route: str, since: int = 0) -> list[int]:
        """The replica ports that answered the plain requests of ``route`` (from line ``since`` of nginx's
        log), in order: the last upstream tried each time, for answers below 500. Websockets are left out:
        nginx logs one when it closes, long after it was routed. So are the 5xx of requests cut off when a
        replica died: they say where a request was, not where nginx routes the browser now."""
        pattern = re.compile(rf"route={re.escape(route)} upstream=(?:\S+, )*127\.0\.0\.1:(\d+) (\d+) \"(\S+ \S+)")
        return [int(found.group(1)) for line in self.log_lines()[since:]
                if (found := pattern.search(line)) and int(found.group(2)) < 500
                and not found.group(3).endswith("/_stcore/stream")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (Debian: apt-get install -y nginx; .ci/run does): no cluster to test")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test does) to run browser tests")
    postgres = os.environ.get("CRM_TEST_POSTGRES_URL")
    if not postgres:
        pytest.skip("CRM_TEST_POSTGRES_URL is not set: the cluster runs on PostgreSQL")
    redis_url = redis_url_for_tests()
    name = f"kestrel_cluster_{secrets.token_hex(4)}"
    database_url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
    directory = tmp_path_factory.mktemp("cluster")
    log = directory / "cluster.log"
    env = {**os.environ, "RUN_DIR": str(directory / "run"), "CRM_DATABASE_URL": database_url,
           "CRM_REDIS_URL": redis_url, "CRM_JOBS_QUEUE": name, "DEMO": "0", "PORT": str(free_port()),
           "APP_PORTS": f"{free_port()} {free_port()}", "CRM_COOKIE_KEY": "cluster-cookie-key-0123456789abcdef",
           "CRM_CSAT_KEY": "cluster-csat-key-0123456789abcdef",
           "CRM_FILES_DIR": str(directory / "files"), "CRM_GX_DIR": str(directory / "gx"),
           "CRM_ADMIN_PASSWORD": "Cluster-admin-1", "NGINX": nginx, "BIN": str(Path(sys.executable).parent)}
    with log.open("wb") as output:
        script = subprocess.Popen(["bash", str(ROOT / "scripts" / "cluster.sh")], cwd=ROOT, env=env,
                                  stdout=output, stderr=subprocess.STDOUT)
    try:
        def started() -> str | None:
            if script.poll() is not None:
                pytest.fail(f"cluster.sh exited with {script.returncode}:\n{log.read_text(errors='replace')}")
            found = re.search(r"Kestrel CRM on (http://\S+)", log.read_text(errors="replace"))
            return found.group(1) if found else None

        url = wait_for(started, "the cluster did not come up", STARTUP_SECONDS, log)
        yield Cluster(script, url, directory / "run", log, database_url)
    finally:
        if script.poll() is None:
            script.send_signal(signal.SIGINT)
            script.wait(timeout=60)
        engine = create_engine(make_url(postgres), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()
        client = Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)
        client.close()


def test_a_logged_in_user_survives_the_death_of_their_replica(cluster: Cluster, browser: Any) -> None:
    db = Database(make_engine(cluster.database_url))
    world = build_world(db)  # users with the test password, in the cluster's own database
    db.engine.dispose()
    context = browser.new_context()
    page = context.new_page()
    log_in(page, Server(cluster.url, db, world), world.rep.username)  # through nginx

    route = next(c["value"] for c in context.cookies() if c["name"] == "kestrel_route")
    serving = cluster.upstreams_of(route)
    assert serving and len(set(serving)) == 1, "nginx kept the browser on one replica"
    replicas = cluster.replicas()
    assert len(replicas) == 2
    dead_port = serving[-1]
    os.kill(replicas[dead_port], signal.SIGKILL)
    wait_for(lambda: f"(pid {replicas[dead_port]}) ended" in cluster.log.read_text(errors="replace"),
             "cluster.sh did not notice the dead replica", 30, cluster.log)

    # Count from here, not from the login: the page may still have fetched from the replica after the
    # login showed (its last scripts and pings), and those lines land in the log before the kill.
    before_reload = len(cluster.log_lines())
    page.reload()
    page.get_by_role("button", name="Log out").wait_for(timeout=45_000)  # logged in again by the signed cookie
    after = cluster.upstreams_of(route, since=before_reload)
    (other_port,) = set(replicas) - {dead_port}
    assert after and set(after) == {other_port}, f"after the reload nginx sent {after}, not only {other_port}"
    context.close()

    assert cluster.script.poll() is None, "the cluster goes on with one replica"
    cluster.script.send_signal(signal.SIGINT)  # Ctrl-C
    assert cluster.script.wait(timeout=60) == 130
    for pid in replicas.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    nginx_pid = (cluster.run_dir / "nginx.pid")
    assert not nginx_pid.exists(), "nginx stopped (it removes its pid file on a clean exit)"
