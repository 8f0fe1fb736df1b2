"""Jobs in AppTests: a queue of the test's own, jobs run here as a worker would run them.

The page submits a job onto the queue (a SqliteHuey file in the test's folder, never Redis
or the repository's); :func:`run_queued_jobs` then runs each queued job with the worker's
own code (``execute_job``), so a test sees exactly what the worker would leave behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.jobs import queue as job_queue
from crm_core.jobs.runner import execute_job
from crm_core.models.jobs import Job, JobStatus


@pytest.fixture
def isolated_queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test's own job queue and upload folder."""
    monkeypatch.delenv("CRM_REDIS_URL", raising=False)
    monkeypatch.setenv("CRM_JOBS_PATH", str(tmp_path / "jobs.db"))
    monkeypatch.setenv("CRM_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setattr(job_queue, "_queue", None)
    yield


def queued_job_ids(db: Database) -> list[int]:
    """The ids of the jobs waiting for a worker, oldest first."""
    with db.system_session("test: queued jobs") as session:
        return list(session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED.value).order_by(Job.id)))


def run_queued_jobs(db: Database) -> list[int]:
    """Run every queued job to its end, as a worker would; returns their ids."""
    ran = queued_job_ids(db)
    for job_id in ran:
        execute_job(db, job_id)
    return ran
