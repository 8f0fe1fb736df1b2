"""Service queue and case pages, in English and Chinese: the queue sorted by SLA due with countdowns,
the case's flow actions, a reply, a priority change and the SLA panel that explains itself."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from crm_core.i18n import t
from crm_core.models import Case, Customer
from crm_core.services import sla_settings
from crm_core.services.cases import CaseInput, create_case
from crm_ui.text import plain_line
from tests.pages.conftest import AppWorld, log_in, open_as

HOSTILE = "**bold** [link](http://evil.example)"


def seed(app_world: AppWorld) -> tuple[int, int]:
    """Policies on an always-open UTC calendar, and two cases of the rep: one urgent, one low."""
    db, world = app_world.db, app_world.world
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support desk", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    for priority, minutes in (("urgent", 60), ("high", 240), ("normal", 480), ("low", 1440)):
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=minutes,
            next_response_minutes=minutes, resolution_minutes=minutes * 4))
    with db.system_session("test") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    low = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Low: invoice copy", priority="low",
                                               assignee_id=world.rep.user_id))
    urgent = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject=HOSTILE, priority="urgent",
                                                  assignee_id=world.rep.user_id, channel="phone"))
    return urgent, low


def speak_chinese(app_world: AppWorld, user_id: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user reads Chinese; AppTest calls format functions outside the run, where the default applies."""
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    with app_world.db.system_session("test: language") as session, session.begin():
        session.execute(text("UPDATE users SET language = 'zh-CN' WHERE id = :id"), {"id": user_id})


def open_queue(username: str, language: str = "en"):  # type: ignore[no-untyped-def]
    return open_as(username, "pages/service_queue.py", language)


def open_case(username: str, case_id: int, language: str = "en"):  # type: ignore[no-untyped-def]
    return open_as(username, "pages/case.py", language, case_id=str(case_id))


def test_the_queue_lists_my_cases_soonest_due_first_with_countdowns(app_world: AppWorld) -> None:
    urgent, low = seed(app_world)
    for language, subject, countdown in (("en", "Subject", "Time left"), ("zh-CN", "标题", "剩余时间")):
        app = open_queue(app_world.world.rep.username, language)
        assert not app.exception
        frame = app.dataframe[0].value
        assert list(frame["id"]) == [urgent, low]
        assert frame[subject][0] == HOSTILE  # a dataframe cell shows the text as written
        assert all(("in " in value) or ("剩余" in value) for value in frame[countdown])
    other = open_queue(app_world.world.rep_other_team.username)
    assert not other.exception and not other.dataframe and other.info
    # a manager starts on the team's queue (their own is usually empty), an admin on everything
    manager = open_queue(app_world.world.manager.username)
    assert not manager.exception and manager.radio(key="service_queue_scope").value == "team"
    assert open_queue(app_world.world.admin.username).radio(key="service_queue_scope").value == "all"


