"""The consent ledger's use cases on every database (decision 0047): a user's grants and withdrawals, the
do-not-contact list, the 360's state and history, the audience counts; roles, tenants, the append-only rule."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import AuditEvent
from crm_core.models.marketing import ConsentAction, ConsentRecord, DoNotContact, ProofKind
from crm_core.queries.consent import consent_history, consent_state, lawful_counts, list_do_not_contact
from crm_core.services.consent import (
    ConsentInput,
    add_do_not_contact,
    record_consent,
    record_in,
    remove_do_not_contact,
    send_decision,
)
from crm_core.services.contacts import ContactInput, create_contact
from tests.factories import World, build_world, create_random_customer

NOW = dt.datetime(2026, 12, 1, 9, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def _count(db: Database, world: World, model: type) -> int:
    with db.session(world.admin) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_grant_and_a_withdrawal_per_contact_and_channel_show_on_the_360(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="北京星辰科技", email="Office@XC.cn")
    contact_id = create_contact(db, world.rep, ContactInput(customer_id, "王芳", email="wang@xc.cn",
                                                            phone="138 0013 8000", is_primary=True))
    granted = record_consent(db, world.rep, ConsentInput(
        customer_id, "email", "grant", basis="consent", proof_kind="form", proof="展会登记表 2026-11",
        contact_id=contact_id), now=NOW - dt.timedelta(days=2))
    record_consent(db, world.rep, ConsentInput(customer_id, "sms", "withdraw", proof_kind="manual",
                                               proof="asked on the phone to stop texts", contact_id=contact_id),
                   now=NOW - dt.timedelta(days=1))
    record_consent(db, world.rep, ConsentInput(customer_id, "wechat", "grant", basis="contract", proof_kind="manual",
                                               proof="contract §7", address=" wxid_xc01 "), now=NOW)
    with db.session(world.rep) as session:
        states = consent_state(session, world.rep.tenant_id, customer_id)
        assert states is not None
        by_slot = {(s.contact_id, s.channel): s for s in states}
        email = by_slot[(contact_id, "email")]
        assert (email.state, email.basis, email.address, email.proof) == ("granted", "consent", "wang@xc.cn",
                                                                          "展会登记表 2026-11")
        assert email.recorded_by == "Rita Rep" and email.since == NOW - dt.timedelta(days=2)
        assert by_slot[(contact_id, "sms")].state == "withdrawn"
        assert by_slot[(contact_id, "phone")].state == "none"  # the same number, another channel
        assert by_slot[(None, "email")].address == "office@xc.cn" and by_slot[(None, "email")].state == "none"
        assert by_slot[(None, "wechat")].address == "wxid_xc01"
        history = consent_history(session, customer_id)
        assert [entry.channel for entry in history.items] == ["wechat", "sms", "email"]
        assert history.items[-1].id == granted
        assert send_decision(session, world.rep.tenant_id, "email", "WANG@xc.cn", now=NOW).allowed
    with db.session(world.admin) as session:  # every entry is in the audit trail
        audited = session.scalar(select(func.count()).select_from(AuditEvent)
                                 .where(AuditEvent.entity == "consent_record"))
        assert audited == 3


def test_the_form_says_what_is_wrong_field_by_field_and_writes_nothing(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)  # no email, no phone
    with pytest.raises(ValidationFailed) as caught:
        record_consent(db, world.rep, ConsentInput(customer_id, "email", "grant", proof_kind="manual"))
    assert caught.value.errors["basis"][0] == "consent.error.basis_required"
    assert caught.value.errors["proof"][0] == "consent.error.proof_required_manual"
    assert caught.value.errors["address"][0] == "consent.error.no_address_email"
    with pytest.raises(ValidationFailed) as caught:
        record_consent(db, world.rep, ConsentInput(customer_id, "fax", "grant", basis="whim",
                                                   proof_kind="unsubscribe"))
    assert set(caught.value.errors) == {"channel", "basis", "proof_kind"}
    with pytest.raises(ValidationFailed) as caught:
        record_consent(db, world.rep, ConsentInput(customer_id, "email", "withdraw", proof_kind="import",
                                                   address="not an address"))
    assert caught.value.errors == {"address": ("consent.error.bad_email", {})}
    other = create_random_customer(db, world.rep)
    stranger = create_contact(db, world.rep, ContactInput(other, "Someone else", email="x@example.cn"))
    with pytest.raises(ValidationFailed) as caught:
        record_consent(db, world.rep, ConsentInput(customer_id, "email", "withdraw", proof_kind="import",
                                                   contact_id=stranger))
    assert caught.value.errors == {"contact_id": ("consent.error.contact_unknown", {})}
    assert _count(db, world, ConsentRecord) == 0


def test_a_rep_sees_and_records_only_their_own_customers_consent(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep, email="mine@example.cn")
    theirs = create_random_customer(db, world.rep_other_team, email="theirs@example.cn")
    for actor, customer_id in ((world.rep, mine), (world.rep_other_team, theirs)):
        record_consent(db, actor, ConsentInput(customer_id, "email", "grant", basis="legitimate_interest",
                                               proof_kind="manual", proof="existing client"))
    with pytest.raises(NotFound):
        record_consent(db, world.rep, ConsentInput(theirs, "email", "withdraw", proof_kind="import"))
    with db.session(world.rep) as session:
        assert consent_state(session, world.rep.tenant_id, theirs) is None
        assert consent_history(session, theirs).items == []
        assert {r.address for r in session.scalars(select(ConsentRecord))} == {"mine@example.cn"}
    with db.session(world.manager) as session:  # the manager of the east team sees the east rep's
        assert consent_history(session, mine).items
    with db.session(world.admin) as session:
        assert len(session.scalars(select(ConsentRecord)).all()) == 2
    with db.session(world.other_admin) as session:  # another tenant sees nothing
        assert session.scalars(select(ConsentRecord)).all() == []
        assert consent_state(session, world.other_admin.tenant_id, mine) is None
    with pytest.raises(AccessDenied):
        record_consent(db, world.analyst, ConsentInput(mine, "email", "withdraw", proof_kind="import"))


def test_the_ledger_is_append_only_even_for_an_admin(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, email="li@example.cn")
    record_consent(db, world.rep, ConsentInput(customer_id, "email", "grant", basis="consent", proof_kind="form",
                                               proof="newsletter form"))
    with pytest.raises(AccessDenied), db.transaction(world.admin) as session:
        entry = session.scalars(select(ConsentRecord)).one()
        session.delete(entry)
        session.flush()
    assert _count(db, world, ConsentRecord) == 1


def test_the_do_not_contact_list_adds_for_anyone_removes_for_managers_and_is_searched(
        db: Database, world: World) -> None:
    first = add_do_not_contact(db, world.rep, "all", " Zhang@Example.CN ", "said never again")
    add_do_not_contact(db, world.rep, "sms", "138 0013 8000", "")
    add_do_not_contact(db, world.manager, "email", "chen@example.cn", "legal request 2026-07")
    with pytest.raises(ValidationFailed) as caught:
        add_do_not_contact(db, world.rep_same_team, "all", "zhang@example.cn", "again")
    assert caught.value.errors == {"address": ("consent.error.already_listed", {})}
    with pytest.raises(ValidationFailed) as caught:
        add_do_not_contact(db, world.rep, "sms", "call me", "<b>x</b>")
    assert set(caught.value.errors) == {"address"}
    with pytest.raises(ValidationFailed):
        add_do_not_contact(db, world.rep, "pigeon", "x@example.cn")
    with pytest.raises(AccessDenied):
        add_do_not_contact(db, world.analyst, "all", "a@example.cn")
    with db.session(world.rep) as session:
        everything = list_do_not_contact(session, per_page=2)
        assert everything.total == 3 and len(everything.items) == 2 and everything.has_next
        found = list_do_not_contact(session, search="LEGAL")
        assert [row.address for row in found.items] == ["chen@example.cn"]
        assert [row.address for row in list_do_not_contact(session, search="+86138").items] == ["+8613800138000"]
        assert list_do_not_contact(session, search="100%_").items == []  # wildcards are text
        decision = send_decision(session, world.rep.tenant_id, "email", "zhang@example.cn")
        assert decision.reason == "blocked:do_not_contact"
    with db.session(world.other_admin) as session:
        assert list_do_not_contact(session).total == 0
    with pytest.raises(AccessDenied):
        remove_do_not_contact(db, world.rep, first)
    with pytest.raises(NotFound):
        remove_do_not_contact(db, world.other_admin, first)  # another tenant's entry is not found
    remove_do_not_contact(db, world.manager, first)
    with db.session(world.admin) as session:
        assert session.get(DoNotContact, first) is None
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity == "do_not_contact", AuditEvent.action == "delete")) == 1


def test_lawful_counts_for_an_audience(db: Database, world: World) -> None:
    tenant = world.admin.tenant_id
    with db.transaction(world.admin) as session:
        for address, action, basis in (("a@example.cn", ConsentAction.GRANT, "consent"),
                                       ("b@example.cn", ConsentAction.GRANT, "contract"),
                                       ("c@example.cn", ConsentAction.GRANT, "consent"),
                                       ("d@example.cn", ConsentAction.GRANT, "consent")):
            record_in(session, channel="email", address=address, action=action, basis=basis,
                      proof_kind=ProofKind.IMPORT, proof="import run 1", now=NOW - dt.timedelta(days=5))
        record_in(session, channel="email", address="b@example.cn", action=ConsentAction.WITHDRAW,
                  proof_kind=ProofKind.UNSUBSCRIBE, now=NOW - dt.timedelta(days=1))
        record_in(session, channel="sms", address="+8613800138000", action=ConsentAction.GRANT, basis="consent",
                  proof_kind=ProofKind.MANUAL, proof="note", now=NOW)
    add_do_not_contact(db, world.admin, "all", "c@example.cn", "")
    audience = ["A@example.cn", "a@example.cn", "b@example.cn", "c@example.cn", "d@example.cn", "e@example.cn",
                None, "", "+8613800138000"]
    with db.session(world.admin) as session:
        counts = lawful_counts(session, tenant, audience)
        assert (counts.with_basis, counts.do_not_contact, counts.withdrawn, counts.no_basis) == (2, 1, 1, 2)
        assert counts.blocked == 2 and counts.total == 6
        before = lawful_counts(session, tenant, audience, now=NOW - dt.timedelta(days=2))
        assert before.with_basis == 3  # the withdrawal had not happened yet
        assert lawful_counts(session, tenant, ["138 0013 8000"], channel="sms").with_basis == 1
    with db.session(world.other_admin) as session:
        assert lawful_counts(session, world.other_admin.tenant_id, audience).no_basis == 6
