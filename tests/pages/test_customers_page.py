"""Customers page: server-side filters and the create form with validation."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_core.models import Customer
from tests.pages.conftest import AppWorld, log_in


def open_customers(username: str):  # type: ignore[no-untyped-def]
    """Log in and open the Customers page (the landing page may be another one)."""
    app = log_in(username)
    app.switch_page("pages/customers.py")
    return app.run()


def grid_names(app) -> list[str]:  # type: ignore[no-untyped-def]
    frames = app.dataframe
    if not frames:
        return []
    frame = frames[0].value
    return list(frame[frame.columns[0]])


def form_input(app, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in app.text_input if w.label == label)


def submit(app, label: str = "Create customer"):  # type: ignore[no-untyped-def]
    next(b for b in app.button if b.label == label).click()
    return app.run()


def test_a_rep_sees_only_their_customers_and_can_search_in_chinese(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    assert sorted(grid_names(app)) == ["Acme Trading", "张三科技有限公司"]
    app.text_input(key="customers_search").input("张三").run()
    assert grid_names(app) == ["张三科技有限公司"]
    app.text_input(key="customers_search").input("138-0013").run()
    assert grid_names(app) == ["张三科技有限公司"]
    app.text_input(key="customers_search").input("HELLO@acme").run()
    assert grid_names(app) == ["Acme Trading"]
    assert any("1 customers match" in c.value for c in app.caption)


def test_an_analyst_sees_the_whole_tenant_and_filters_by_owner(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.analyst.username)
    assert len(grid_names(app)) == 3
    app.selectbox(key="customers_owner").set_value(app_world.world.rep_other_team.user_id).run()
    assert grid_names(app) == ["West Coast Ltd"]
    assert any("read but not change" in i.value for i in app.info)


def test_an_invalid_email_is_explained_and_the_input_is_kept(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    form_input(app, "Name *").input("华为技术")
    form_input(app, "Email").input("not-an-email")
    app = submit(app)
    assert not app.exception
    assert any("Not a valid email address" in e.value for e in app.error)
    assert form_input(app, "Name *").value == "华为技术"
    assert form_input(app, "Email").value == "not-an-email"
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).where(Customer.name == "华为技术")) == 0


def test_creating_a_customer_shows_it_in_the_grid(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    form_input(app, "Name *").input("华为技术")
    form_input(app, "Email").input("contact@huawei.example.com")
    form_input(app, "Tags").input("vip， 华南")
    app = submit(app)
    assert not app.exception
    assert any("华为技术" in s.value for s in app.success)
    assert "华为技术" in grid_names(app)
    assert form_input(app, "Name *").value == ""  # a fresh form for the next customer


def test_a_duplicate_asks_for_confirmation_before_creating(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    form_input(app, "Name *").input("Acme Trading Again")
    form_input(app, "Email").input("HELLO@acme.com")
    app = submit(app)
    assert any("same Email already exists: Acme Trading" in w.value for w in app.warning)
    assert form_input(app, "Name *").value == "Acme Trading Again"
    next(c for c in app.checkbox if c.label.startswith("Create it anyway")).check()
    app = submit(app)
    assert "Acme Trading Again" in grid_names(app)
