"""A hostile record is just data: every page, as every role, over a database whose text fields all carry Markdown.

One world (module-scoped): tenant A's customer names, tags, custom-field labels and values,
contacts, deals, products, orders, segments, tasks, activity notes, users (full names and a
username), teams, pipelines, stages, campaigns, automation rules, import files and the
workspace itself carry :data:`HOSTILE` — through the services where they accept it, by SQL
where a rule refuses it (data from before the rule, or copied in). Each page is then opened
as admin, manager, rep and analyst, in English and in Chinese, and every piece of text that Streamlit renders as
Markdown (markdown, titles, captions, alerts, toasts, widget labels and help, radio options,
expander/tab/popover labels, metric labels, page links) is searched for a tell-tale of the
data's Markdown left active; plotly figures for its HTML.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import streamlit as st
from google.protobuf.message import Message
from sqlalchemy import select, text
from streamlit.testing.v1 import AppTest

from crm_core.access import Actor
from crm_core.db import Database, make_engine
from crm_core.errors import ValidationFailed
from crm_core.models import Campaign, ImportRun, Opportunity, Role
from crm_core.models.jobs import Job, JobStatus
from crm_core.schema import upgrade_to_head
from crm_core.services import sla_settings
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.automation import ensure_default_automation_rules
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.custom_fields import FieldDefinitionInput, create_field
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from crm_core.services.segments import SegmentInput, save_segment
from crm_core.services.tasks import TaskInput, create_task
from crm_ui.navigation import pages_for
from tests.factories import World, build_world, create_random_customer, unique
from tests.pages.conftest import log_in

MARKDOWN = "Acme ![x](http://tracker.example/p.png) [Click](http://phish.example) :red[RED] **BOLD**"
"""What the field rules accept (they refuse HTML tags): an outsider can plant it through any form or file."""
HOSTILE = f"{MARKDOWN} <img src=x onerror=alert(1)>"

# What the data's Markdown looks like when it is left active (escaped, each is broken by a backslash;
# a bare URL, which GitHub-flavoured Markdown links even when escaped, by a word joiner after "http").
# (our own pixel that has the host set the login cookie, <img src="/_kestrel/session…">, is not data)
MARKDOWN_TELL_TALES = re.compile(r"\]\(http|!\[|:red\[|\*\*BOLD\*\*|(?<!\\)<img(?! src=\"/_kestrel/session)"
                                 r"|http\\?:\\?/")
# What plotly would render from a data string: its HTML (plotly's JSON may write < as \u003c).
CHART_TELL_TALES = re.compile(r"<img|\\u003cimg|<a |\\u003ca ", re.IGNORECASE)
# Proto fields that Streamlit renders as Markdown (on every element and block that has them).
MARKDOWN_FIELDS = {"body", "label", "help", "caption", "captions", "title", "content"}
# Element types shown as written (their body is not Markdown).
PLAIN_ELEMENTS = {"Text", "Code"}
# Element types whose options are Markdown too (select box and multiselect options are plain text).
MARKDOWN_OPTIONS = {"Radio"}


@dataclass
class HostileWorld:
    db: Database
    world: World
    customer_id: int
    by_sql: list[str] = field(default_factory=list)
    case_id: int = 0
    """The fields a rule refused, stored by SQL instead."""


def set_by_sql(db: Database, table: str, column: str, row_id: int, value: str) -> None:
    """Store ``value`` where no form or import would (data from before a rule, or copied in)."""
    with db.system_session("test: hostile text") as session, session.begin():
        session.execute(text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": value, "id": row_id})


def hostile_record(hw: HostileWorld, table: str, column: str, create: Callable[[str], int]) -> int:
    """A record whose ``column`` is hostile: created through the service with the Markdown (which the
    field rules accept), then given the HTML too by SQL (which they refuse)."""
    suffix = f" {table}.{column} {unique('')}"
    try:
        row_id = create(MARKDOWN + suffix)
    except ValidationFailed:
        row_id = create(unique(f"tame {table} "))
        hw.by_sql.append(f"{table}.{column}")
    set_by_sql(hw.db, table, column, row_id, HOSTILE + suffix)
    return row_id


def seed(db: Database, world: World) -> HostileWorld:
    """Tenant A with hostile text in every field a page shows."""
    admin, rep = world.admin, world.rep
    hw = HostileWorld(db, world, customer_id=0)
    hostile_record(hw, "field_definitions", "label_en", lambda value: create_field(
        db, admin, FieldDefinitionInput(name="hostile_note", label_en=value, label_zh=value, field_type="text")))
    hostile_record(hw, "field_definitions", "label_en", lambda value: create_field(
        db, admin, FieldDefinitionInput(name="hostile_choice", label_en=value, label_zh=value, field_type="choice",
                                        choices=[HOSTILE.replace(",", " ")])))
    hw.customer_id = hostile_record(hw, "customers", "name", lambda value: create_random_customer(
        db, rep, name=value, tags=f"{MARKDOWN},vip",
        custom_fields={"hostile_note": MARKDOWN}))
    for column in ("industry", "region", "source"):
        set_by_sql(db, "customers", column, hw.customer_id, HOSTILE)
    set_by_sql(db, "customers", "tags", hw.customer_id, f"{HOSTILE},vip")
    with db.system_session("test: hostile text") as session, session.begin():
        session.execute(text("UPDATE customers SET custom_fields = :value WHERE id = :id"),
                        {"value": json.dumps({"hostile_note": HOSTILE, "hostile_choice": HOSTILE.replace(",", " ")}),
                         "id": hw.customer_id})
    customer_id = hw.customer_id
    hostile_record(hw, "contacts", "name", lambda value: create_contact(
        db, rep, ContactInput(customer_id=customer_id, name=value, title=MARKDOWN)))
    hostile_record(hw, "opportunities", "name", lambda value: create_opportunity(
        db, rep, OpportunityInput(customer_id=customer_id, name=value, amount=1000)))
    product_id = hostile_record(hw, "products", "name", lambda value: create_product(
        db, admin, ProductInput(sku=unique("SKU-"), name=value, unit_price=10)))
    create_order(db, rep, OrderInput(customer_id=customer_id, lines=[OrderLineInput(product_id=product_id)]))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for due in (now - dt.timedelta(days=1), now + dt.timedelta(hours=1), now + dt.timedelta(days=3)):
        hostile_record(hw, "tasks", "title", lambda value, due=due: create_task(  # type: ignore[misc]
            db, rep, TaskInput(title=value, due_at=due, customer_id=customer_id)))
    hostile_record(hw, "activities", "summary", lambda value: log_activity(
        db, rep, ActivityInput(customer_id=customer_id, type="note", summary=value)))
    calendar_id = hostile_record(hw, "sla_calendars", "name", lambda value: sla_settings.save_calendar(
        db, admin, name=value, time_zone="UTC", hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)}))
    sla_settings.save_policy(db, admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=60, next_response_minutes=60,
        resolution_minutes=240))
    hw.case_id = hostile_record(hw, "cases", "subject", lambda value: create_case(
        db, rep, CaseInput(customer_id=customer_id, subject=value, description=MARKDOWN)))
    for column in ("description", "category"):
        set_by_sql(db, "cases", column, hw.case_id, HOSTILE)
    reply_id = add_case_reply(db, rep, hw.case_id, MARKDOWN)
    set_by_sql(db, "case_events", "body", reply_id, HOSTILE)
    conditions = {"match": "all", "conditions": [{"field": "name", "op": "contains", "value": "Acme"}]}
    for owner in (admin, world.manager, world.analyst):
        hostile_record(hw, "segments", "name", lambda value, owner=owner: save_segment(  # type: ignore[misc]
            db, owner, SegmentInput(name=f"{value} {owner.username}", conditions=conditions, description=MARKDOWN,
                                    sharing="tenant")))
    ensure_default_automation_rules(db, admin)
    tenant = admin.tenant_id
    with db.system_session("test: hostile text") as session, session.begin():
        session.add(Campaign(tenant_id=tenant, name=f"{HOSTILE} campaign", channel=HOSTILE))
        session.add(ImportRun(tenant_id=tenant, user_id=admin.user_id, entity="customers",
                              file_name=f"{HOSTILE}.csv", file_hash="0" * 64, status="imported", rows_read=1,
                              created_count=1, finished_at=now))
        for requester in (admin, rep, world.manager, world.analyst):
            session.add(Job(tenant_id=tenant, kind="import", requested_by_id=requester.user_id,
                            status=JobStatus.FAILED.value, started_at=now, finished_at=now,
                            params={"file_name": f"{HOSTILE}.csv", "entity": "customers", "dry_run": True},
                            error_key="jobs.error.bad_param", error_params={"name": HOSTILE},
                            error_detail=HOSTILE))
        for table, column in [("teams", "name"), ("teams", "region"), ("users", "full_name"),
                              ("pipelines", "name"), ("pipeline_stages", "name"), ("automation_rules", "name"),
                              ("tenants", "name")]:
            tenant_column = "id" if table == "tenants" else "tenant_id"
            session.execute(text(f"UPDATE {table} SET {column} = :value || ' ' || id WHERE {tenant_column} = :tenant"),
                            {"value": HOSTILE, "tenant": tenant})
        # a username no form accepts, on a locked user (the users page offers to unlock them by name)
        session.execute(text("UPDATE users SET username = :value, locked_until = :until WHERE id = :id"),
                        {"value": "x](http://phish.example)", "until": now + dt.timedelta(hours=1),
                         "id": world.rep_same_team.user_id})
    hw.by_sql += ["campaigns.name", "import_runs.file_name", "teams.name", "users.full_name",
                  "users.username", "pipelines.name", "pipeline_stages.name", "automation_rules.name", "tenants.name"]
    return hw


@pytest.fixture(scope="module")
def hostile_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileWorld]:
    url = f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'app.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("CRM_DATABASE_URL", url)
        monkeypatch.setenv("CRM_COOKIE_KEY", "test-cookie-key-0123456789abcdef")
        monkeypatch.chdir(Path(__file__).resolve().parents[2])
        from crm_ui.context import get_db

        get_db.clear()
        yield seed(db, build_world(db))
        get_db.clear()
        # pages cache figures by user and tenant id, which the next test's fresh database reuses
        st.cache_data.clear()
    engine.dispose()


def walk(node: Any) -> Iterator[Any]:
    """Every element and block under ``node``."""
    yield node
    for child in (getattr(node, "children", None) or {}).values():
        yield from walk(child)


def strings(message: Message, path: str = "") -> Iterator[tuple[str, str, str]]:
    """(proto type, field path, text) for every string field of ``message``, nested messages included."""
    for descriptor, value in message.ListFields():
        name = f"{path}.{descriptor.name}" if path else descriptor.name
        if isinstance(value, (bytes, int, float)):
            continue
        for item in [value] if isinstance(value, (str, Message)) else list(value):
            if isinstance(item, Message):
                yield from strings(item, name)
            elif isinstance(item, str):
                yield type(message).__name__, name, item


def active_markup(app: AppTest) -> list[str]:
    """Each place where the page renders the data's Markdown or HTML instead of showing it as text."""
    found = []
    for node in walk(app._tree):
        proto = getattr(node, "proto", None)
        if not isinstance(proto, Message):
            continue
        kind = type(proto).__name__
        if kind in PLAIN_ELEMENTS:
            continue
        for owner, path, value in strings(proto):
            leaf = path.rsplit(".", 1)[-1]
            if owner == "PlotlyChart" and leaf == "spec":
                if CHART_TELL_TALES.search(value):
                    found.append(f"{kind}.{path}: {CHART_TELL_TALES.search(value)}")
            elif (leaf in MARKDOWN_FIELDS or (leaf == "options" and owner in MARKDOWN_OPTIONS)) \
                    and MARKDOWN_TELL_TALES.search(value):
                found.append(f"{kind}.{path}: {value[:200]!r}")
    return found


