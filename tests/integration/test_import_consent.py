"""Imports carry consent columns (decision 0047) on every database: each customers or contacts row with an
``email_consent`` writes one ledger entry proven by the import run; a bad value or a row without an email is
refused with its reason; only an admin imports the date (history)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, run_import, validate_import
from crm_core.models.marketing import ConsentRecord
from crm_core.services.consent import send_decision
from tests.factories import World, build_world, create_random_customer


def import_csv(db: Database, actor: Actor, entity: str, body: str, *, match_on: list[str] | None = None,
               **options: str) -> ImportResult:
    file = open_import_file(f"{entity}.csv", body.encode("utf-8"))
    mapping = ImportMapping.suggested(entity, file.headers)
    if match_on is not None:
        mapping.match_on = match_on
    return run_import(db, actor, file, entity, mapping, ImportOptions(**options))  # type: ignore[arg-type]


def ledger(db: Database, actor: Actor) -> list[ConsentRecord]:
    with db.session(actor) as session:
        rows = list(session.scalars(select(ConsentRecord).order_by(ConsentRecord.address)))
        session.expunge_all()
    return rows


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_a_customers_file_with_consent_columns_writes_the_ledger(db: Database, world: World) -> None:
    result = import_csv(db, world.admin, "customers",
                        "Customer name,Email,Email consent,Email consent source,Email consent date\n"
                        "Alpha,alpha@example.com,consent,Newsletter form 2019,2019-03-01\n"
                        "Beta,BETA@example.com,合同,,\n"
                        "Gamma,gamma@example.com,withdrawn,Asked by phone,2021-06-30 10:00\n"
                        "Delta,delta@example.com,none,,\n"
                        "Epsilon,eps@example.com,,,\n")
    assert result.status == "imported", result.as_dict()
    entries = ledger(db, world.admin)
    assert [(e.address, e.action, e.basis) for e in entries] == [
        ("alpha@example.com", "grant", "consent"), ("beta@example.com", "grant", "contract"),
        ("gamma@example.com", "withdraw", None)]
    alpha, beta, gamma = entries
    assert (alpha.proof_kind, alpha.proof) == ("import", f"import run {result.run_id}: Newsletter form 2019")
    assert beta.proof == f"import run {result.run_id}"
    assert alpha.recorded_at == dt.datetime(2019, 3, 1) and gamma.recorded_at == dt.datetime(2021, 6, 30, 10, 0)
    assert alpha.customer_id is not None and alpha.contact_id is None and alpha.recorded_by_id == world.admin.user_id
    with db.session(world.admin) as session:
        assert send_decision(session, world.admin.tenant_id, "email", "alpha@example.com").allowed
        assert send_decision(session, world.admin.tenant_id, "email", "gamma@example.com").reason.startswith(
            "blocked:withdrawn")


def test_bad_consent_values_and_rows_without_an_email_are_refused_with_their_reason(db: Database,
                                                                                   world: World) -> None:
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).date().isoformat()
    body = ("Customer name,Email,Email consent,Email consent date\n"
            "Alpha,alpha@example.com,maybe,\n"
            "Beta,,consent,\n"
            f"Gamma,gamma@example.com,consent,{ahead}\n"
            "Delta,delta@example.com,legitimate interest,\n")
    file = open_import_file("customers.csv", body.encode())
    report = validate_import(db, world.admin, file, "customers", ImportMapping.suggested("customers", file.headers))
    assert sorted(report.rejected) == [2, 3, 4]
    assert "Email consent" in report.reasons(2, "en") and "legitimate_interest" in report.reasons(2, "en")
    assert "needs an email" in report.reasons(3, "en")
    assert "需要一个邮箱" in report.reasons(3, "zh-CN")
    assert "lies in the future" in report.reasons(4, "en")
    result = import_csv(db, world.admin, "customers", body, policy="skip-invalid")
    assert (result.created, result.rejected) == (1, 3)
    assert [(e.address, e.basis) for e in ledger(db, world.admin)] == [("delta@example.com", "legitimate_interest")]


def test_a_contacts_file_and_an_update_key_consent_on_the_record_and_only_admins_import_dates(
        db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.manager, name="Zeta Trading", email="office@zeta.cn")
    with pytest.raises(ImportNotAllowed):
        import_csv(db, world.manager, "contacts", "Customer,Name,Email,Email consent,Email consent date\n"
                                                  "Zeta Trading,Li,li@zeta.cn,consent,2020-01-01\n")
    result = import_csv(db, world.manager, "contacts", "Customer,Name,Email,Email consent,Consent source\n"
                                                       "Zeta Trading,Li Lei,LI@zeta.cn,consent,Trade fair\n")
    assert result.status == "imported", result.as_dict()
    [entry] = ledger(db, world.manager)
    assert (entry.address, entry.customer_id, entry.contact_id is not None) == ("li@zeta.cn", customer_id, True)
    # an update row without an email keys the entry on the matched record's email
    updated = import_csv(db, world.manager, "customers", "Customer name,Email consent\nZeta Trading,withdrawn\n",
                         mode="upsert", match_on=["name"])
    assert updated.status == "imported", updated.as_dict()
    addresses = [(e.address, e.action) for e in ledger(db, world.manager)]
    assert ("office@zeta.cn", "withdraw") in addresses
