"""Imports page: upload a dirty GBK file, check it (a job), fix a value mapping, import (a job), come back, revert."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm_core.models import Customer, ImportRun
from crm_core.models.jobs import Job
from crm_core.models.quality import ImportMappingTemplate
from crm_core.services.auth import set_language
from tests.pages.conftest import AppWorld, log_in
from tests.pages.job_helpers import isolated_queue, queued_job_ids, run_queued_jobs  # noqa: F401  - the fixture

pytestmark = pytest.mark.usefixtures("isolated_queue")

DIRTY = (
    "客户名称,电话,邮箱,负责人,阶段\n"
    "深圳红隼电子,137 0000 1111,hongsun@example.cn,Rita Rep,潜客\n"
    "北京新客户,13900139000,bad-email,Rita Rep,Engaging\n"
    "上海无名,,shanghai@example.cn,Nobody,意向客户\n"
).encode("gbk")


def open_imports(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/imports.py")
    return app.run()


def upload(app, name: str, content: bytes):  # type: ignore[no-untyped-def]
    app.file_uploader(key="imports_upload").set_value((name, content, "text/csv"))
    return app.run()


def failure_reasons(app) -> list[str]:  # type: ignore[no-untyped-def]
    frames = [frame.value for frame in app.dataframe if "Reason" in frame.value.columns]
    return list(frames[0]["Reason"]) if frames else []


def texts(elements) -> str:  # type: ignore[no-untyped-def]
    """The alerts' texts without Markdown escapes."""
    return " ".join(element.value.replace("\\", "") for element in elements)


def customers_named(app_world: AppWorld, *names: str) -> int:
    with app_world.db.system_session("test") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name.in_(names))) or 0)


def run_the_job(app_world: AppWorld, app):  # type: ignore[no-untyped-def]
    """The worker runs the job the page queued; the page runs again."""
    assert len(run_queued_jobs(app_world.db)) == 1
    return app.run()


def test_a_manager_checks_a_dirty_gbk_file_and_imports_only_after_fixing_it(app_world: AppWorld) -> None:
    app = log_in(app_world.world.manager.username)
    app = upload(open_imports(app), "客户.csv", DIRTY)
    assert not app.exception
    assert "GBK/GB18030" in texts(app.caption)
    # the mapping was suggested from the Chinese headers
    first_column = next(
        box for box in app.selectbox if (box.key or "").startswith("imports_map_") and box.label == "客户名称"
    )
    assert first_column.value == "name"
    assert app.button(key="imports_commit").disabled  # nothing to import before a check
    app.button(key="imports_check").click()
    app = app.run()
    assert not app.exception
    # the check is a dry-run job for the worker; the page waits for it
    [check_id] = queued_job_ids(app_world.db)
    assert "Waiting for a worker" in app.get("progress")[0].text.replace("\\", "")
    app = run_the_job(app_world, app)
    assert "Rows that would be rejected: 2" in texts(app.error)
    reasons = failure_reasons(app)
    assert any("not a valid email address" in reason for reason in reasons)
    assert any("Owner" in reason for reason in reasons)
    assert any("Lifecycle stage must be one of" in reason for reason in reasons)
    assert any(button.key == f"imports_check_{check_id}_download" for button in app.get("download_button"))
    # all or nothing: the import button is disabled and nothing was written
    assert app.button(key="imports_commit").disabled
    assert customers_named(app_world, "深圳红隼电子", "北京新客户", "上海无名") == 0

    # map the unknown stage and import the valid rows: the old check no longer counts
    next(box for box in app.selectbox if box.label == "Engaging").set_value("intent")
    app.radio(key="imports_policy").set_value("skip-invalid")
    app = app.run()
    assert "changed since this check" in texts(app.warning)
    assert app.button(key="imports_commit").disabled
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    assert not any("Lifecycle stage" in reason for reason in failure_reasons(app))
    assert not app.button(key="imports_commit").disabled
    app.button(key="imports_commit").click()
    app = app.run()
    with app_world.db.system_session("test") as session:
        import_job = session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert import_job is not None and import_job.params["dry_run"] is False
    assert import_job.params["mapping"]["values"]["阶段"]["Engaging"] == "intent"
    app = run_the_job(app_world, app)
    assert not app.exception
    assert "1 created" in texts(app.warning) and "2 rejected" in texts(app.warning)
    assert any(button.key == f"imports_result_{import_job.id}_download" for button in app.get("download_button"))
    assert app.button(key="imports_commit").disabled  # imported once
    assert customers_named(app_world, "深圳红隼电子") == 1
    assert customers_named(app_world, "北京新客户", "上海无名") == 0


