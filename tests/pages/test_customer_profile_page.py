"""Customer 360 page: everything about one customer, editing with optimistic locking, contacts, activities."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Activity, Contact, Customer
from crm_core.services.customers import CustomerInput, update_customer
from tests.pages.conftest import AppWorld, log_in


def customer_id(app_world: AppWorld, name: str) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalars(select(Customer.id).where(Customer.name == name)).one()


def open_profile(username: str, customer: int):  # type: ignore[no-untyped-def]
    app = log_in(username)
    app.switch_page("pages/customer_profile.py")
    app.query_params["customer_id"] = str(customer)
    return app.run()


def text_input(app, label: str):  # type: ignore[no-untyped-def]
    return next(w for w in app.text_input if w.label == label)


def click(app, label: str):  # type: ignore[no-untyped-def]
    next(b for b in app.button if b.label == label).click()
    return app.run()


def test_a_rep_opens_their_customer_and_sees_its_creation_in_the_history(app_world: AppWorld) -> None:
    app = open_profile(app_world.world.rep.username, customer_id(app_world, "张三科技有限公司"))
    assert not app.exception
    assert app.title[0].value == "张三科技有限公司"
    history = app.dataframe[-1].value
    assert list(history["What"]) == ["Created · customer"]
    assert history["Who"][0] == "Rita Rep"
    assert "Email:  → zhang@example.cn" in history["Changes"][0]


def test_a_rep_cannot_open_another_reps_customer(app_world: AppWorld) -> None:
    app = open_profile(app_world.world.rep.username, customer_id(app_world, "West Coast Ltd"))
    assert not app.exception
    assert any("not visible to you" in w.value for w in app.warning)
    assert all(t.value != "West Coast Ltd" for t in app.title)


def test_editing_records_the_diff_and_a_concurrent_change_is_not_overwritten(app_world: AppWorld) -> None:
    target = customer_id(app_world, "Acme Trading")
    app = open_profile(app_world.world.rep.username, target)
    text_input(app, "Industry").input("Retail")
    app = click(app, "Save changes")
    assert not app.exception
    assert any("Changes saved" in s.value for s in app.success)
    history = app.dataframe[-1].value
    assert "Industry:  → Retail" in history["Changes"][0]

    # the rep starts another edit; meanwhile their manager saves the same customer
    text_input(app, "Region").input("上海")
    update_customer(app_world.db, app_world.world.manager, target,
                    CustomerInput(name="Acme Trading Co", owner_id=app_world.world.rep.user_id, industry="Retail"),
                    expected_version=2)
    app = click(app, "Save changes")
    assert any("Mia Manager changed this record" in e.value for e in app.error)
    assert text_input(app, "Region").value == "上海"  # the rep's input is kept
    with app_world.db.system_session("test") as session:
        saved = session.get(Customer, target)
        assert saved is not None and saved.name == "Acme Trading Co" and saved.region is None
    app = click(app, "Reload their version")
    assert text_input(app, "Name *").value == "Acme Trading Co"
    assert text_input(app, "Region").value == ""


def test_adding_a_contact_and_logging_a_call_from_the_quick_actions(app_world: AppWorld) -> None:
    target = customer_id(app_world, "张三科技有限公司")
    app = open_profile(app_world.world.rep.username, target)
    contact_name = next(w for w in app.text_input if w.label == "Name *" and w.value == "")
    contact_name.input("王经理")
    next(w for w in app.text_input if w.label == "Email" and w.value == "").input("bad-email")
    app = click(app, "Add contact")
    assert any("Email is not a valid email address" in e.value for e in app.error)  # the field rule's message
    next(w for w in app.text_input if w.label == "Email" and w.value == "bad-email").input("wang@example.cn")
    app = click(app, "Add contact")
    assert any("王经理" in s.value for s in app.success)
    # the contact's email is one tap away, built from the validated address
    assert any("](mailto:wang@example.cn)" in m.value for m in app.markdown)

    app.segmented_control(key=f"profile_{target}_quick").set_value("call").run()
    assert not app.exception
    next(a for a in app.text_area if a.label.startswith("What happened")).input("电话沟通报价")
    app = click(app, "Log activity")
    assert not app.exception
    assert any("Activity logged" in s.value for s in app.success)
    assert app.segmented_control(key=f"profile_{target}_quick").value is None  # the form closed after success
    assert any(text.value == "电话沟通报价" for text in app.text)  # first on the timeline
    with app_world.db.system_session("test") as session:
        assert session.scalars(select(Contact.email).where(Contact.customer_id == target)).all() == ["wang@example.cn"]
        assert session.scalars(select(Activity.summary).where(Activity.customer_id == target)).all() == ["电话沟通报价"]


def test_a_quick_task_is_explained_when_untitled_and_becomes_the_next_step(app_world: AppWorld) -> None:
    from crm_core.models import Task

    target = customer_id(app_world, "Acme Trading")
    app = open_profile(app_world.world.rep.username, target)
    app.segmented_control(key=f"profile_{target}_quick").set_value("task").run()
    app = click(app, "Add task")
    assert any("Task" in e.value and "required" in e.value.lower() for e in app.error)
    text_input(app, "Task *").input("寄送报价单")
    app = click(app, "Add task")
    assert not app.exception
    assert any("寄送报价单" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        titles = session.scalars(select(Task.title).where(Task.customer_id == target)).all()
    assert "寄送报价单" in titles
    assert any(m.value.startswith("✅") and "寄送报价单" in m.value for m in app.markdown)  # on the timeline


def test_the_header_shows_the_key_facts_and_a_tap_to_call_link(app_world: AppWorld) -> None:
    target = customer_id(app_world, "张三科技有限公司")
    app = open_profile(app_world.world.rep.username, target)
    captions = [c.value for c in app.caption]
    for label in ("Owner", "Lifecycle stage", "Deal stage", "Open deals (0)", "Last contact", "Next step"):
        assert label in captions
    assert any("[📞 138 0013 8000](tel:+8613800138000)" in m.value for m in app.markdown)
    assert any("](mailto:zhang@example.cn)" in m.value for m in app.markdown)
    assert "**—**" in [m.value for m in app.markdown]  # no open deal: its stage shows as a dash, never "None"


def test_a_phone_that_is_not_a_number_gets_no_link(app_world: AppWorld) -> None:
    from tests.factories import customer_named_by_sql

    target = customer_named_by_sql(app_world.db, app_world.world.rep, "Odd Phone Co")
    with app_world.db.system_session("test") as session, session.begin():
        row = session.get(Customer, target)
        assert row is not None
        row.phone = "call [me](javascript:alert(1))"
    app = open_profile(app_world.world.rep.username, target)
    assert not app.exception
    assert not any("tel:" in m.value or "javascript:" in m.value.replace("\\", "") and "](" in m.value
                   for m in app.markdown)


def test_the_timeline_pages_on_the_server_and_filters_by_kind(app_world: AppWorld) -> None:
    from crm_core.services.activities import ActivityInput, log_activity

    target = customer_id(app_world, "Acme Trading")
    for index in range(25):
        log_activity(app_world.db, app_world.world.rep, ActivityInput(target, "note", f"note {index:02d}"))
    app = open_profile(app_world.world.rep.username, target)
    shown = [text.value for text in app.text]
    assert shown[:2] == ["note 24", "note 23"] and "note 04" not in shown
    app = click(app, "Older ▶")
    shown = [text.value for text in app.text]
    assert "note 04" in shown and "note 24" not in shown
    app = click(app, "◀ Previous")
    assert [text.value for text in app.text][0] == "note 24"
    app.pills(key=f"profile_{target}_timeline_kinds").set_value(["task"]).run()
    assert not app.exception
    assert not any(text.value.startswith("note") for text in app.text)
    assert any(m.value.startswith("✅") for m in app.markdown)  # the follow-up task of the new customer


def test_a_lost_deal_without_a_reason_says_so_in_words(app_world: AppWorld) -> None:
    from crm_core.models import Opportunity, PipelineStage
    from tests.factories import add_open_deal

    target = customer_id(app_world, "Acme Trading")
    add_open_deal(app_world.db, app_world.world.rep, target, name="Old lost deal")
    with app_world.db.system_session("test") as session, session.begin():
        deal = session.scalars(select(Opportunity).where(Opportunity.customer_id == target)).one()
        lost = session.scalars(select(PipelineStage).where(PipelineStage.kind == "lost",
                                                           PipelineStage.tenant_id == deal.tenant_id)).first()
        assert lost is not None
        deal.stage_id, deal.lost_reason = lost.id, None
    for language, words in (("en", "No reason given"), ("zh-CN", "未填写原因")):
        app = open_profile(app_world.world.rep.username, target)
        if language == "zh-CN":
            app.session_state["kestrel_lang"] = "zh-CN"
            app.run()
        deals = next(frame.value for frame in app.dataframe if "Old lost deal" in frame.value.to_string())
        reasons = deals[deals.columns[-1]].tolist()
        assert reasons == [words]
        assert "lost_reason" not in deals.to_string() and "None" not in deals.to_string()


def test_without_a_customer_the_page_offers_a_search(app_world: AppWorld) -> None:
    app = log_in(app_world.world.rep.username)
    app.switch_page("pages/customer_profile.py").run()
    app.text_input(key="profile_search").input("张三").run()
    assert [link.label for link in app.main.page_link] == ["张三科技有限公司 · Rita Rep"]  # the sidebar has the bell


def test_setting_the_stage_by_hand_needs_a_reason_and_is_kept_in_the_stage_history(app_world: AppWorld) -> None:
    from crm_core.models.automation import LifecycleTransition

    customer = customer_id(app_world, "Acme Trading")
    app = open_profile(app_world.world.rep.username, customer)
    stage_box = next(s for s in app.selectbox if s.label == "Lifecycle stage" and s.form_id.endswith("stage_override"))
    stage_box.set_value("intent")
    app = click(app, "Set stage")
    assert any("Reason" in e.value for e in app.error)
    with app_world.db.system_session("test") as session:
        unchanged = session.get(Customer, customer)
        assert unchanged is not None and unchanged.lifecycle_stage == "prospect"
    text_input(app, "Reason *").input("客户口头确认有采购意向")
    app = click(app, "Set stage")
    assert not app.exception
    assert any("Stage set to Intent by hand" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        changed = session.get(Customer, customer)
        assert changed is not None and changed.lifecycle_stage == "intent"
        reasons = session.scalars(
            select(LifecycleTransition.reason).where(LifecycleTransition.customer_id == customer)
        ).all()
    assert any("客户口头确认有采购意向" in (reason or "") for reason in reasons)


def test_the_sidebar_search_box_is_on_the_page_after_login(app_world: AppWorld) -> None:
    """Only the first run after login keeps its sidebar in AppTest (nor does AppTest follow st.switch_page):
    tests/e2e/test_records_flow.py checks in Chromium that Enter opens the best match and lists the groups."""
    app = log_in(app_world.world.rep.username)
    box = app.text_input(key="global_search_query")
    assert box.label == "Search customers, contacts, deals"
    assert box.placeholder == "Name, email or phone — Enter opens"


@pytest.mark.parametrize("raw", ["²", "١٢", "１２", "-1", "0", "99999999999999999999", "1e3", " 1 2", "%00"])
def test_a_malformed_id_in_the_url_is_not_found_never_an_error(app_world: AppWorld, raw: str) -> None:
    app = log_in(app_world.world.rep.username)
    app.switch_page("pages/customer_profile.py")
    app.query_params["customer_id"] = raw
    app.run()
    assert not app.exception
    assert not [e.value for e in app.error], [e.value for e in app.error]  # no "something went wrong" box
    assert [w.value for w in app.warning] == ["The record does not exist or is not visible to you."]


def test_the_cases_tab_shows_each_case_s_sla_outcome_and_the_record(app_world: AppWorld) -> None:
    """Issue 13: the 360 shows the customer's cases and SLA record, and opens a case."""
    from crm_core.services import sla_settings
    from crm_core.services.cases import CaseInput, add_case_reply, create_case

    db, world = app_world.db, app_world.world
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Desk", time_zone="UTC",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="high", calendar_id=calendar_id, first_response_minutes=240, next_response_minutes=240,
        resolution_minutes=960))
    acme = customer_id(app_world, "Acme Trading")
    answered = create_case(db, world.rep, CaseInput(customer_id=acme, subject="Invoice copy", priority="high"))
    add_case_reply(db, world.rep, answered, "Sent it again.")
    waiting = create_case(db, world.rep, CaseInput(customer_id=acme, subject="Broken seal", priority="high"))
    app = open_profile(world.rep.username, acme)
    assert not app.exception
    assert "SLA record: first response met 1 of 1 (100%) · resolution met — · CSAT good —" in [
        caption.value for caption in app.caption]
    cases = next(frame.value for frame in app.dataframe if "First response" in frame.value.columns)
    assert list(cases["#"]) == [waiting, answered]
    assert list(cases["First response"]) == ["⏳ running", "✅ met"]
    assert list(cases["Resolution"]) == ["⏳ running", "⏳ running"]
    assert [box.value for box in app.selectbox if box.key == "profile_case_pick"] == [waiting]
    assert "Open the case" in [link.label for link in app.main.page_link]
