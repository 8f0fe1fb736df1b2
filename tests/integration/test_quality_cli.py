"""``python -m crm_core check`` and ``migrate``: one JSON object, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.cli import main
from crm_core.db import Database
from crm_core.models.checks import CheckRun
from tests.factories import build_world, create_random_customer


@pytest.fixture(autouse=True)
def private_data_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "gx"
    monkeypatch.setenv("CRM_GX_DIR", str(directory))
    monkeypatch.setenv("CRM_LANG", "en")
    return directory


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def database_url(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def test_check_prints_one_json_object_and_exits_1_naming_the_failed_expectation(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build_world(sqlite_db)
    create_random_customer(sqlite_db, world.admin, owner_id=None, name="Nobody's lead")
    code, out, _ = run_cli(
        capsys, "--database-url", database_url(sqlite_db), "check", "--suite", "db_customers", "--json"
    )
    assert code == 1
    payload = json.loads(out)
    assert payload["status"] == "failed"
    runs = {run["tenant_id"]: run for run in payload["runs"]}
    failed = runs[world.admin.tenant_id]
    assert (failed["success"], failed["failed"], failed["expectations"]) == (False, 1, 7)
    check = next(c for c in failed["checks"] if not c["success"])
    assert (check["check"], check["violations"], check["examples"][0]["label"]) == (
        "customers_without_owner", 1, "Nobody's lead"
    )
    assert runs[world.other_admin.tenant_id]["success"] is True
    with sqlite_db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(CheckRun)) == 2  # one history row per tenant


def test_check_exits_0_when_every_expectation_holds_and_writes_data_docs_on_request(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str], private_data_docs: Path
) -> None:
    world = build_world(sqlite_db)
    create_random_customer(sqlite_db, world.admin)
    code, out, _ = run_cli(capsys, "--database-url", database_url(sqlite_db), "check", "--suite", "db_integrity",
                           "--data-docs")
    assert code == 0
    assert "Every expectation held." in out
    assert list(private_data_docs.glob(f"tenant_{world.admin.tenant_id}/**/local_site/index.html"))


def test_check_with_an_unknown_suite_is_a_usage_error(sqlite_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "--database-url", database_url(sqlite_db), "check", "--suite", "db_nothing")
    assert code == 2
    assert "db_nothing" in err and "db_customers" in err


def test_migrate_json_shape_then_refusal_then_usage_errors(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = build_world(sqlite_db)
    create_random_customer(sqlite_db, world.admin, name="深圳红隼电子", custom_fields={"等级": "A", "b": [1, 2]})
    source = database_url(sqlite_db)
    target = f"sqlite:///{tmp_path / 'copy.db'}"

    code, out, _ = run_cli(capsys, "migrate", "--source", source, "--target", target, "--json", "--no-progress")
    assert code == 0
    payload = json.loads(out)
    assert payload["status"] == "ok" and payload["failures"] == []
    assert {"rows_copied", "rows_per_second", "tables", "checks", "copy_seconds", "verify_seconds"} <= set(payload)
    customers = next(table for table in payload["tables"] if table["table"] == "customers")
    assert customers["rows"] == 1
    assert payload["checks"]["failed"] == 0 and len(payload["checks"]["expectations"]) == 5

    code, out, _ = run_cli(capsys, "migrate", "--source", source, "--target", target, "--json", "--no-progress")
    assert code == 1
    assert json.loads(out)["status"] == "refused"

    code, _, err = run_cli(capsys, "migrate", "--source", source, "--target", source)
    assert code == 2 and "same database" in err
    code, _, err = run_cli(capsys, "migrate", "--source", source, "--target", target, "--batch-size", "0")
    assert code == 2
    code, _, err = run_cli(capsys, "migrate", "--source", source, "--target", "oracle://nowhere/db")
    assert code == 2 and "Not a database URL" in err


def test_migrate_prints_a_readable_report_in_chinese(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    build_world(sqlite_db)
    monkeypatch.setenv("CRM_LANG", "zh-CN")
    code, out, _ = run_cli(capsys, "migrate", "--source", database_url(sqlite_db),
                           "--target", f"sqlite:///{tmp_path / 'copy.db'}", "--no-progress")
    assert code == 0
    assert "迁移已验证：所有检查均通过。" in out
    assert "✓ 各表校验和一致" in out


def test_a_migration_target_password_reaches_the_copy_but_never_the_jobs_row_or_audit_trail(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from sqlalchemy import make_url

    from crm_core.models import AuditEvent
    from crm_core.models.jobs import Job
    from tests.conftest import private_database

    server = os.environ.get("CRM_TEST_POSTGRES_URL")
    if not server:
        pytest.skip("CRM_TEST_POSTGRES_URL is not set: a target with a password needs a PostgreSQL server")
    build_world(sqlite_db)
    source = database_url(sqlite_db)
    with private_database(server) as empty:
        # the test server trusts local connections: the password is sent, and ignored, like a real one
        target = make_url(empty).set(password="s3cret-Pa55").render_as_string(hide_password=False)
        code, out, _ = run_cli(capsys, "migrate", "--source", source, "--target", target, "--json", "--no-progress")
        assert code == 0, out
        assert "s3cret-Pa55" not in out
    with sqlite_db.system_session("check") as session:
        job = session.scalars(select(Job).where(Job.kind == "migration")).one()
        assert job.status == "succeeded"
        assert "***" in job.params["target_url"] and "s3cret" not in json.dumps(job.params)
        audit = session.scalars(select(AuditEvent.changes).where(AuditEvent.entity == "job")).all()
        assert audit and all("s3cret" not in json.dumps(changes) for changes in audit)