def test_a_user_who_comes_back_in_a_new_session_finds_their_import(app_world: AppWorld) -> None:
    manager = app_world.world.manager.username
    app = upload(open_imports(log_in(manager)), "clean.csv", b"name,email\nAlpha Ltd,alpha@example.com\n")
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    app.button(key="imports_commit").click()
    app.run()  # the import is queued; the browser tab closes before the worker starts it

    later = open_imports(log_in(manager))
    assert not later.exception
    offered = later.selectbox(key="imports_resume_choice")
    assert len(offered.options) == 2 and "clean.csv · import · Queued" in offered.options[0]
    later.button(key="imports_resume_open").click()
    later = later.run()
    assert "Waiting for a worker" in later.get("progress")[0].text.replace("\\", "")
    later = run_the_job(app_world, later)
    assert "Imported: 1 created" in texts(later.success)
    assert customers_named(app_world, "Alpha Ltd") == 1


def test_leaving_the_page_and_coming_back_keeps_the_checked_file_and_its_mapping(app_world: AppWorld) -> None:
    app = upload(open_imports(log_in(app_world.world.manager.username)), "客户.csv", DIRTY)
    next(box for box in app.selectbox if box.label == "Engaging").set_value("intent")
    app.radio(key="imports_policy").set_value("skip-invalid")
    app.button(key="imports_check").click()
    app = app.run()
    app.switch_page("pages/customers.py")
    app = app.run()  # the upload box and the mapping boxes are gone from this run
    app = run_the_job(app_world, open_imports(app))
    assert not app.exception
    assert "客户.csv (uploaded earlier)" in texts(app.caption)
    assert next(box for box in app.selectbox if box.label == "Engaging").value == "intent"
    assert app.radio(key="imports_policy").value == "skip-invalid"
    assert "changed since this check" not in texts(app.warning)
    assert not app.button(key="imports_commit").disabled


def test_the_history_lists_runs_and_reverts_one_as_a_job(app_world: AppWorld) -> None:
    app = upload(open_imports(log_in(app_world.world.admin.username)), "clean.csv",
                 b"name,email\nAlpha Ltd,alpha@example.com\n")
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    assert "All 1 rows pass" in texts(app.success)
    app.button(key="imports_commit").click()
    app = run_the_job(app_world, app.run())
    assert customers_named(app_world, "Alpha Ltd") == 1
    history = next(frame.value for frame in app.dataframe if "File" in frame.value.columns)
    assert list(history["File"]) == ["clean.csv"]
    next(box for box in app.checkbox if (box.key or "").startswith("imports_revert_confirm_")).check()
    app = app.run()
    next(button for button in app.button if (button.key or "").startswith("imports_revert_")).click()
    app = run_the_job(app_world, app.run())
    assert not app.exception
    assert "reverted" in texts(app.success)
    assert customers_named(app_world, "Alpha Ltd") == 0
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(ImportRun.status)).all() == ["reverted"]


def test_the_jobs_page_links_to_the_run_in_the_history(app_world: AppWorld) -> None:
    app = upload(open_imports(log_in(app_world.world.admin.username)), "clean.csv",
                 b"name,email\nAlpha Ltd,alpha@example.com\n")
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    app.button(key="imports_commit").click()
    app = run_the_job(app_world, app.run())
    with app_world.db.system_session("test") as session:
        run_id = session.scalars(select(ImportRun.id)).one()
    app.query_params["run"] = str(run_id)
    app = open_imports(app)
    assert app.selectbox(key="imports_history_run").value == run_id


def test_the_imports_page_is_for_admins_and_managers_only() -> None:
    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    def allowed(role: Role) -> bool:
        return any(spec.path == "pages/imports.py" for spec in pages_for(role))

    assert [role for role in Role if allowed(role)] == [Role.ADMIN, Role.MANAGER]


def test_dates_of_the_past_are_offered_to_admins_only(app_world: AppWorld) -> None:
    body = b"name,email,Created date\nAlpha Ltd,alpha@example.com,2016-05-01\n"
    for username, offered in ((app_world.world.manager.username, False), (app_world.world.admin.username, True)):
        app = upload(open_imports(log_in(username)), "old.csv", body)
        assert not app.exception
        created = next(box for box in app.selectbox if box.label == "Created date")
        # a manager's mapping leaves the column out (the runner would refuse it); an admin's maps it
        assert (created.value == "created_at", any("Created (history)" in option for option in created.options)) == (
            offered, offered)


