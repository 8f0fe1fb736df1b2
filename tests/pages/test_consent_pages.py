"""The consent tab of the Customer 360 and the do-not-contact page, in English and Chinese (decision 0047)."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_core.models import Customer, Role
from crm_core.models.marketing import ConsentRecord, DoNotContact
from crm_core.services.consent import add_do_not_contact
from crm_ui.navigation import pages_for
from tests.pages.conftest import AppWorld, open_as


def customer_id(app_world: AppWorld, name: str) -> int:
    with app_world.db.system_session("test") as session:
        return session.scalars(select(Customer.id).where(Customer.name == name)).one()


def frame_with(app, column: str):  # type: ignore[no-untyped-def]
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def test_a_rep_records_consent_on_the_360_and_a_refused_form_keeps_its_input(app_world: AppWorld) -> None:
    target = customer_id(app_world, "张三科技有限公司")
    app = open_as(app_world.world.rep.username, "pages/customer_profile.py", customer_id=str(target))
    assert not app.exception
    now = frame_with(app, "State")
    assert set(now["Channel"]) == {"Email", "Phone", "SMS"}
    assert set(now["State"]) == {"No lawful basis recorded"}
    # a manual grant without its note is refused, field by field, and the form keeps what was typed
    next(w for w in app.selectbox if w.label == "Lawful basis").set_value("contract")
    next(w for w in app.text_input if w.label == "Address").input("Zhang@Example.cn")
    next(b for b in app.button if b.label == "Record").click()
    app.run()
    assert not app.exception
    assert any("needs a note" in e.value for e in app.error)
    assert next(w for w in app.text_input if w.label == "Address").value == "Zhang@Example.cn"
    next(w for w in app.text_area if w.label == "Proof note").input("Signed the service contract, §7 <b>x</b>")
    next(b for b in app.button if b.label == "Record").click()
    app.run()
    assert not app.exception
    assert any("Recorded: Email · Grant" in s.value for s in app.success)
    now = frame_with(app, "State")
    granted = now[now["Channel"] == "Email"].iloc[0]
    assert (granted["State"], granted["Lawful basis"], granted["Recorded by"]) == ("Allowed", "Contract", "Rita Rep")
    assert granted["Proof"] == "Manual (note): Signed the service contract, §7 <b>x</b>"  # text, as typed
    history = frame_with(app, "Entry")
    assert list(history["Entry"]) == ["Grant"]
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(ConsentRecord)) == 1


def test_the_consent_tab_reads_in_chinese(app_world: AppWorld) -> None:
    target = customer_id(app_world, "Acme Trading")
    app = open_as(app_world.world.rep.username, "pages/customer_profile.py", language="zh-CN",
                  customer_id=str(target))
    assert not app.exception
    now = frame_with(app, "状态")
    assert list(now["渠道"]) == ["邮件"] and list(now["状态"]) == ["未记录合法依据"]
    assert any(b.label == "记录" for b in app.button)


def test_the_do_not_contact_page_lists_searches_adds_and_lets_a_manager_remove(app_world: AppWorld) -> None:
    world = app_world.world
    assert "pages/do_not_contact.py" in [p.path for p in pages_for(Role.REP)]
    assert "pages/do_not_contact.py" not in [p.path for p in pages_for(Role.ANALYST)]
    add_do_not_contact(app_world.db, world.manager, "email", "chen@example.cn", "legal request")
    app = open_as(world.rep.username, "pages/do_not_contact.py")
    assert not app.exception
    next(w for w in app.text_input if w.label == "Email, phone number or WeChat id").input("not an email")
    next(w for w in app.selectbox if w.label == "Channel" and "Every entry" not in w.options).set_value("email")
    next(b for b in app.button if b.label == "Add to the list").click()
    app.run()
    assert any("not an email address" in e.value for e in app.error)
    assert next(w for w in app.text_input if w.label == "Email, phone number or WeChat id").value == "not an email"
    next(w for w in app.text_input if w.label == "Email, phone number or WeChat id").input("Wang@Example.cn")
    next(w for w in app.text_input if w.label == "Reason").input("**never** again")
    next(b for b in app.button if b.label == "Add to the list").click()
    app.run()
    assert not app.exception
    listed = frame_with(app, "Address")
    assert set(listed["Address"]) == {"wang@example.cn", "chen@example.cn"}
    assert "**never** again" in set(listed["Reason"])
    assert not any(b.label == "Take off the list" for b in app.button)  # a rep adds, never removes
    next(w for w in app.text_input if w.label == "Search address or reason").input("LEGAL")
    app.run()
    assert list(frame_with(app, "Address")["Address"]) == ["chen@example.cn"]

    app = open_as(world.manager.username, "pages/do_not_contact.py", language="zh-CN")
    assert not app.exception
    assert app.title[0].value == "禁止联系名单"
    assert set(frame_with(app, "地址")["地址"]) == {"wang@example.cn", "chen@example.cn"}
    assert any(b.label == "从名单中移除" for b in app.button)
    app = open_as(world.manager.username, "pages/do_not_contact.py")
    next(b for b in app.button if b.label == "Take off the list").click()
    app.run()
    assert not app.exception
    assert any("off the do-not-contact list" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(DoNotContact)) == 1


def test_the_owner_stops_a_campaign_for_their_customer_on_the_360(app_world: AppWorld) -> None:
    from crm_core.models import Campaign
    from crm_core.models.segments import CampaignMember

    target = customer_id(app_world, "Acme Trading")
    with app_world.db.transaction(app_world.world.manager) as session:
        campaign = Campaign(name="Spring <b>nurture</b>", status="running")
        session.add(campaign)
        session.flush()
        session.add(CampaignMember(campaign_id=campaign.id, customer_id=target, state="active"))
    app = open_as(app_world.world.rep.username, "pages/customer_profile.py", customer_id=str(target))
    assert not app.exception
    from crm_ui.text import plain_line

    assert f"**{plain_line('Spring <b>nurture</b>')}**" in [m.value for m in app.markdown]  # its name as text
    next(b for b in app.button if b.label == "Stop this campaign for this customer").click()
    app.run()
    assert not app.exception
    assert any("Spring <b>nurture</b> sends this customer nothing more" in s.value for s in app.success)
    with app_world.db.system_session("test") as session:
        member = session.scalars(select(CampaignMember)).one()
        assert (member.state, member.exit_reason) == ("exited", "stopped")
    assert not any(b.label == "Stop this campaign for this customer" for b in app.button)
