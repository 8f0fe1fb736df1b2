"""Reverting an import never takes what others added since, and undoes consent by adding to the ledger
(issue 18, decision 0053).

A revert deletes the records its run created. Records added to them since — a deal or a contact typed on a
customer the run created, a later import's deals — are not the run's: the revert refuses, naming how many of
which kind, and changes nothing; once they are moved elsewhere (or that later import reverted) it goes through.
The consent ledger is append-only: the entries the run wrote stay, and the revert appends what undoes them — the
grant that held before the run again, or a withdrawal where none did. A withdrawal the run recorded stays (consent
comes back only with new proof), and says so.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.i18n import t
from crm_core.importing.runner import revert_import
from crm_core.models import Contact, Customer, ImportRun, Opportunity
from crm_core.models.marketing import ConsentRecord
from crm_core.services.consent import ConsentInput, record_consent, send_decision
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.deals import OpportunityInput, create_opportunity, update_opportunity
from tests.factories import build_world, create_random_customer
from tests.integration.test_import_consent import import_csv as import_with
from tests.integration.test_import_external_ids import import_csv
from tests.integration.test_import_history import stages


def test_a_revert_refuses_while_records_added_since_hang_on_what_it_created_and_says_which(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    customers = import_csv(db, admin, "customers", f"External ID,Customer name,Owner\nACC-1,Alpha,{admin.username}\n"
                                                   f"ACC-2,Beta,{admin.username}\n")
    with db.session(admin) as session:
        alpha = session.scalars(select(Customer).where(Customer.external_id == "ACC-1")).one()
    # by hand since: a deal and a contact on a customer the run created; a later import's deal from 2017
    hand_deal = create_opportunity(db, admin, OpportunityInput(customer_id=alpha.id, name="Typed deal", amount=10))
    create_contact(db, admin, ContactInput(customer_id=alpha.id, name="Typed contact"))
    won = stages(db, admin)["won"].name
    deals = import_csv(db, admin, "opportunities", "Opportunity ID,Account ID,Deal name,Stage,Created date,"
                                                   f"Closed date\nOPP-1,ACC-2,Old win,{won},2017-01-02,2017-02-03\n")
    assert customers.run_id is not None and deals.run_id is not None

    with pytest.raises(ImportNotAllowed) as refused:
        revert_import(db, admin, customers.run_id)
    error = refused.value
    assert error.message_key == "imports.error.revert_attached"
    assert error.params["count"] == 3
    said = t(error.message_key, "en", **error.params)
    assert f"{t('merge.table.opportunities', 'en')}: 2" in said and f"{t('merge.table.contacts', 'en')}: 1" in said
    assert "撤销" in t(error.message_key, "zh-CN", **error.params)
    with db.session(admin) as session:  # nothing changed
        assert len(session.scalars(select(Customer.id)).all()) == 2
        assert session.get(ImportRun, customers.run_id).status == "imported"  # type: ignore[union-attr]
        assert session.scalars(select(Opportunity.name).where(Opportunity.id == hand_deal)).one() == "Typed deal"

    # the later import reverted, the typed deal moved to another customer, the contact too: the revert goes through
    revert_import(db, admin, deals.run_id)
    other = create_random_customer(db, admin, name="Elsewhere")
    with db.session(admin) as session:
        deal = session.get(Opportunity, hand_deal)
        assert deal is not None
        version, stage_id = deal.version, deal.stage_id
        contact_id = session.scalars(select(Contact.id)).one()
    update_opportunity(db, admin, hand_deal, OpportunityInput(customer_id=other, name="Typed deal", amount=10,
                                                              stage_id=stage_id), expected_version=version)
    with pytest.raises(ImportNotAllowed) as still:
        revert_import(db, admin, customers.run_id)
    assert still.value.params["count"] == 1
    with db.transaction(admin) as session:  # the contact form cannot move a contact: as a merge would
        contact = session.get(Contact, contact_id)
        assert contact is not None
        contact.customer_id = other
    reverted = revert_import(db, admin, customers.run_id)
    assert reverted.deleted == 2
    with db.session(admin) as session:
        assert sorted(session.scalars(select(Customer.name))) == ["Elsewhere"]
        assert session.scalars(select(Opportunity.customer_id).where(Opportunity.id == hand_deal)).one() == other


def test_a_revert_appends_to_the_consent_ledger_what_undoes_the_runs_entries(db: Database) -> None:
    world = build_world(db)
    admin = world.admin
    known = create_random_customer(db, admin, name="Known", email="known@example.com")
    record_consent(db, admin, ConsentInput(customer_id=known, channel="email", action="grant", basis="consent",
                                           proof_kind="manual", proof="Signed at the fair, 2024-05-01"))
    run = import_with(db, admin, "customers", "Customer name,Email,Email consent\n"
                                              "Known,known@example.com,legitimate_interest\n"
                                              "Fresh,fresh@example.com,consent\n"
                                              "Gone,gone@example.com,withdrawn\n",
                      match_on=["email"], mode="upsert")
    assert run.status == "imported", run.as_dict()
    with db.session(admin) as session:
        entries_before = len(session.scalars(select(ConsentRecord.id)).all())
    assert entries_before == 4

    reverted = revert_import(db, admin, run.run_id)
    assert (reverted.consent_reverted, reverted.consent_kept) == (2, 1)
    with db.session(admin) as session:
        entries = list(session.scalars(select(ConsentRecord).order_by(ConsentRecord.id)))
        assert len(entries) == 6  # nothing removed: two entries added
        added = {entry.address: entry for entry in entries[4:]}
        # the form's grant holds again; the new customer's grant is withdrawn; the imported withdrawal stays
        assert (added["known@example.com"].action, added["known@example.com"].basis) == ("grant", "consent")
        assert f"import run {run.run_id} reverted" in added["known@example.com"].proof
        assert (added["fresh@example.com"].action, added["fresh@example.com"].customer_id) == ("withdraw", None)
        assert "gone@example.com" not in added
        assert send_decision(session, admin.tenant_id, "email", "known@example.com").allowed
        assert not send_decision(session, admin.tenant_id, "email", "fresh@example.com").allowed
        assert not send_decision(session, admin.tenant_id, "email", "gone@example.com").allowed
        assert sorted(session.scalars(select(Customer.name))) == ["Known"]

    # a contacts file's entries name their contacts: the revert removes the contacts, the entries stay
    contacts = import_with(db, admin, "contacts", "Customer,Contact name,Email,Email consent\n"
                                                  "Known,Ann,ann@example.com,consent\n")
    assert contacts.status == "imported", contacts.as_dict()
    assert revert_import(db, admin, contacts.run_id).consent_reverted == 1
    with db.session(admin) as session:
        assert session.scalars(select(Contact.id)).all() == []
        ann = [(entry.action, entry.contact_id) for entry in session.scalars(
            select(ConsentRecord).where(ConsentRecord.address == "ann@example.com").order_by(ConsentRecord.id))]
        assert ann == [("grant", None), ("withdraw", None)]
