"""An import that still names a merged customer (its external reference, email or name) reaches the survivor
(issue 17); on every database."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import
from crm_core.models import Contact, Customer
from crm_core.services.merging import Versions, merge_customers
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def merged_pair(db: Database, world: World) -> tuple[int, int]:
    survivor = create_random_customer(db, world.admin, name="Kestrel Trading", external_id="ERP-1",
                                      email="buy@kestrel.example")
    merged = create_random_customer(db, world.admin, name="Kestrel Trading (old)", external_id="ERP-OLD-7",
                                    email="old@kestrel.example")
    with db.system_session("test") as session:
        versions = Versions(*(session.scalars(select(Customer.version).where(Customer.id == record_id)).one()
                              for record_id in (survivor, merged)))
    merge_customers(db, world.admin, survivor, merged, {"external_id": "survivor", "email": "survivor"}, versions)
    return survivor, merged


def run(db: Database, world: World, entity: str, body: str, **options):  # type: ignore[no-untyped-def]
    file = open_import_file("file.csv", body.encode())
    return run_import(db, world.admin, file, entity, ImportMapping.suggested(entity, file.headers),  # type: ignore[attr-defined]
                      ImportOptions(**options))


def test_rows_naming_the_merged_customer_land_on_the_survivor(db: Database, world: World) -> None:
    survivor, merged = merged_pair(db, world)
    body = ("name,customer\n"
            "Lin Mei,ERP-OLD-7\n"  # its old external reference
            "Wang Wei,old@kestrel.example\n"  # its old email
            "Zhao Li,Kestrel Trading (old)\n")  # its old name
    result = run(db, world, "contacts", body)
    assert (result.status, result.created) == ("imported", 3), result.report and result.report.as_dict()["failures"]
    with db.system_session("test") as session:
        owners = set(session.scalars(select(Contact.customer_id).where(Contact.name.in_(["Lin Mei", "Wang Wei",
                                                                                           "Zhao Li"]))))
    assert owners == {survivor}
    assert merged not in owners


def test_an_upsert_matching_the_merged_customers_key_updates_the_survivor(db: Database, world: World) -> None:
    survivor, merged = merged_pair(db, world)
    body = "external id,name,industry\nERP-OLD-7,Kestrel Trading,Logistics\n"
    result = run(db, world, "customers", body, mode="upsert")
    assert (result.status, result.created, result.updated) == ("imported", 0, 1), (
        result.report and result.report.as_dict()["failures"])
    with db.system_session("test") as session:
        kept, old = session.get(Customer, survivor), session.get(Customer, merged)
        assert kept is not None and old is not None
        assert kept.industry == "Logistics" and old.industry is None and old.archived_at is not None
