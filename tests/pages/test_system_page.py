"""System page (admins): version and schema, the queue, the last day's failures with references, the backup drill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crm_core import __version__
from crm_core.backup import take_backup
from crm_core.errors import AccessDenied
from crm_core.models import utcnow
from crm_core.models.jobs import Job, JobStatus
from crm_core.queries.system import drill_record, system_status
from crm_core.schema import head_revision
from tests.pages.conftest import AppWorld, log_in


def test_an_admin_sees_schema_queue_failures_and_backups(app_world: AppWorld, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_BACKUP_DIR", str(tmp_path / "backups"))
    with app_world.db.system_transaction("test") as session:
        tenant = app_world.world.admin.tenant_id
        session.add_all([
            Job(tenant_id=tenant, kind="import", status=JobStatus.QUEUED.value),
            Job(tenant_id=tenant, kind="quality_check", status=JobStatus.FAILED.value, finished_at=utcnow(),
                error_key="jobs.error.unexpected", error_detail="1a2b3c4d"),
        ])
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/system.py").run()
    assert not app.exception
    assert [m.value for m in app.metric][:2] == [__version__, head_revision()]
    shown = str([frame.value for frame in app.dataframe])
    assert "1a2b3c4d" in shown  # the reference the user quoted
    assert any("No backup found" in w.value for w in app.warning)

    made = take_backup(app_world.url, tmp_path / "backups")
    drill_record(made).write_text(json.dumps({"verified": True, "restore_seconds": 0.1, "verify_seconds": 0.2}))
    app.switch_page("pages/system.py").run()
    assert any("Restore drill passed" in s.value for s in app.success)


def test_only_an_admin_may_read_it(app_world: AppWorld, tmp_path: Path) -> None:
    with app_world.db.session(app_world.world.rep) as session, pytest.raises(AccessDenied):
        system_status(session, tmp_path)
    with app_world.db.session(app_world.world.admin) as session:
        status = system_status(session, tmp_path)
    assert status.schema_current and status.last_backup is None


def test_recent_page_errors_of_the_workspace_are_listed_by_reference(app_world: AppWorld, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_core import logs
    from crm_core.incidents import log_incident

    monkeypatch.setenv("CRM_BACKUP_DIR", str(tmp_path))
    with logs.bound(tenant_id=app_world.world.admin.tenant_id):
        mine = log_incident(RuntimeError("secret detail"), where="the page http://x/customers")
    with logs.bound(tenant_id=app_world.world.admin.tenant_id + 1000):
        theirs = log_incident(RuntimeError("other workspace"), where="the page http://x/pipeline")
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/system.py").run()
    shown = str([frame.value for frame in app.dataframe])
    assert mine in shown and "RuntimeError" in shown
    assert theirs not in shown and "secret detail" not in shown
