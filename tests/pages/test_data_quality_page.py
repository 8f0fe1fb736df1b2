"""Data quality page: an admin runs a suite, reads the failure with its examples, sees history and Data Docs."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.models.checks import CheckRun
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, log_in
from tests.pages.job_helpers import isolated_queue, run_queued_jobs

pytestmark = pytest.mark.usefixtures("isolated_queue")
__all__ = ["isolated_queue"]  # a fixture, used through pytestmark


@pytest.fixture(autouse=True)
def private_data_docs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "gx"
    monkeypatch.setenv("CRM_GX_DIR", str(directory))
    return directory


def open_data_quality(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/data_quality.py")
    return app.run()


def test_an_admin_runs_the_customer_suite_and_sees_the_unowned_customer_named(
    app_world: AppWorld, private_data_docs: Path
) -> None:
    create_random_customer(app_world.db, app_world.world.admin, name="无人负责贸易公司", owner_id=None)
    app = open_data_quality(log_in(app_world.world.admin.username))
    assert not app.exception
    app.selectbox(key="data_quality_suite").set_value("db_customers")
    app.button[0].click().run(timeout=90)  # the form's submit button: a quality_check job is queued
    assert not app.exception
    assert any("Queued" in text.value for text in app.caption) or app.get("progress")
    assert len(run_queued_jobs(app_world.db)) == 1  # what the worker does
    app.run(timeout=90)
    assert any("1 of 7 expectations failed" in error.value for error in app.error)
    assert any("Active customers with neither an owner nor a team" in markdown.value for markdown in app.markdown)
    examples = [frame.value for frame in app.dataframe if "Record" in frame.value.columns]
    assert list(examples[0]["Record"]) == ["无人负责贸易公司"]
    with app_world.db.system_session("test") as session:
        runs = session.execute(select(CheckRun.suite, CheckRun.status, CheckRun.violations)).all()
    assert runs == [("db_customers", "failed", 1)]
    assert list(private_data_docs.glob(f"tenant_{app_world.world.admin.tenant_id}/**/index.html"))


def test_the_history_tab_lists_past_runs_and_the_docs_tab_offers_the_download(app_world: AppWorld) -> None:
    app = open_data_quality(log_in(app_world.world.admin.username))
    app.selectbox(key="data_quality_suite").set_value("db_integrity")
    app.button[0].click().run(timeout=90)
    run_queued_jobs(app_world.db)
    app.run(timeout=90)
    from validations import db_integrity

    held = f"all {len(db_integrity.expectations())} expectations held"
    assert any(held in success.value for success in app.success)
    history = [frame.value for frame in app.dataframe if "Run by" in frame.value.columns]
    assert list(history[0]["Status"]) == ["Passed"]
    assert list(history[0]["Run by"]) == [app_world.world.admin.full_name]
    assert app.get("download_button")


def test_the_page_speaks_chinese(app_world: AppWorld) -> None:
    app = log_in(app_world.world.admin.username)
    app.session_state["kestrel_lang"] = "zh-CN"
    app.session_state["kestrel_lang_chosen"] = True
    app = open_data_quality(app)
    assert not app.exception
    assert app.title[0].value == "数据质量"


def test_a_rep_cannot_open_the_page_and_the_service_refuses_a_rep(app_world: AppWorld) -> None:
    from crm_core.errors import AccessDenied
    from crm_core.quality.runs import run_suite_for_tenant

    app = log_in(app_world.world.rep.username)
    assert "Data quality" not in str(app.sidebar)
    with pytest.raises(AccessDenied):
        run_suite_for_tenant(app_world.db, app_world.world.rep, "db_customers")
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(CheckRun)) == 0
