"""Data quality page: an admin runs a suite, reads the failure with its examples, sees history and Data Docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.i18n import t as translate
from crm_core.models.checks import CheckRun
from crm_ui.text import plain_line
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


@pytest.mark.parametrize(("language", "examples_title", "check_fact", "button"), [
    ("en", "Record", "Status: ❌ · Rows: 1 · Examples: #", "Show its checks"),
    ("zh-CN", "记录", "状态：❌ · 行数：1 · 示例：#", "查看各项检查"),
])
def test_on_a_phone_a_runs_failure_its_examples_and_its_checks_are_cards(
    app_world: AppWorld, language: str, examples_title: str, check_fact: str, button: str
) -> None:
    """A run's failure: its examples (the records breaking the check) and every check become cards, each
    headed by what it names, as text; the wide tables stay. A past run's card shows its checks."""
    from crm_core.quality.runs import run_suite_for_tenant

    admin = app_world.world.admin
    older = run_suite_for_tenant(app_world.db, admin, "db_integrity", data_docs=False).run_id
    name = "Unowned **BOLD** [Click](http://phish.example)"
    customer_id = create_random_customer(app_world.db, admin, name=name, owner_id=None)
    app = open_data_quality(log_in(admin.username))
    app.selectbox(key="data_quality_suite").set_value("db_customers")
    app.button[0].click().run(timeout=90)
    run_queued_jobs(app_world.db)
    # the run's result in a fresh session reading ``language`` (the page follows the session's job); one
    # run only: AppTest formats the page's pickers outside the run, in English, on the next
    job_id = app.session_state["data_quality_job_id"]
    app = log_in(admin.username)
    app.session_state["kestrel_lang"] = language
    app.session_state["data_quality_job_id"] = job_id
    app = open_data_quality(app)
    assert not app.exception
    examples = [frame.value for frame in app.dataframe if examples_title in frame.value.columns]
    assert list(examples[0][examples_title]) == [name]  # the wide table
    titles = [markdown.value for markdown in app.markdown]
    assert f"**{plain_line(name)}**" in titles  # the example's card: the record's name as text
    facts = [re.sub(r"\\(.)", r"\1", caption.value) for caption in app.caption]
    assert f"ID: {customer_id}" in facts or f"ID：{customer_id}" in facts
    assert any(fact.startswith(check_fact) for fact in facts)  # the failed check's card, headed by its name
    assert f"**{plain_line(translate('quality.check.customers_without_owner', language))}**" in titles

    # History: each past run is a card whose button shows that run's checks below
    pick = app.button(key=f"quality_history_pick_{older}")
    assert pick.label == button
    if language == "en":
        pick.click().run(timeout=90)
        assert app.selectbox(key="data_quality_history_run").value == older
