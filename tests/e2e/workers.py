"""The host with a job worker beside it, as ``make run`` starts them, for browser tests whose pages submit jobs.

``jobs_server`` is the conftest's ``server`` plus one ``python -m crm_core worker`` process on the
same database, queue file and upload folder (``CRM_FILES_DIR``: the page stores an upload, the
worker reads it). The worker is stopped by its own process id at the end of the module.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from tests.e2e.conftest import CHROMIUM, ROOT, Server
from tests.factories import build_world, create_random_customer
from tests.hosting import start_host

WORKER_STARTUP_SECONDS = 60.0


@dataclass
class Worker:
    """A running ``python -m crm_core worker`` and its log."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        """Ask the consumer to stop (SIGINT: it finishes its current job); kill its group if it does not."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_worker(env: dict[str, str], log_path: Path) -> Worker:
    """Start one worker with ``env``; return once the Huey consumer says it runs."""
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "crm_core", "worker", "--workers", "1"], cwd=ROOT, env={**os.environ, **env},
        stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,  # its own group: stopped with its children
    )
    log_file.close()
    worker = Worker(process, log_path)
    deadline = time.monotonic() + WORKER_STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the worker exited with {process.returncode}:\n{worker.log()}")
        if "consumer started" in worker.log().lower():
            return worker
        time.sleep(0.1)  # poll the log again
    worker.stop()
    raise RuntimeError(f"the worker did not start within {WORKER_STARTUP_SECONDS:g} s:\n{worker.log()}")


@pytest.fixture(scope="module", name="jobs_server")
def jobs_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The ASGI host and a job worker on a fresh SQLite database, sharing its queue and upload folder."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test does) to run browser tests")
    directory = tmp_path_factory.mktemp("e2e-jobs")
    url = f"sqlite:///{directory / 'e2e.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn")
    create_random_customer(db, world.rep, name="Acme Trading", email="hello@acme.com")
    env = {"CRM_DATABASE_URL": url, "CRM_COOKIE_KEY": "e2e-cookie-key-0123456789abcdef",
           "CRM_JOBS_PATH": str(directory / "jobs.db"), "CRM_FILES_DIR": str(directory / "files"),
           "CRM_GX_DIR": str(directory / "gx"), "CRM_REDIS_URL": ""}  # this run's own queue, never a shared Redis
    try:
        host = start_host(env, directory / "server.log")
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        worker = start_worker(env, directory / "worker.log")
    except RuntimeError as error:
        host.stop()
        pytest.fail(str(error))
    yield Server(host.url, db, world)
    worker.stop()
    host.stop()
    engine.dispose()