# The other states of a page that show other data: (widget, key, value) set one after the other.
STATES: dict[str, list[tuple[str, str, Any]]] = {
    "pages/segments.py": [("radio", "segments_section", "saved"), ("click", "segments_open", None),  # edit it
                          *[("radio", "segments_section", section) for section in ("lifecycle", "rfm", "scoring")]],
    "pages/tasks.py": [("radio", "tasks_view", view) for view in ("today", "upcoming", "open")],
    # a record picked for editing shows its name on buttons
    "pages/products.py": [("selectbox_index", "products_pick", 1)],
    "pages/custom_fields.py": [("selectbox_index", "custom_fields_pick", 1)],
}


def visits(app: AppTest, page: str, hw: HostileWorld) -> Iterator[str]:
    """Open ``page``, then each of its other :data:`STATES`; yield a name for each state."""
    app.query_params.clear()
    if page == "pages/customer_profile.py":  # the search's links, then the customer
        app.switch_page(page).run()
        app.text_input(key="profile_search").input("Acme").run()
        yield f"{page} (search)"
        app.query_params["customer_id"] = str(hw.customer_id)
    if page == "pages/case.py":  # the hostile case, with its reply and SLA panel
        app.query_params["case_id"] = str(hw.case_id)
    if page == "pages/pipeline.py":  # the deal panel, opened as a card's name opens it (?deal=)
        with hw.db.system_session("test: hostile deal") as session:
            app.query_params["deal"] = str(session.scalars(select(Opportunity.id).order_by(Opportunity.id)).first())
    app.switch_page(page).run()
    yield page
    for widget, key, value in STATES.get(page, []):
        if widget == "radio":
            app.radio(key=key).set_value(value).run()
        elif widget == "click":  # the first button whose key starts so, where the role has one
            buttons = [button for button in app.button if (button.key or "").startswith(key)]
            if not buttons:
                continue
            buttons[0].click().run()
        elif widget == "selectbox_index":  # where the role may edit, and there is a record to pick
            boxes = [box for box in app.selectbox if box.key == key and box.options[value:]]
            if not boxes:
                continue
            boxes[0].select_index(value).run()
        yield f"{page} ({key}={value})"


