"""Imports page: upload a dirty GBK file, see the failing checks, fix a value mapping, import, revert."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_core.models import Customer, ImportRun
from tests.pages.conftest import AppWorld, log_in

DIRTY = (
    "客户名称,电话,邮箱,负责人,阶段\n"
    "深圳红隼电子,137 0000 1111,hongsun@example.cn,Rita Rep,潜客\n"
    "北京新客户,13900139000,bad-email,Rita Rep,Engaging\n"
    "上海无名,,shanghai@example.cn,Nobody,意向客户\n"
).encode("gbk")


def open_imports(app):  # type: ignore[no-untyped-def]
    app.switch_page("pages/imports.py")
    return app.run()


def failure_reasons(app) -> list[str]:  # type: ignore[no-untyped-def]
    frames = [frame.value for frame in app.dataframe if "Reason" in frame.value.columns]
    return list(frames[0]["Reason"]) if frames else []


def customers_named(app_world: AppWorld, *names: str) -> int:
    with app_world.db.system_session("test") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.name.in_(names))) or 0)


def test_a_manager_validates_a_dirty_gbk_file_and_imports_only_after_fixing_it(app_world: AppWorld) -> None:
    app = log_in(app_world.world.manager.username)
    app.session_state["imports_source"] = ("客户.csv", DIRTY)
    app = open_imports(app)
    assert not app.exception
    assert any("GBK/GB18030" in caption.value for caption in app.caption)
    # the mapping was suggested from the Chinese headers
    first_column = next(
        box for box in app.selectbox if (box.key or "").startswith("imports_map_") and box.label == "客户名称"
    )
    assert first_column.value == "name"
    app.button(key="imports_validate").click()
    app = app.run()
    assert not app.exception
    errors = " ".join(error.value for error in app.error)
    assert "rows would be rejected" in errors
    reasons = failure_reasons(app)
    assert any("not a valid email address" in reason for reason in reasons)
    assert any("Owner" in reason for reason in reasons)
    assert any("Lifecycle stage must be one of" in reason for reason in reasons)
    # all or nothing: the import button is disabled and nothing was written
    assert app.button(key="imports_commit").disabled
    assert customers_named(app_world, "深圳红隼电子", "北京新客户", "上海无名") == 0

    # map the unknown stage, then import the valid rows and quarantine the rest
    stage_box = next(box for box in app.selectbox if box.label == "Engaging")
    stage_box.set_value("intent")
    app.radio(key="imports_policy").set_value("skip-invalid")
    app = app.run()
    app.button(key="imports_validate").click()
    app = app.run()
    reasons = failure_reasons(app)
    assert not any("Lifecycle stage" in reason for reason in reasons)
    assert not app.button(key="imports_commit").disabled
    app.button(key="imports_commit").click()
    app = app.run()
    assert not app.exception
    assert any("1 created" in warning.value and "2 rejected" in warning.value for warning in app.warning), [
        w.value for w in [*app.warning, *app.error, *app.success]
    ]
    assert customers_named(app_world, "深圳红隼电子") == 1
    assert customers_named(app_world, "北京新客户", "上海无名") == 0


def test_the_history_lists_runs_and_reverts_one(app_world: AppWorld) -> None:
    app = log_in(app_world.world.admin.username)
    app.session_state["imports_source"] = ("clean.csv", b"name,email\nAlpha Ltd,alpha@example.com\n")
    app = open_imports(app)
    app.button(key="imports_validate").click()
    app = app.run()
    assert any("All 1 rows pass" in success.value for success in app.success)
    app.button(key="imports_commit").click()
    app = app.run()
    assert customers_named(app_world, "Alpha Ltd") == 1
    history = next(frame.value for frame in app.dataframe if "File" in frame.value.columns)
    assert list(history["File"]) == ["clean.csv"]
    next(box for box in app.checkbox if (box.key or "").startswith("imports_revert_confirm_")).check()
    app = app.run()
    app.button(key="imports_revert").click()
    app = app.run()
    assert not app.exception
    assert any("reverted" in success.value for success in app.success)
    assert customers_named(app_world, "Alpha Ltd") == 0
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(ImportRun.status)).all() == ["reverted"]


def test_the_imports_page_is_for_admins_and_managers_only() -> None:
    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    def allowed(role: Role) -> bool:
        return any(spec.path == "pages/imports.py" for spec in pages_for(role))

    assert [role for role in Role if allowed(role)] == [Role.ADMIN, Role.MANAGER]
