"""The marketing core on every database (decision 0046): the ledger's decision at send time and the
outbox's queueing of one step's email for one member, once, or skipped with its reason."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied
from crm_core.marketing.sender import queue_email
from crm_core.models import Campaign
from crm_core.models.marketing import (
    CampaignStep,
    ConsentAction,
    ConsentRecord,
    DoNotContact,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    ProofKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.services.consent import record_in, send_decision
from tests.factories import World, build_world, create_random_customer

NOW = dt.datetime(2026, 12, 1, 9, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_the_latest_ledger_entry_holds_and_the_do_not_contact_list_wins(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, email="li@example.cn")
    tenant = world.rep.tenant_id
    with db.transaction(world.rep) as session:
        assert send_decision(session, tenant, "email", "Li@Example.cn ", now=NOW).reason == "blocked:no_basis"
        granted = record_in(session, channel="email", address="LI@example.cn", action=ConsentAction.GRANT,
                            basis="consent", proof_kind=ProofKind.FORM, proof="trade fair form",
                            customer_id=customer_id, recorded_by_id=world.rep.user_id, now=NOW - dt.timedelta(days=3))
        decision = send_decision(session, tenant, "email", "li@example.cn", now=NOW)
        assert (decision.allowed, decision.reason, decision.record_id) == (True, f"basis:consent#{granted.id}",
                                                                           granted.id)
        assert not send_decision(session, tenant, "sms", "li@example.cn", now=NOW).allowed  # another channel
        withdrawn = record_in(session, channel="email", address="li@example.cn", action=ConsentAction.WITHDRAW,
                              proof_kind=ProofKind.UNSUBSCRIBE, customer_id=customer_id, now=NOW - dt.timedelta(days=1))
        decision = send_decision(session, tenant, "email", "li@example.cn", now=NOW)
        assert decision.reason == f"blocked:withdrawn#{withdrawn.id}"
        # a grant before the withdrawal in time counts only as of when it was recorded
        record_in(session, channel="email", address="li@example.cn", action=ConsentAction.GRANT, basis="contract",
                  proof_kind=ProofKind.MANUAL, proof="signed the contract", customer_id=customer_id, now=NOW)
        assert send_decision(session, tenant, "email", "li@example.cn", now=NOW).allowed
        session.add(DoNotContact(channel="all", address="li@example.cn", reason="asked on the phone"))
        session.flush()
        assert send_decision(session, tenant, "email", "li@example.cn", now=NOW).reason == "blocked:do_not_contact"
    with db.session(world.other_admin) as session:  # another tenant's ledger says nothing here
        other = send_decision(session, world.other_admin.tenant_id, "email", "li@example.cn")
        assert other.reason == "blocked:no_basis"
    with pytest.raises(AccessDenied), db.transaction(world.rep) as session:
        entry = session.scalars(select(ConsentRecord)).first()
        assert entry is not None
        entry.proof = "rewritten"
        session.flush()


def _campaign_with_step(db: Database, world: World, body: str) -> tuple[int, int]:
    with db.transaction(world.manager) as session:
        campaign = Campaign(name="Nurture", status="running")
        session.add(campaign)
        session.flush()
        template = EmailTemplate(name="Welcome", language="zh-CN", subject="{{ customer.name }}，您好",
                                 body=body)
        session.add(template)
        session.flush()
        step = CampaignStep(campaign_id=campaign.id, position=1, kind="email", config={"template_id": template.id})
        session.add(step)
        session.flush()
        return campaign.id, step.id


def test_an_email_step_is_queued_once_per_member_step_and_cycle(db: Database, world: World,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.cn")
    monkeypatch.setenv("CRM_MAIL_FROM", "marketing@example.cn")
    campaign_id, step_id = _campaign_with_step(
        db, world, "{{ contact.name }}：\n感谢关注。退订：{{ links.unsubscribe }}\n{{ owner.name }}")
    customer_id = create_random_customer(db, world.rep, name="北京星辰科技", email="xc@example.cn")
    with db.transaction(world.manager) as session:
        member = CampaignMember(campaign_id=campaign_id, customer_id=customer_id, state="active")
        session.add(member)
        session.flush()
        step = session.get(CampaignStep, step_id)
        assert step is not None
        first = queue_email(session, member, step, now=NOW)
        again = queue_email(session, member, step, now=NOW)
        assert first.id == again.id and first.status == "queued"
        assert first.to_address == "xc@example.cn" and first.subject == "北京星辰科技，您好"
        assert f"https://crm.example.cn/m/u/{first.token}" in first.body and first.message_id.startswith("<mkt-")
        member.cycle = 2  # re-entered: the step may send again
        assert queue_email(session, member, step, now=NOW).id != first.id
        assert session.scalar(select(func.count()).select_from(MarketingMessage)) == 2
    with db.session(world.rep_other_team) as session:  # another rep's customer: not theirs to read
        assert session.scalars(select(MarketingMessage)).all() == []


def test_a_missing_variable_or_address_skips_the_send_and_says_why(db: Database, world: World,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.example.cn")
    monkeypatch.setenv("CRM_MAIL_FROM", "marketing@example.cn")
    campaign_id, step_id = _campaign_with_step(db, world, "{{ contact.title }}，您好 {{ links.unsubscribe }}")
    with_address = create_random_customer(db, world.rep, email="a@example.cn")
    without = create_random_customer(db, world.rep)
    with db.transaction(world.manager) as session:
        step = session.get(CampaignStep, step_id)
        assert step is not None
        reasons = []
        for customer_id in (with_address, without):
            member = CampaignMember(campaign_id=campaign_id, customer_id=customer_id, state="active")
            session.add(member)
            session.flush()
            reasons.append(queue_email(session, member, step, now=NOW).reason)
        assert reasons == ["blocked:missing_variable:contact.title", "blocked:no_address"]
        assert sorted(session.scalars(select(MarketingEvent.detail).where(MarketingEvent.kind == "skipped"))) == \
            sorted(reasons)
