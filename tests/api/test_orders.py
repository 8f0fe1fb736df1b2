"""/api/v1/orders: orders with lines over HTTP, totals from the service, on every database."""

from __future__ import annotations

from typing import Any

from crm_core.access import Actor
from crm_core.services.products import ProductInput, create_product
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def product(api: Api, world: World, price: str = "1200.00") -> int:
    """An active product of tenant A."""
    return create_product(api.db, world.admin, ProductInput(sku=unique("SKU-"), name=unique("Scanner "),
                                                              unit_price=price))


def new_order(api: Api, actor: Actor, lines: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """An order of a new customer of ``actor``, booked through the API."""
    customer_id = fields.pop("customer_id", None) or create_random_customer(api.db, actor)
    answer = api.client.post("/api/v1/orders", json={"customer_id": customer_id, "lines": lines, **fields},
                             headers=api.headers(actor))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def listed_ids(api: Api, headers: dict[str, str], query: str = "", limit: int = 100) -> list[int]:
    """Every id the list gives, following the cursors."""
    found: list[int] = []
    cursor = None
    while True:
        suffix = f"&after={cursor}" if cursor else ""
        answer = api.client.get(f"/api/v1/orders?limit={limit}{query}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        found += [row["id"] for row in answer.json()["data"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found


def test_totals_come_from_the_lines(api: Api, world: World) -> None:
    scanner, cable = product(api, world, "1200.00"), product(api, world, "9.99")
    order = new_order(api, world.rep, [{"product_id": scanner, "quantity": "2"},
                                       {"product_id": cable, "quantity": "1.5", "unit_price": "0.67"}])
    assert order["total_amount"] == "2401.01"  # 2400.00 + 1.01 (1.005 rounded half-up)
    assert [line["line_total"] for line in order["lines"]] == ["2400.00", "1.01"]
    assert order["order_number"].startswith("SO-") and order["status"] == "confirmed"
    assert order["owner_id"] == world.rep.user_id and order["version"] == 1


def test_a_token_of_tenant_b_or_another_rep_never_reads_or_writes_the_order(api: Api, world: World) -> None:
    order = new_order(api, world.rep, [{"product_id": product(api, world)}])
    path = f"/api/v1/orders/{order['id']}"
    for actor in (world.other_admin, world.rep_other_team):
        headers = api.headers(actor, **{"If-Match": '"1"'})
        assert order["id"] not in listed_ids(api, headers)
        assert api.client.get(path, headers=headers).status_code == 404
        assert api.client.patch(path, json={"status": "cancelled"}, headers=headers).status_code == 404
        assert api.client.delete(path, headers=headers).status_code == 404
        stolen = api.client.post("/api/v1/orders", headers=headers, json={
            "customer_id": order["customer_id"], "lines": [{"product_id": order["lines"][0]["product_id"]}]})
        assert stolen.status_code == 404
    assert order["id"] in listed_ids(api, api.headers(world.manager))


def test_an_analyst_and_a_read_scope_token_write_nothing(api: Api, world: World) -> None:
    order = new_order(api, world.rep, [{"product_id": product(api, world)}])
    path = f"/api/v1/orders/{order['id']}"
    for headers in (api.headers(world.analyst, **{"If-Match": '"1"'}),
                    api.headers(world.rep, scope="read", **{"If-Match": '"1"'})):
        assert api.client.get(path, headers=headers).status_code == 200
        assert api.client.patch(path, json={"status": "cancelled"}, headers=headers).status_code == 403
        assert api.client.delete(path, headers=headers).status_code == 403
        made = api.client.post("/api/v1/orders", headers=headers, json={
            "customer_id": order["customer_id"], "lines": [{"product_id": order["lines"][0]["product_id"]}]})
        assert made.status_code == 403


def test_create_get_patch_and_archive(api: Api, world: World) -> None:
    scanner = product(api, world, "100.00")
    order = new_order(api, world.rep, [{"product_id": scanner}], ordered_at="2026-12-04T20:00:00+08:00")
    assert order["ordered_at"] == "2026-12-04T12:00:00Z"
    path = f"/api/v1/orders/{order['id']}"
    headers = api.headers(world.rep)
    got = api.client.get(path, headers=headers)
    assert got.json() == order and got.headers["etag"] == '"1"'
    status_only = api.client.patch(path, json={"status": "fulfilled"}, headers={**headers, "If-Match": '"1"'})
    assert status_only.status_code == 200, status_only.text
    assert (status_only.json()["status"], status_only.json()["total_amount"]) == ("fulfilled", "100.00")
    assert status_only.json()["ordered_at"] == "2026-12-04T12:00:00Z"
    relined = api.client.patch(path, json={"lines": [{"product_id": scanner, "quantity": 5}],
                                           "version": status_only.json()["version"]}, headers=headers)
    assert relined.status_code == 200 and relined.json()["total_amount"] == "500.00"
    assert len(relined.json()["lines"]) == 1 and relined.json()["status"] == "fulfilled"
    archived = api.client.delete(path, headers={**headers, "If-Match": relined.headers["etag"]})
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert order["id"] not in listed_ids(api, headers)
    assert order["id"] in listed_ids(api, headers, "&include_archived=true")


def test_a_stale_write_is_412_and_nothing_is_written(api: Api, world: World) -> None:
    order = new_order(api, world.rep, [{"product_id": product(api, world)}])
    path = f"/api/v1/orders/{order['id']}"
    assert api.client.patch(path, json={"status": "draft"},
                            headers=api.headers(world.manager, **{"If-Match": '"1"'})).status_code == 200
    headers = api.headers(world.rep, **{"If-Match": '"1"'})
    for answer in (api.client.patch(path, json={"status": "cancelled"}, headers=headers),
                   api.client.delete(path, headers=headers)):
        # who changed it comes from the order's audit rows, which the rep reads with the order
        assert (answer.status_code, answer.json()["code"]) == (412, "stale_record")
        assert answer.json()["changed_by"] == world.manager.full_name
    current = api.client.get(path, headers=headers).json()
    assert (current["status"], current["archived_at"]) == ("draft", None)


def test_field_errors_are_422_in_the_callers_language(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    body = {"customer_id": customer_id, "lines": [{"product_id": product(api, world), "quantity": "-1"}]}
    english = api.client.post("/api/v1/orders", json=body, headers=api.headers(world.rep))
    chinese = api.client.post("/api/v1/orders", json=body,
                              headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert english.status_code == chinese.status_code == 422
    assert [e["field"] for e in english.json()["errors"]] == ["line1.quantity"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese.json()["errors"][0]["message"])
    empty = api.client.post("/api/v1/orders", json={"customer_id": customer_id, "lines": []},
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "lines"


def test_the_list_pages_by_cursor_and_filters(api: Api, world: World) -> None:
    scanner = product(api, world)
    customer_id = create_random_customer(api.db, world.rep)
    made = [new_order(api, world.rep, [{"product_id": scanner}], customer_id=customer_id,
                      ordered_at=f"2026-11-0{day}T10:00:00Z")["id"] for day in range(1, 6)]
    headers = api.headers(world.rep)
    query = f"&customer_id={customer_id}"
    first = api.client.get(f"/api/v1/orders?limit=2&include_total=true{query}", headers=headers).json()
    assert first["total"] == 5 and first["has_more"] and [row["id"] for row in first["data"]] == made[::-1][:2]
    new_order(api, world.rep, [{"product_id": scanner}], customer_id=customer_id, ordered_at="2026-11-09T10:00:00Z")
    rest = listed_ids(api, headers, query + f"&after={first['next_cursor']}", limit=2)
    assert [row["id"] for row in first["data"]] + rest == made[::-1]
    window = listed_ids(api, headers, query + "&ordered_from=2026-11-02&ordered_to=2026-11-03&order=asc")
    assert window == made[1:3]
    wrong = api.client.get(f"/api/v1/orders?limit=2&after={first['next_cursor']}", headers=headers)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_cursor")
