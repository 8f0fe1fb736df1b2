"""Imported records tell the tenant's webhooks as a form's create does (issue 18's parity): a
``customer.created`` / ``deal.created`` / ``order.created`` … event per imported row, in the import's
transaction, so an import refused as a whole sends nothing; none when nobody subscribed. On every database."""

from __future__ import annotations

from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import
from crm_core.models import Customer
from crm_core.models.webhooks import WebhookDelivery, WebhookEvent
from crm_core.services.webhooks import SubscriptionForm, create_subscription, set_allow_private_targets
from tests.factories import build_world

CUSTOMERS = "name,email\n华为技术有限公司,ir@huawei.example.cn\nAcme Trading,hello@acme.example.com\nWest Coast Ltd,\n"


def _import(db: Database, actor: object, body: str) -> str:
    file = open_import_file("customers.csv", body.encode("utf-8"))
    return run_import(db, actor, file, "customers", ImportMapping.suggested("customers", file.headers),  # type: ignore[arg-type]
                      ImportOptions()).status


def _events(db: Database, tenant_id: int) -> list[tuple[str, int | None]]:
    with db.system_session("test: webhook events") as session:
        return [(row[0], row[1]) for row in session.execute(
            select(WebhookEvent.event_type, WebhookEvent.entity_id).where(WebhookEvent.tenant_id == tenant_id)
            .order_by(WebhookEvent.id))]


def test_each_imported_customer_is_a_created_event_for_the_subscribers_only(db: Database) -> None:
    world = build_world(db)
    tenant_id = world.admin.tenant_id
    assert _import(db, world.admin, CUSTOMERS) == "imported"
    assert _events(db, tenant_id) == []  # nobody subscribed: nothing written, nothing read back

    set_allow_private_targets(db, world.admin, True)
    create_subscription(db, world.admin, SubscriptionForm(url="http://127.0.0.1:9/hook",
                                                          event_types=["customer.created"]))
    create_subscription(db, world.admin, SubscriptionForm(url="http://127.0.0.1:9/deals",
                                                          event_types=["deal.won"]))
    second = ("name,email\n中兴技术有限公司,ir@zte.example.cn\nAcme Imports,hi@acme-imports.example.com\n"
              "West Coast GmbH,\n")
    assert _import(db, world.admin, second) == "imported"
    with db.system_session("test: imported customers") as session:
        imported = list(session.scalars(select(Customer.id).where(
            Customer.tenant_id == tenant_id, Customer.name.in_(["中兴技术有限公司", "Acme Imports", "West Coast GmbH"]))
            .order_by(Customer.id)))
        deliveries = session.scalar(select(func.count()).select_from(WebhookDelivery)
                                    .where(WebhookDelivery.tenant_id == tenant_id))
    assert _events(db, tenant_id) == [("customer.created", customer_id) for customer_id in imported]
    assert len(imported) == 3 and deliveries == 3  # to the customer subscription alone

    refused = "name,email\nGood Co,good@example.com\n,nobody@example.com\n"  # a row without a name
    assert _import(db, world.admin, refused) != "imported"
    assert len(_events(db, tenant_id)) == 3  # all or nothing: the refused import sent no event
    assert _events(db, world.other_admin.tenant_id) == []
