"""Products page (managers edit the catalogue) and Custom fields page (admins define fields that
then appear in the customers form, grid columns and filters)."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select

from crm_core.models import Customer, Product, Role
from crm_ui.navigation import pages_for
from tests.pages.conftest import AppWorld, field_labels, log_in


def open_page(username: str, path: str):  # type: ignore[no-untyped-def]
    app = log_in(username)
    app.switch_page(path)
    return app.run()


def text_input(app, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in app.text_input if w.label == label)


def click(app, label: str):  # type: ignore[no-untyped-def]
    next(b for b in app.button if b.label == label).click()
    return app.run()


def test_a_manager_adds_a_product_and_a_negative_price_is_explained(app_world: AppWorld) -> None:
    app = open_page(app_world.world.manager.username, "pages/products.py")
    text_input(app, "SKU").input("CRM-PRO")
    text_input(app, "Product *").input("红隼 CRM 专业版")
    text_input(app, "List price").input("-5")
    app = click(app, "Create product")
    assert any("List price must be between 0 and 999999999999.99" in e.value for e in app.error)  # the field rule
    assert text_input(app, "Product *").value == "红隼 CRM 专业版"
    text_input(app, "List price").input("1,999.00")
    app = click(app, "Create product")
    assert not app.exception
    assert list(app.dataframe[0].value["SKU"]) == ["CRM-PRO"]
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(Product.unit_price)).one() == Decimal("1999.00")


def test_a_rep_reads_the_catalogue_but_cannot_change_it(app_world: AppWorld) -> None:
    app = open_page(app_world.world.rep.username, "pages/products.py")
    assert any("Only managers and administrators" in i.value for i in app.info)
    assert not any(b.label == "Create product" for b in app.button)


def test_an_admin_defined_field_appears_in_the_customer_form_grid_and_filters(app_world: AppWorld) -> None:
    app = open_page(app_world.world.admin.username, "pages/custom_fields.py")
    text_input(app, "Field key *").input("channel")
    text_input(app, "Label (English) *").input("Channel")
    text_input(app, "Label (Chinese) *").input("渠道")
    next(s for s in app.selectbox if s.label == "Type").set_value("choice")
    text_input(app, "Choices").input("web, 展会")
    next(c for c in app.checkbox if c.label == "Required").check()
    app = click(app, "Create field")
    assert not app.exception
    assert any("Channel" in s.value for s in app.toast)

    app = open_page(app_world.world.rep.username, "pages/customers.py")
    assert "Channel" in next(m for m in app.multiselect if m.label == "Columns").options
    # required in the create form
    text_input(app, "Name *").input("渠道客户")
    app = click(app, "Create customer")
    assert any("Channel" in e.value and "Required" in e.value for e in app.error)
    next(s for s in app.selectbox if s.label == "Channel *").set_value("展会")
    app = click(app, "Create customer")
    assert any("渠道客户" in s.value for s in app.success)
    # shown as a grid column and usable as a filter
    next(m for m in app.multiselect if m.label == "Columns").select("custom.channel").run()
    app.selectbox(key="customers_custom_channel").set_value("展会").run()
    frame = app.dataframe[0].value
    assert list(frame["Name"]) == ["渠道客户"] and list(frame["Channel"]) == ["展会"]
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(Customer.custom_fields).where(Customer.name == "渠道客户")).one() == {
            "channel": "展会"}


def test_only_admins_get_the_custom_fields_page() -> None:
    assert "pages/custom_fields.py" in [p.path for p in pages_for(Role.ADMIN)]
    assert "pages/custom_fields.py" not in [p.path for p in pages_for(Role.MANAGER)]


def test_both_forms_pair_their_fields_row_by_row_so_a_phone_reads_them_in_order(app_world: AppWorld) -> None:
    """Each pair of fields is a row of its own (crm_ui.layout.form_cells): where a phone stacks the columns, the
    fields still come in the desktop's reading order, not the whole left column first."""
    products = open_page(app_world.world.manager.username, "pages/products.py")
    assert field_labels(products.get("form")[0]) == ["SKU", "Product *", "List price", "Currency", "Active"]
    fields = open_page(app_world.world.admin.username, "pages/custom_fields.py")
    assert field_labels(fields.get("form")[0]) == [
        "Field key *", "Type", "Label (English) *", "Label (Chinese) *", "Choices", "Position", "Required"]