def test_the_wizard_offers_the_customer_key_and_a_fallback_owner_in_chinese(
    app_world: AppWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")  # the widgets' labels read outside a run too
    world = app_world.world
    set_language(app_world.db, world.manager.username, "zh-CN")
    app = log_in(world.manager.username)
    body = f"商机名称,客户编号,负责人\n试点,ACC-1,{world.rep_other_team.username}\n".encode()
    app = upload(open_imports(app), "商机.csv", body)
    app.selectbox(key="imports_entity").set_value("opportunities")
    app = app.run()
    assert not app.exception
    # the customer column's header says external IDs; an owner column brings the choice for unknown owners
    customer_match = next(box for box in app.selectbox if (box.key or "").startswith("imports_customer_match_"))
    assert (customer_match.label, customer_match.value) == ("客户列填写的是", "external_id")
    assert customer_match.format_func("external_id") == "客户外部编号"
    unknown = app.radio(key="imports_unknown_owner")
    # a manager: no new users for unknown owners (an admin's choice); rows without a customer: refused by default
    assert (unknown.label, unknown.value, unknown.options) == (
        "负责人匹配不到用户时", "reject", ["拒绝该行", "将该行分配给……"])
    orphans = app.selectbox(key="imports_orphans")
    assert (orphans.label, orphans.value, len(orphans.options)) == ("没有客户的行", "reject", 3)
    unknown.set_value("fallback")
    app = app.run()
    fallback = app.selectbox(key="imports_fallback_owner")
    # only the people the manager may give records to: their team's, not the rep of the other team
    assert fallback.label == "备用负责人"
    assert {option.rsplit("(", 1)[1].rstrip(")") for option in fallback.options} == {
        world.manager.username, world.rep.username, world.rep_same_team.username}
    fallback.set_value(world.manager.username)
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    assert not app.exception
    with app_world.db.system_session("test") as session:
        check = session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert check is not None and check.params["fallback_owner"] == world.manager.username
    assert check.params["mapping"]["customer_match"] == "external_id"
    # the customer ID is unknown here: the check says it was looked up as an external ID, and shows it
    [failures] = [frame.value for frame in app.dataframe if "原因" in frame.value.columns]
    assert [(reason, str(values)) for reason, values in zip(failures["原因"], failures["值"], strict=True)] == [
        ("客户：没有客户的外部编号是这个值。", "ACC-1")]


def test_the_check_names_the_data_quality_checks_the_import_would_make_fail(app_world: AppWorld) -> None:
    app = log_in(app_world.world.admin.username)
    twins = ("Customer name,Owner,Email,Lifecycle stage\n"
             f"Alpha Twin,{app_world.world.rep.username},twin@example.com,customer\n").encode()
    app = upload(open_imports(app), "customers.csv", twins)
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    assert not app.exception, app.exception
    assert "If imported, 1 data-quality checks would flag records" in texts(app.warning)
    [table] = [frame.value for frame in app.dataframe if "Data-quality check" in frame.value.columns]
    assert list(table["Data-quality check"]) == ["Customers or churned customers that never bought"]
    assert (list(table["Records it would flag"]), list(table["Latest of them"])) == ([1], ["Alpha Twin · customer"])
    assert customers_named(app_world, "Alpha Twin") == 0  # a check writes nothing


def test_a_saved_mapping_comes_back_for_the_next_file_with_its_values(app_world: AppWorld) -> None:
    """Saved user mappings (issue 18): the columns, the values mapped by hand and the match keys are kept under a
    name; a later file with the same headers, in another session, gets them back by choosing it."""
    app = upload(open_imports(log_in(app_world.world.manager.username)), "客户.csv", DIRTY)
    next(box for box in app.selectbox if box.label == "Engaging").set_value("intent")
    next(box for box in app.selectbox if (box.key or "").startswith("imports_map_") and box.label == "电话").set_value(
        "")  # the phone column left out
    app = app.run()
    app.text_input(key="imports_template_name").input("纷享销客 客户")
    app.button(key="imports_save_template").click()
    app = app.run()
    assert not app.exception, app.exception
    assert "Template “纷享销客 客户” saved." in texts(app.success)

    later = ("客户名称,电话,邮箱,负责人,阶段\n广州新客,13800138000,gz@example.cn,Rita Rep,Engaging\n").encode("gbk")
    app = upload(open_imports(log_in(app_world.world.manager.username)), "客户2.csv", later)
    with app_world.db.system_session("test") as session:
        saved = session.scalars(select(ImportMappingTemplate)).one()
    assert (saved.name, saved.entity) == ("纷享销客 客户", "customers")
    app.selectbox(key="imports_template_customers").set_value(saved.id)
    app = app.run()
    assert next(box for box in app.selectbox if box.label == "Engaging").value == "intent"
    assert next(box for box in app.selectbox if (box.key or "").startswith("imports_map_")
                and box.label == "电话").value == ""
    app.button(key="imports_check").click()
    app = run_the_job(app_world, app.run())
    with app_world.db.system_session("test") as session:
        check = session.scalars(select(Job).order_by(Job.id.desc())).first()
    assert check is not None and check.params["mapping"]["values"]["阶段"] == {"Engaging": "intent"}
    assert "电话" not in check.params["mapping"]["columns"]