def test_the_case_page_moves_the_case_and_explains_its_sla(app_world: AppWorld) -> None:
    urgent, _ = seed(app_world)
    app = open_case(app_world.world.rep.username, urgent)
    assert not app.exception
    assert app.title[0].value.startswith(f"\\#{urgent} \\*\\*bold\\*\\* \\[link\\]")  # escaped: shown as text
    assert [button.label for button in app.button if button.key and button.key.startswith("case_move_")] == [
        "Wait for the customer", "Put on hold", "Resolve"]  # what the flow allows from open
    panel = " ".join(caption.value for caption in app.caption)
    assert "Support desk (UTC)" in panel and "Clock started" in panel
    assert any(block.value.startswith("Due ") for block in app.markdown)
    app.text_area(key=f"case_reply_body_{urgent}").input("We are on it.")
    next(b for b in app.button if b.label == "Save").click()
    app = app.run()
    assert any("Reply recorded" in s.value for s in app.success)
    assert any(text.value == "We are on it." for text in app.text)
    assert app.text_area(key=f"case_reply_body_{urgent}").value == ""  # sent: not there to be sent twice
    next(b for b in app.button if b.label == "Wait for the customer").click()
    app = app.run()
    assert any("Pending (customer)" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        case = session.get(Case, urgent)
        assert case is not None and case.status == "pending" and case.first_responded_at is not None


def test_the_case_page_in_chinese(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    urgent, _ = seed(app_world)
    app = open_case(app_world.world.rep.username, urgent)
    assert not app.exception
    labels = [button.label for button in app.button if button.key and button.key.startswith("case_move_")]
    assert labels == ["等待客户", "挂起", "解决"]
    assert any("工作日历 Support desk" in caption.value for caption in app.caption)
    assert [header.value for header in app.subheader][-2:] == ["SLA", "时间线"]


def test_a_case_the_user_may_not_see_reads_as_missing(app_world: AppWorld) -> None:
    urgent, _ = seed(app_world)
    app = open_case(app_world.world.rep_other_team.username, urgent)
    assert not app.exception and app.info[0].value == "This case does not exist or is not yours to see."


def open_settings(app_world: AppWorld, language: str = "en"):  # type: ignore[no-untyped-def]
    return open_as(app_world.world.admin.username, "pages/sla_settings.py", language)


def test_an_admin_adds_a_calendar_with_china_holidays_and_a_policy(app_world: AppWorld) -> None:
    app = open_settings(app_world)
    assert not app.exception
    app.text_input(key="sla_settings_calendar_name").input("Shanghai desk")
    next(b for b in app.button if b.label == "Add the calendar").click()
    app = app.run()
    assert any(s.value == "Saved." for s in app.toast)
    next(b for b in app.button if b.label.startswith("Add mainland China")).click()
    app = app.run()
    app.number_input(key="sla_settings_year").set_value(2026).run()
    days = next(frame.value for frame in app.dataframe if "Kind" in frame.value.columns)
    assert len(days) == 39 and (days["Kind"] == "Make-up working day (调休)").sum() == 6
    assert not any("not built in" in notice.value for notice in app.info)
    # a year whose notice is not out yet: the page says so, and the admin enters the days by hand
    app.number_input(key="sla_settings_year").set_value(2027).run()
    assert any("for 2027 are not built in" in notice.value and "(2026)" in notice.value for notice in app.info)
    app.date_input(key="sla_settings_day_value").set_value(dt.date(2027, 2, 6))
    app.text_input(key="sla_settings_day_name").input("春节")
    next(b for b in app.button if b.label == "Save the date").click()
    app = app.run()
    days = next(frame.value for frame in app.dataframe if "Kind" in frame.value.columns)
    assert list(days["Date"]) == [dt.date(2027, 2, 6)] and list(days["Kind"]) == ["Holiday"]
    next(b for b in app.button if b.label == "Save the policy").click()
    app = app.run()
    assert any("Policy saved" in s.value for s in app.toast)
    from crm_core.models.service import SlaPolicy

    with app_world.db.system_session("test") as session:
        policy = session.scalars(select(SlaPolicy)).one()
        assert (policy.priority, policy.first_response_minutes, policy.warn_percent) == ("urgent", 60, 75)


def test_a_bad_time_zone_is_explained_in_chinese_and_the_input_kept(
        app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    speak_chinese(app_world, app_world.world.admin.user_id, monkeypatch)
    app = open_settings(app_world)
    app.text_input(key="sla_settings_calendar_name").input("上海")
    app.text_input(key="sla_settings_calendar_zone").input("Mars/Olympus")
    next(b for b in app.button if b.label == "添加日历").click()
    app = app.run()
    assert any("不是时区名称" in error.value for error in app.error)
    assert app.text_input(key="sla_settings_calendar_name").value == "上海"


def test_a_rep_opens_a_new_case_into_their_team_queue_from_the_queue_page(app_world: AppWorld) -> None:
    db, world = app_world.db, app_world.world
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="round_robin", calendar_id=None)
    from crm_core.services import contacts
    from crm_core.services.orders import OrderInput, OrderLineInput, create_order
    from crm_core.services.products import ProductInput, create_product

    with db.system_session("test") as session:
        acme = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    product = create_product(db, world.admin, ProductInput(sku="SCN-9", name="Scanner", unit_price="99"))
    order = create_order(db, world.rep, OrderInput(customer_id=acme, lines=[OrderLineInput(product)]))
    contact = contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=acme, name="Li Lei"))
    app = open_queue(world.rep.username)
    app.text_input(key="service_new_search").input("Acme").run()
    app.text_input(key="service_new_subject").input("Phone: the scanner beeps")
    app.selectbox(key="service_new_channel").set_value("phone")
    app.selectbox(key=f"service_new_contact_{acme}").set_value(contact)
    app.selectbox(key=f"service_new_order_{acme}").set_value(order)
    app.selectbox(key="service_new_product").set_value(product)
    next(b for b in app.button if b.label == "Open the case").click()
    app = app.run()
    assert not app.exception
    assert any(s.value.startswith("Case #") for s in app.success)
    with db.system_session("test") as session:
        case = session.scalars(select(Case).where(Case.subject == "Phone: the scanner beeps")).one()
    assert (case.status, case.channel, case.team_id) == ("new", "phone", world.east_team_id)
    assert (case.contact_id, case.order_id, case.product_id) == (contact, order, product)
    shown = open_case(world.rep.username, case.id)
    assert any(caption.value.startswith("About: Order ") and caption.value.endswith("· Product Scanner")
               for caption in shown.caption)
    assert case.assignee_id in (world.rep.user_id, world.rep_same_team.user_id)  # the queue's pick
    app.radio(key="service_queue_scope").set_value("team").run()
    assert case.id in list(app.dataframe[0].value["id"])


