"""The job kinds' contracts (parameters in, result out) and the uploads they read — on every database.

Each job is recorded and run in this process with :func:`execute_job` (the code a worker
runs), inside the savepoint fixture; the worker process itself is tested in ``test_jobs.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from huey import Huey, MemoryHuey
from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.importing.runner import quarantined_rows_csv, read_csv_rows
from crm_core.jobs import queue as job_queue
from crm_core.jobs.runner import execute_job
from crm_core.jobs.service import submit_job
from crm_core.jobs.uploads import RETENTION, discard_upload, remove_old_uploads, resolve_upload, store_upload
from crm_core.models import Customer, ImportRun, Tenant
from crm_core.models.checks import CheckRun
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView, get_job
from tests.factories import World, build_world

CLEAN = "Company Name,Email,Lifecycle Stage\nAlpha Ltd,alpha@example.com,Prospect\nBeta Ltd,beta@example.com,Intent\n"
DIRTY = CLEAN + "Gamma Ltd,not-an-email,Prospect\n,delta@example.com,Prospect\n"


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def queue() -> Huey:
    return MemoryHuey("kestrel-test-kinds")


@pytest.fixture(autouse=True)
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CRM_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("CRM_GX_DIR", str(tmp_path / "gx"))
    return tmp_path / "files"


def run(db: Database, actor: Actor, queue: Huey, kind: str, params: dict[str, object]) -> JobView:
    """Record a job as ``actor``, run it here as a worker would, and read it back."""
    job_id = submit_job(db, actor, kind, params, queue=queue)
    execute_job(db, job_id, queue=queue)
    with db.session(actor) as session:
        return get_job(session, job_id, queue=queue)


def customers(db: Database, tenant_id: int) -> int:
    with db.system_session("test: customers") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id))
                   or 0)


def runs(db: Database, tenant_id: int) -> int:
    with db.system_session("test: runs") as session:
        return int(session.scalar(select(func.count()).select_from(ImportRun).where(ImportRun.tenant_id == tenant_id))
                   or 0)


def upload(actor: Actor, body: str, name: str = "people.csv") -> Path:
    return store_upload(actor.tenant_id, name, body.encode())


def test_a_dry_run_reports_on_the_file_writes_nothing_and_keeps_the_upload_for_the_import(
    db: Database, world: World, queue: Huey
) -> None:
    path = upload(world.admin, DIRTY)
    view = run(db, world.admin, queue, "import", {"entity": "customers", "file_path": str(path), "dry_run": True})
    assert view.status == JobStatus.SUCCEEDED, view.error_key
    report = view.result
    assert (report["dry_run"], report["status"], report["rows_read"], report["rejected"]) == (True, "invalid", 4, 2)
    assert {failure["column"] for failure in report["failures"]} >= {"email", "name"}
    assert (customers(db, world.admin.tenant_id), runs(db, world.admin.tenant_id)) == (0, 0)
    assert path.exists()
    rejected = read_csv_rows(Path(report["rejected_csv_path"]).read_bytes())
    assert rejected[0][-1] == "Reason" and [row[0] for row in rejected[1:]] == ["4", "5"]


def test_an_import_job_returns_the_cli_json_and_the_run_whose_rejected_rows_can_be_downloaded(
    db: Database, world: World, queue: Huey
) -> None:
    path = upload(world.manager, DIRTY)
    mapping = {"columns": {"Company Name": "name", "Email": "email", "Lifecycle Stage": "lifecycle_stage"},
               "values": {"Lifecycle Stage": {"Prospect": "prospect", "Intent": "intent"}}, "match_on": ["email"]}
    view = run(db, world.manager, queue, "import", {
        "entity": "customers", "file_path": str(path.relative_to(path.parents[3])), "file_name": "people.csv",
        "mapping": mapping, "policy": "skip-invalid",
    })
    result = view.result
    assert (view.status, result["status"], result["created"], result["rejected"]) == (
        JobStatus.SUCCEEDED, "partial", 2, 2)
    assert {"rows_read", "updated", "skipped", "run_id", "failures", "file_name", "entity"} <= set(result)
    assert result["rejected_rows_run_id"] == result["run_id"]
    rows = read_csv_rows(quarantined_rows_csv(db, world.manager, result["rejected_rows_run_id"], "en"))
    assert len(rows) == 1 + 2
    assert customers(db, world.admin.tenant_id) == 2
    assert not path.exists()  # a finished import's upload is deleted


def test_an_unreadable_file_is_a_rejected_result_and_a_bad_mapping_fails_the_job(
    db: Database, world: World, queue: Huey
) -> None:
    empty = upload(world.admin, "Company Name,Email\n")
    refused = run(db, world.admin, queue, "import", {"entity": "customers", "file_path": str(empty)})
    assert (refused.status, refused.result["status"], refused.result["error"]) == (
        JobStatus.SUCCEEDED, "rejected", "imports.error.no_rows")
    assert empty.exists()  # kept: the user may fix the file's options and try again

    clean = upload(world.admin, CLEAN)
    bad = run(db, world.admin, queue, "import", {"entity": "customers", "file_path": str(clean),
                                                  "mapping": {"columns": {"Nope": "name"}}})
    assert (bad.status, bad.error_key) == (JobStatus.FAILED, "imports.error.unknown_column")
    assert clean.exists()  # kept for Retry


@pytest.mark.parametrize("where", ["outside", "other_tenant", "missing"])
def test_an_import_reads_only_its_tenants_uploads(
    db: Database, world: World, queue: Huey, tmp_path: Path, where: str
) -> None:
    elsewhere = tmp_path / "secret.csv"
    elsewhere.write_text(CLEAN)
    file_path = {
        "outside": str(elsewhere),
        "other_tenant": str(upload(world.other_admin, CLEAN)),
        "missing": str(upload(world.admin, CLEAN).with_name("gone.csv")),
    }[where]
    view = run(db, world.admin, queue, "import", {"entity": "customers", "file_path": file_path})
    expected = "jobs.error.upload_missing" if where == "missing" else "jobs.error.upload_outside"
    assert (view.status, view.error_key) == (JobStatus.FAILED, expected)
    assert customers(db, world.admin.tenant_id) == 0
    with pytest.raises(ImportNotAllowed):
        resolve_upload(world.admin.tenant_id, "../" * 8 + "etc/passwd")


def test_old_uploads_go_unless_a_waiting_job_needs_them(db: Database, world: World, queue: Huey) -> None:
    tenant_id = world.admin.tenant_id
    old_unused, old_waiting, recent = (upload(world.admin, CLEAN, f"{n}.csv") for n in ("a", "b", "c"))
    long_ago = time.time() - RETENTION.total_seconds() - 60
    for path in (old_unused, old_waiting):
        os.utime(path, (long_ago, long_ago))
    waiting = submit_job(db, world.admin, "import", {"entity": "customers", "file_path": str(old_waiting)},
                         queue=queue)
    with db.system_session("test: cleanup") as session:
        assert remove_old_uploads(session, tenant_id) == 1
        assert (old_unused.exists(), old_waiting.exists(), recent.exists()) == (False, True, True)
        assert not discard_upload(session, tenant_id, old_waiting, job_id=waiting + 1)  # the waiting job needs it
        assert discard_upload(session, tenant_id, old_waiting, job_id=waiting)
    assert not old_waiting.parent.exists()
    assert store_upload(tenant_id, "../../etc/pass wd;.csv", b"x").name == "pass wd_.csv"


def test_periodic_kinds_run_for_the_jobs_tenant_and_return_their_results(
    db: Database, world: World, queue: Huey
) -> None:
    check = run(db, world.admin, queue, "quality_check", {"suites": ["db_integrity"], "data_docs": False})
    assert check.status == JobStatus.SUCCEEDED, check.error_key
    assert (check.result["status"], [run["tenant_id"] for run in check.result["runs"]]) == (
        "passed", [world.admin.tenant_id])
    with db.system_session("test: check runs") as session:
        recorded = list(session.scalars(select(CheckRun.id).where(CheckRun.tenant_id == world.admin.tenant_id)))
    assert recorded == check.result["run_ids"]

    scores = run(db, world.admin, queue, "score_training", {"scorer": "deal_win"})
    assert scores.status == JobStatus.SUCCEEDED, scores.error_key
    assert [(item["action"], item["version"]) for item in scores.result["results"]] == [("train", 1), ("apply", 1)]

    snapshot = run(db, world.admin, queue, "segment_snapshot", {})
    assert (snapshot.status, snapshot.result["counted"], snapshot.done) == (JobStatus.SUCCEEDED, 0, 0)

    wrong = run(db, world.admin, queue, "score_training", {"scorer": "nope"})
    assert (wrong.status, wrong.error_key) == (JobStatus.FAILED, "error.validation_failed")


def test_a_job_cancelled_before_a_worker_reaches_it_never_runs(db: Database, world: World, queue: Huey) -> None:
    job_id = submit_job(db, world.admin, "segment_snapshot", {}, queue=queue)
    job_queue.request_cancel(job_id, queue)  # as cancel_job does while SQLite's write lock is taken
    assert execute_job(db, job_id, queue=queue) == JobStatus.CANCELLED
    with db.session(world.admin) as session:
        view = get_job(session, job_id, queue=queue)
    assert (view.status, view.started_at, view.cancel_requested) == (JobStatus.CANCELLED, None, False)
    assert not job_queue.cancel_requested(job_id, queue)  # the request is forgotten with the job


@pytest.mark.parametrize(("kind", "params"), [("demo_load", {"customers": 5}),
                                              ("migration", {"target_url": "sqlite:///never-written.db"})])
def test_a_tenants_admin_cannot_start_whole_database_work_while_other_tenants_share_the_database(
    db: Database, world: World, queue: Huey, kind: str, params: dict[str, object]
) -> None:
    view = run(db, world.admin, queue, kind, params)
    assert (view.status, view.error_key) == (JobStatus.FAILED, "jobs.error.whole_database")
    with db.system_session("test: tenants") as session:
        assert session.scalar(select(func.count()).select_from(Tenant)) == 2  # no demo tenant appeared
    assert not Path("never-written.db").exists()
