"""Email templates and marketing settings on every database (decision 0048): managers and admins save templates
checked for syntax, unknown variables and unique names; archive and restore; a preview over a real contact names
the variable it lacks; admins alone save the marketing settings."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models.marketing import EmailTemplate, MarketingSettings
from crm_core.services import contacts
from crm_core.services.email_templates import TemplateInput, archive_template, list_templates, preview, save_template
from crm_core.services.marketing_settings import (
    MarketingSettingsInput,
    marketing_settings_view,
    save_marketing_settings,
)
from tests.factories import World, build_world, create_random_customer

GOOD = TemplateInput(name="Welcome", language="zh-CN", subject="{{ customer.name }}，您好",
                     body="{{ contact.name }}：\n欢迎。{{ owner.name }}")


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_a_manager_saves_edits_and_archives_a_template_and_a_rep_may_not(db: Database, world: World) -> None:
    template_id = save_template(db, world.manager, GOOD)
    with pytest.raises(AccessDenied):
        save_template(db, world.rep, TemplateInput("Rep's", "en", "Hi", "Hi"))
    with pytest.raises(ValidationFailed) as refused:
        save_template(db, world.admin, TemplateInput("Welcome", "fr", "{{ contcat.name }}", "{% if %}"))
    assert refused.value.errors["name"][0] == "marketing_mail.templates.name_taken"
    assert refused.value.errors["language"][0] == "validation.choice"
    assert refused.value.errors["subject"] == ("marketing_mail.templates.unknown_variable",
                                               {"names": "contcat", "known": "contact, customer, owner, sender, links"})
    assert refused.value.errors["body"][0] == "marketing_mail.templates.syntax"
    save_template(db, world.admin, TemplateInput("Welcome 2", "en", "Hello", "Dear {{ contact.name }}"),
                  template_id=template_id, expected_version=1)
    archive_template(db, world.manager, template_id)
    assert list_templates(db, world.manager) == []
    assert [row.name for row in list_templates(db, world.manager, archived=True)] == ["Welcome 2"]
    with db.session(world.other_admin) as session:  # another tenant sees none of it
        assert session.scalars(select(EmailTemplate)).all() == []


def test_the_preview_renders_over_a_real_contact_or_names_what_it_lacks(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="北京星辰科技")
    contact_id = contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id, name="李雷"))
    shown = preview(db, world.manager, GOOD, customer_id=customer_id, contact_id=contact_id)
    assert (shown.subject, shown.body, shown.missing) == ("北京星辰科技，您好", "李雷：\n欢迎。Rita Rep", None)
    lacking = preview(db, world.manager, TemplateInput("x", "en", "Hi", "{{ contact.title }}"),
                      customer_id=customer_id, contact_id=contact_id)
    assert lacking.missing == "contact.title" and lacking.body == ""


def test_only_an_admin_saves_the_marketing_settings_all_or_nothing(db: Database, world: World) -> None:
    form = MarketingSettingsInput(tracking_enabled=False, daily_cap_per_sender=500, sender_name="Acme 营销",
                                  sender_address="News@Acme.cn", postal_address="上海市 外滩1号")
    with pytest.raises(AccessDenied):
        save_marketing_settings(db, world.manager, form)
    with pytest.raises(ValidationFailed) as refused:
        save_marketing_settings(db, world.admin, MarketingSettingsInput(True, 0, "", "not an address", ""))
    assert set(refused.value.errors) == {"daily_cap_per_sender", "sender_address"}
    with db.session(world.admin) as session:
        assert session.scalars(select(MarketingSettings)).all() == []
    save_marketing_settings(db, world.admin, form)
    view = marketing_settings_view(db, world.admin)
    assert (view.tracking_enabled, view.daily_cap_per_sender, view.sender_address, view.version) == (
        False, 500, "news@acme.cn", 1)