def test_the_board_shows_the_cases_by_status_soonest_due_first(app_world: AppWorld) -> None:
    """Issue 13's case board: a column per worked status, each with its count, soonest SLA due first."""
    from crm_core.services.cases import transition_case

    urgent, low = seed(app_world)
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        version = session.get(Case, low).version  # type: ignore[union-attr]
    transition_case(db, world.rep, low, "pending", expected_version=version)
    for language in ("en", "zh-CN"):
        pending = t("service.status.pending", language)
        app = log_in(world.rep.username)
        app.session_state["kestrel_lang"] = language
        app.session_state["service_queue_view"] = "board"
        app.switch_page("pages/service_queue.py")
        app.run()
        assert not app.exception
        assert not app.dataframe  # the board, not the list
        headings = [block.value for block in app.markdown]
        assert any(heading.startswith(f"**{pending}** · 1") for heading in headings), headings
        links = [link.label for link in app.main.page_link]
        # the open urgent case in the Open column, then the low one in Pending (its clock paused: no countdown)
        assert links == [f"#{urgent}", f"#{low}"], links
        assert plain_line(HOSTILE) in [block.value for block in app.markdown]  # the subject, as text


def test_the_list_starts_on_the_unresolved_cases_and_counts_days_when_overdue_long(app_world: AppWorld) -> None:
    from crm_core.services.cases import transition_case

    urgent, low = seed(app_world)
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        version = session.get(Case, low).version  # type: ignore[union-attr]
    transition_case(db, world.rep, low, "resolved", expected_version=version)
    app = open_queue(world.rep.username)
    assert not app.exception
    assert list(app.dataframe[0].value["id"]) == [urgent]  # the resolved one is done: not in the work list
    app.selectbox(key="service_queue_status").set_value("")  # any status
    app.run()
    assert list(app.dataframe[0].value["id"]) == [urgent, low]


@pytest.mark.parametrize(("minutes", "english", "chinese"), [
    (125, "in 2 h 05 min", "剩余 2 小时 05 分"),
    (-(3 * 24 * 60 + 4 * 60 + 10), "overdue by 3 d 4 h", "已超时 3 天 4 小时"),
    (None, "—", "—"),
])
def test_a_countdown_reads_in_days_past_a_day(minutes: int | None, english: str, chinese: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from crm_ui.formatting import sla_countdown

    now = dt.datetime(2026, 12, 5, 9, 0)
    due = None if minutes is None else now + dt.timedelta(minutes=minutes, seconds=30)
    assert sla_countdown(due, now) == english
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    assert sla_countdown(due, now) == chinese


def test_a_manager_reassigns_a_case_and_links_its_order_from_the_details(app_world: AppWorld) -> None:
    from crm_core.services.orders import OrderInput, OrderLineInput, create_order
    from crm_core.services.products import ProductInput, create_product

    urgent, _ = seed(app_world)
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        acme = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    product = create_product(db, world.admin, ProductInput(sku="SCN-7", name="Scanner", unit_price="99"))
    order = create_order(db, world.rep, OrderInput(customer_id=acme, lines=[OrderLineInput(product)]))
    app = open_case(world.manager.username, urgent)
    assert not app.exception
    # closed, the details read nothing and show no picker; opened, they do
    assert not [box for box in app.selectbox if box.key == f"case_edit_assignee_{urgent}"]
    app.session_state[f"case_details_open_{urgent}"] = True
    app.run()
    app.selectbox(key=f"case_edit_assignee_{urgent}").set_value(world.rep_same_team.user_id)
    app.selectbox(key=f"case_edit_order_{urgent}").set_value(order)
    app.text_input(key=f"case_edit_subject_{urgent}").input("Scanner: pairing fails")
    next(b for b in app.button if b.label == "Save details").click()
    app.run()
    assert not app.exception and [s.value for s in app.success] == ["Details saved."]
    with db.system_session("test") as session:
        case = session.get(Case, urgent)
        assert case is not None
        assert (case.assignee_id, case.order_id, case.subject) == (world.rep_same_team.user_id, order,
                                                                   "Scanner: pairing fails")
    # a rep may take the case or leave it where it is, not hand it to anyone else: nobody else is offered
    rep = open_case(world.rep.username, urgent)
    rep.session_state[f"case_details_open_{urgent}"] = True
    rep.run()
    offered = rep.selectbox(key=f"case_edit_assignee_{urgent}").options
    assert offered == ["unassigned", world.rep.full_name, world.rep_same_team.full_name], offered
