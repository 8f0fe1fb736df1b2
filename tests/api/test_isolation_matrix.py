"""The isolation matrix: every resource × every kind of caller, read and write, on every database.

Records belong to a rep of tenant A (team East); the product to tenant A's catalogue. What each
caller gets is the access layer's answer through the caller's Actor — the API adds nothing:
404 for what the caller may not see (it looks like nothing is there), 403 for what they see
but may not change (a read-only token, an analyst, a rep on the catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.products import ProductInput, create_product
from crm_core.services.tasks import TaskInput, create_task
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique

RESOURCES = ("customers", "contacts", "activities", "tasks", "products")
# caller → (read status, write status) per resource, in RESOURCES order
MATRIX: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "owner rep":            ((200, 200, 200, 200, 200), (200, 200, 201, 200, 403)),
    "owner's read token":   ((200, 200, 200, 200, 200), (403, 403, 403, 403, 403)),
    "teammate rep":         ((404, 404, 404, 404, 200), (404, 404, 404, 404, 403)),
    "rep of another team":  ((404, 404, 404, 404, 200), (404, 404, 404, 404, 403)),
    "team manager":         ((200, 200, 200, 200, 200), (200, 200, 201, 200, 200)),
    "analyst":              ((200, 200, 200, 200, 200), (403, 403, 403, 403, 403)),
    "admin":                ((200, 200, 200, 200, 200), (200, 200, 201, 200, 200)),
    "admin of tenant B":    ((404, 404, 404, 404, 404), (404, 404, 404, 404, 404)),
}


@dataclass
class Records:
    customer: int
    contact: int
    activity: int
    task: int
    product: int

    def id_of(self, resource: str) -> int:
        return {"customers": self.customer, "contacts": self.contact, "activities": self.activity,
                "tasks": self.task, "products": self.product}[resource]


def make_records(api: Api, world: World) -> Records:
    customer = create_random_customer(api.db, world.rep)
    return Records(
        customer=customer,
        contact=create_contact(api.db, world.rep, ContactInput(customer_id=customer, name="Lin")),
        activity=log_activity(api.db, world.rep, ActivityInput(customer_id=customer, type="note", summary="hi")),
        task=create_task(api.db, world.rep, TaskInput(title="Call back", customer_id=customer)),
        product=create_product(api.db, world.admin, ProductInput(sku=unique("SKU"), name="Scanner")),
    )


def headers_of(api: Api, world: World, caller: str) -> dict[str, str]:
    actor = {"owner rep": world.rep, "owner's read token": world.rep, "teammate rep": world.rep_same_team,
             "rep of another team": world.rep_other_team, "team manager": world.manager, "analyst": world.analyst,
             "admin": world.admin, "admin of tenant B": world.other_admin}[caller]
    return api.headers(actor, "read" if caller == "owner's read token" else "read_write", **{"If-Match": '"1"'})


def write(api: Api, resource: str, records: Records, headers: dict[str, str], admin: dict[str, str]) -> int:
    record_id = records.id_of(resource)
    if resource != "activities":  # the version as it is now (logging the activity moved the customer's)
        headers = {**headers, "If-Match": api.client.get(f"/api/v1/{resource}/{record_id}", headers=admin
                                                         ).headers["etag"]}
    if resource == "activities":  # a log: writing is logging another one on the same customer
        return api.client.post("/api/v1/activities", json={"customer_id": records.customer, "type": "call",
                                                           "summary": "again"}, headers=headers).status_code
    if resource == "tasks":
        return api.client.post(f"/api/v1/tasks/{record_id}/reopen", headers=headers).status_code
    change = {"customers": {"region": "North"}, "contacts": {"title": "Boss"}, "products": {"name": "Renamed"}}
    return api.client.patch(f"/api/v1/{resource}/{record_id}", json=change[resource], headers=headers).status_code


@pytest.mark.parametrize("caller", list(MATRIX))
def test_the_isolation_matrix(api: Api, world: World, caller: str) -> None:
    records = make_records(api, world)
    headers = headers_of(api, world, caller)
    expected_reads, expected_writes = MATRIX[caller]
    reads, listed = [], []
    for resource in RESOURCES:
        record_id = records.id_of(resource)
        reads.append(api.client.get(f"/api/v1/{resource}/{record_id}", headers=headers).status_code)
        page = api.client.get(f"/api/v1/{resource}?limit=100", headers=headers).json()["data"]
        listed.append(200 if record_id in {row["id"] for row in page} else 404)
    assert tuple(reads) == expected_reads
    assert tuple(listed) == expected_reads  # a list shows exactly what a GET may read
    admin = api.headers(world.admin, "read")
    writes = tuple(write(api, resource, records, headers, admin) for resource in RESOURCES)
    assert writes == expected_writes
