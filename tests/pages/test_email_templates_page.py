"""The email templates page (managers and admins, not reps) and the marketing section of the mail settings page."""

from __future__ import annotations

import pytest

from tests.pages.conftest import AppWorld, log_in


def test_a_manager_saves_a_template_sees_a_bad_one_explained_and_previews_it(app_world: AppWorld) -> None:
    app = log_in(app_world.world.manager.username)
    app.switch_page("pages/email_templates.py")
    app = app.run()
    assert not app.exception and [title.value for title in app.title] == ["Email templates"]
    next(box for box in app.text_input if box.label == "Name").input("Spring")
    next(box for box in app.text_input if box.label == "Subject").input("Hi {{ customer.name }}")
    next(area for area in app.text_area if area.label == "Text").input("Dear {{ contcat.name }}")
    next(button for button in app.button if button.label == "Save template").click()
    app = app.run()
    assert any("Unknown variable: contcat" in error.value for error in app.error)
    next(area for area in app.text_area if area.label == "Text").input("Dear {{ contact.title }}")
    next(button for button in app.button if button.label == "Save template").click()
    app = app.run()
    assert not app.exception and any("Template saved." in message.value for message in app.success)
    app.text_input(key="email_templates_preview_search").input("Acme")
    app = app.run()
    app.button(key="email_templates_preview_run").click()
    app = app.run()
    assert not app.exception
    assert any("no value for contact.title" in error.value for error in app.error)


def test_a_rep_has_no_templates_page_and_an_admin_saves_the_marketing_settings(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        app.switch_page("pages/email_templates.py")
    app = log_in(app_world.world.admin.username)
    app.switch_page("pages/mail_settings.py")
    app = app.run()
    assert not app.exception and "Marketing email" in [header.value for header in app.subheader]
    app.checkbox(key="mail_settings_tracking").uncheck()
    app.text_input(key="mail_settings_sender_address").input("not an address")
    next(button for button in app.button if button.label == "Save marketing settings").click()
    app = app.run()
    assert any("Not a valid email address" in error.value for error in app.error)
    app.text_input(key="mail_settings_sender_address").input("news@acme.cn")
    next(button for button in app.button if button.label == "Save marketing settings").click()
    app = app.run()
    assert not app.exception
    from crm_core.services.marketing_settings import marketing_settings_view

    view = marketing_settings_view(app_world.db, app_world.world.admin)
    assert (view.tracking_enabled, view.sender_address) == (False, "news@acme.cn")
