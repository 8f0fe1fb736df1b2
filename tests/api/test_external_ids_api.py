"""External IDs through the API (decision 0042): contacts, deals, orders and products read and write theirs, unique
per tenant — one held by a record the caller cannot see is still a 422 on the field, never a database error."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.factories import World, create_random_customer


def test_external_ids_are_written_read_cleared_and_unique_in_the_tenant(api: Api, world: World) -> None:
    mine = create_random_customer(api.db, world.rep)
    far = create_random_customer(api.db, world.rep_other_team)
    rep, far_rep = api.headers(world.rep), api.headers(world.rep_other_team, **{"Accept-Language": "zh-CN"})
    contact = api.client.post("/api/v1/contacts", headers=rep,
                              json={"customer_id": mine, "name": "Lin", "external_id": " CON-7 "})
    assert contact.status_code == 201 and contact.json()["external_id"] == "CON-7", contact.text
    taken = api.client.post("/api/v1/contacts", headers=far_rep,
                            json={"customer_id": far, "name": "Wu", "external_id": "CON-7"})
    assert taken.status_code == 422, taken.text
    assert [(error["field"], "CON-7" in error["message"]) for error in taken.json()["errors"]] == [
        ("external_id", True)]
    path = f"/api/v1/contacts/{contact.json()['id']}"
    kept = api.client.patch(path, headers=rep, json={"title": "Buyer", "version": 1})
    assert kept.json()["external_id"] == "CON-7"
    cleared = api.client.patch(path, headers=rep, json={"external_id": None, "version": 2})
    assert cleared.status_code == 200 and cleared.json()["external_id"] is None

    admin = api.headers(world.admin)
    product = api.client.post("/api/v1/products", headers=admin,
                              json={"name": "Scanner", "unit_price": "10", "external_id": "PRD-7"})
    assert product.status_code == 201 and product.json()["external_id"] == "PRD-7", product.text
    deal = api.client.post("/api/v1/deals", headers=rep, json={"customer_id": mine, "name": "D", "external_id": "O-7"})
    assert deal.status_code == 201 and deal.json()["external_id"] == "O-7", deal.text
    order = api.client.post("/api/v1/orders", headers=rep, json={
        "customer_id": mine, "opportunity_id": deal.json()["id"], "external_id": "SO-7",
        "lines": [{"product_id": product.json()["id"]}]})
    assert order.status_code == 201 and order.json()["external_id"] == "SO-7", order.text
    again = api.client.patch(f"/api/v1/deals/{deal.json()['id']}", headers=rep,
                             json={"external_id": "O-7", "name": "D2", "version": deal.json()["version"]})
    assert again.status_code == 200 and again.json()["external_id"] == "O-7"  # its own ID is not taken


def test_a_customer_shows_its_external_id_in_the_record_and_the_list(api: Api, world: World) -> None:
    rep = api.headers(world.rep)
    created = api.client.post("/api/v1/customers", headers=rep, json={"name": "Imported Co", "external_id": "ACC-9"})
    assert created.status_code == 201 and created.json()["external_id"] == "ACC-9", created.text
    one = api.client.get(f"/api/v1/customers/{created.json()['id']}", headers=rep)
    assert one.json()["external_id"] == "ACC-9"
    listed = api.client.get("/api/v1/customers", headers=rep, params={"search": "Imported Co"})
    assert [row["external_id"] for row in listed.json()["data"]] == ["ACC-9"], listed.text
