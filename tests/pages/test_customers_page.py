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
    app.selectbox(key="customers_owner@en").set_value(app_world.world.rep_other_team.user_id).run()
    assert grid_names(app) == ["West Coast Ltd"]
    assert any("read but not change" in i.value for i in app.info)


def test_an_invalid_email_is_explained_and_the_input_is_kept(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    form_input(app, "Name *").input("华为技术")
    form_input(app, "Email").input("not-an-email")
    app = submit(app)
    assert not app.exception
    assert any("Email is not a valid email address" in e.value for e in app.error)  # the field named by its label
    assert form_input(app, "Name *").value == "华为技术"
    assert form_input(app, "Email").value == "not-an-email"
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).where(Customer.name == "华为技术")) == 0


def test_a_formula_or_markup_name_is_refused_as_an_import_would_and_the_input_is_kept(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    form_input(app, "Name *").input('=HYPERLINK("http://evil.example")')
    form_input(app, "Region").input("<script>alert(1)</script>")
    app = submit(app)
    assert not app.exception
    errors = " ".join(e.value for e in app.error)
    assert "Name holds a spreadsheet formula, not a value." in errors  # imports.rule.formula, named by its label
    assert "Region contains HTML or script." in errors
    assert form_input(app, "Name *").value == '=HYPERLINK("http://evil.example")'
    assert form_input(app, "Region").value == "<script>alert(1)</script>"
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).where(Customer.name.like("=HYPERLINK%"))) == 0


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


def test_a_saved_view_brings_back_its_filters_columns_and_sort(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    app.text_input(key="customers_search").input("acme").run()
    next(m for m in app.multiselect if m.label == "Columns").set_value(["name", "email"]).run()
    app.selectbox(key="customers_sort@en").set_value("name").run()
    form_input(app, "View name").input("Acme only")
    next(c for c in app.checkbox if c.label == "Share with my team").check()
    app = submit(app, "💾 Save view")
    assert any('View "Acme only" saved' in s.value for s in app.success)

    # a teammate opens the shared view from a fresh session
    other = open_customers(app_world.world.rep_same_team.username)
    assert len(grid_names(other)) == 0  # the teammate owns no customers and sees none of Rita's
    view_box = other.selectbox(key="customers_view@en")
    assert any("Acme only" in option for option in view_box.options)
    mine = open_customers(app_world.world.rep.username)
    assert mine.text_input(key="customers_search").value == ""
    view_id = next(v for v in mine.selectbox(key="customers_view@en").options if "Acme only" in v)
    mine.selectbox(key="customers_view@en").select(view_id).run()
    assert mine.text_input(key="customers_search").value == "acme"
    assert mine.selectbox(key="customers_sort@en").value == "name"
    assert list(mine.dataframe[0].value.columns) == ["Name", "Email"]  # the name opens the record
    assert grid_names(mine) == ["Acme Trading"]


def test_next_and_previous_walk_the_pages(app_world: AppWorld) -> None:
    from tests.factories import create_random_customer

    for index in range(30):
        create_random_customer(app_world.db, app_world.world.rep, name=f"Paged {index:02d}")
    app = open_customers(app_world.world.rep.username)
    app.selectbox(key="customers_per_page").set_value(25).run()
    app.selectbox(key="customers_sort@en").set_value("name").run()
    first = grid_names(app)
    assert len(first) == 25 and any("Page 1 of 2" in m.value for m in app.markdown)
    app = submit(app, "Next ▶")
    second = grid_names(app)
    assert len(second) == 7 and not set(first) & set(second)
    assert sorted(first + second, reverse=True) == first + second
    app = submit(app, "◀ Previous")
    assert grid_names(app) == first


def test_coming_back_from_a_record_keeps_the_search_filters_and_page(app_world: AppWorld) -> None:
    from tests.factories import create_random_customer

    for index in range(30):
        create_random_customer(app_world.db, app_world.world.rep, name=f"Kept {index:02d}", industry="Retail")
    app = open_customers(app_world.world.rep.username)
    app.text_input(key="customers_search").input("Kept").run()
    app.selectbox(key="customers_per_page").set_value(25).run()
    app.selectbox(key="customers_sort@en").set_value("name").run()
    app = submit(app, "Next ▶")
    second = grid_names(app)
    assert len(second) == 5
    # open a record (the card's link), then come back through the menu
    app.switch_page("pages/customer_profile.py")
    app.query_params["customer_id"] = str(app_world.world.rep.user_id)
    app.run()
    app.query_params.clear()
    app.switch_page("pages/customers.py").run()
    assert not app.exception
    assert app.text_input(key="customers_search").value == "Kept"
    assert app.selectbox(key="customers_sort@en").value == "name"
    assert app.selectbox(key="customers_per_page").value == 25
    assert grid_names(app) == second and any("Page 2 of 2" in m.value for m in app.markdown)


def test_every_row_has_a_card_whose_name_opens_the_record_and_empty_cells_show_a_dash(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    links = {link.label: link for link in app.get("page_link")}
    zhang = next(link for label, link in links.items() if label == "张三科技有限公司")
    assert zhang.proto.page.endswith("customer_profile") or "customer" in zhang.proto.page
    assert any("[📞 138 0013 8000](tel:+8613800138000)" in m.value for m in app.markdown)  # tap to call on the card
    frame = app.dataframe[0].value
    acme = frame[frame["Name"] == "Acme Trading"].iloc[0]
    assert acme["Phone"] == "—" and acme["Industry"] == "—"
    assert "None" not in frame.astype(str).to_string()


def test_the_chinese_grid_shows_dashes_and_translated_stages(app_world: AppWorld) -> None:
    app = open_customers(app_world.world.rep.username)
    app.session_state["kestrel_lang"] = "zh-CN"
    app.run()
    frame = app.dataframe[0].value
    assert set(frame["生命周期阶段"]) == {"潜客"}  # the stage translated once per run, not per cell
    assert set(frame["行业"]) == {"—"}
    assert "None" not in frame.astype(str).to_string()
