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

from tests.e2e.conftest import ROOT, Server, prepare_database
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
    prepared = prepare_database(tmp_path_factory, "e2e-jobs")
    env = prepared.env
    try:
        host = start_host(env, prepared.directory / "server.log")
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        worker = start_worker(env, prepared.directory / "worker.log")
    except RuntimeError as error:
        host.stop()
        pytest.fail(str(error))
    yield Server(host.url, prepared.db, prepared.world)
    worker.stop()
    host.stop()
    prepared.engine.dispose()