ROLES = [Role.ADMIN, Role.MANAGER, Role.REP, Role.ANALYST]


@pytest.mark.parametrize("language", ["en", "zh-CN"])
@pytest.mark.parametrize("role", ROLES, ids=[role.value for role in ROLES])
def test_no_page_renders_the_markdown_or_html_of_hostile_data(
    hostile_world: HostileWorld, role: Role, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # AppTest calls format functions outside the script run, where the session's language is not
    # readable and the default applies: make the default this test's language
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", language)
    actor: Actor = {Role.ADMIN: hostile_world.world.admin, Role.MANAGER: hostile_world.world.manager,
                    Role.REP: hostile_world.world.rep, Role.ANALYST: hostile_world.world.analyst}[role]
    with hostile_world.db.system_session("test: language") as session, session.begin():
        session.execute(text("UPDATE users SET language = :language WHERE id = :id"),
                        {"language": language, "id": actor.user_id})
    app = log_in(actor.username)  # in the user's language
    assert app.title[0].value == ("Dashboard" if language == "en" else "仪表盘")
    problems = active_markup(app)
    for spec in pages_for(role):
        for state in visits(app, spec.path, hostile_world):
            assert not app.exception, f"{state}: {app.exception}"
            problems += [f"{state}: {problem}" for problem in active_markup(app)]
    assert not problems, "\n".join(dict.fromkeys(problems))
