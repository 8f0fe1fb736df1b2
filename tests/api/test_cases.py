"""/api/v1/cases: customer-service cases over the cases service, on every database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.models import AuditEvent
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def new_case(api: Api, actor: Actor, **fields: Any) -> dict[str, Any]:
    """A case of a new customer of ``actor``, opened through the API."""
    customer_id = fields.pop("customer_id", None) or create_random_customer(api.db, actor)
    answer = api.client.post("/api/v1/cases", json={"customer_id": customer_id, "subject": unique("Case "), **fields},
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
        answer = api.client.get(f"/api/v1/cases?limit={limit}{query}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        found += [row["id"] for row in answer.json()["data"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found


def test_a_case_is_seen_and_changed_by_whoever_sees_its_customer(api: Api, world: World) -> None:
    case = new_case(api, world.rep)
    path = f"/api/v1/cases/{case['id']}"
    for actor in (world.other_admin, world.rep_other_team):
        headers = api.headers(actor, **{"If-Match": '"1"'})
        assert case["id"] not in listed_ids(api, headers)
        assert api.client.get(path, headers=headers).status_code == 404
        assert api.client.patch(path, json={"status": "pending"}, headers=headers).status_code == 404
        assert api.client.delete(path, headers=headers).status_code == 404
        stolen = api.client.post("/api/v1/cases", json={"customer_id": case["customer_id"], "subject": "x"},
                                 headers=headers)
        assert stolen.status_code == 404
    assert case["id"] in listed_ids(api, api.headers(world.manager))
    assert case["id"] in listed_ids(api, api.headers(world.analyst))


def test_an_analyst_and_a_read_scope_token_write_nothing(api: Api, world: World) -> None:
    case = new_case(api, world.rep)
    path = f"/api/v1/cases/{case['id']}"
    for headers in (api.headers(world.analyst, **{"If-Match": '"1"'}),
                    api.headers(world.rep, scope="read", **{"If-Match": '"1"'})):
        assert api.client.get(path, headers=headers).status_code == 200
        assert api.client.patch(path, json={"status": "pending"}, headers=headers).status_code == 403
        assert api.client.delete(path, headers=headers).status_code == 403
        made = api.client.post("/api/v1/cases", json={"customer_id": case["customer_id"], "subject": "x"},
                               headers=headers)
        assert made.status_code == 403


def test_open_get_patch_resolve_close_and_reopen_with_the_audit_trail(api: Api, world: World) -> None:
    case = new_case(api, world.rep, priority="high", assignee_id=world.rep.user_id, description="Since Monday.")
    assert (case["status"], case["priority"], case["assignee_name"], case["resolved_at"]) == (
        "open", "high", world.rep.full_name, None)
    path = f"/api/v1/cases/{case['id']}"
    headers = api.headers(world.rep)
    got = api.client.get(path, headers=headers)
    assert got.json() == case and got.headers["etag"] == '"1"'
    resolved = api.client.patch(path, json={"status": "resolved", "assignee_id": None},
                                headers={**headers, "If-Match": '"1"'})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolved_at"] is not None and resolved.json()["assignee_id"] is None
    assert resolved.json()["description"] == "Since Monday."
    reopened = api.client.patch(path, json={"status": "open", "version": resolved.json()["version"]},
                                headers=headers)  # within the reopen window
    assert reopened.status_code == 200 and reopened.json()["resolved_at"] is None
    resolved = api.client.patch(path, json={"status": "resolved", "version": reopened.json()["version"]},
                                headers=headers)
    closed = api.client.delete(path, headers={**headers, "If-Match": resolved.headers["etag"]})
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    assert closed.json()["resolved_at"] == resolved.json()["resolved_at"]
    assert case["id"] not in listed_ids(api, headers)
    assert case["id"] in listed_ids(api, headers, "&include_closed=true")
    assert case["id"] in listed_ids(api, headers, "&status=closed")
    final = api.client.patch(path, json={"status": "open", "version": closed.json()["version"]}, headers=headers)
    assert final.status_code == 422 and final.json()["errors"][0]["field"] == "status"  # closed is final
    with api.db.session(world.rep) as session:
        actions = session.scalars(select(AuditEvent.action).where(
            AuditEvent.entity == "case", AuditEvent.entity_id == case["id"])).all()
    assert sorted(actions) == ["create", "update", "update", "update", "update"]


def test_assignee_and_contact_rules(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    other_rep = api.client.post("/api/v1/cases", headers=headers, json={
        "customer_id": customer_id, "subject": "x", "assignee_id": world.rep_other_team.user_id})
    assert other_rep.status_code == 403
    analyst = api.client.post("/api/v1/cases", headers=api.headers(world.admin), json={
        "customer_id": customer_id, "subject": "x", "assignee_id": world.analyst.user_id})
    assert analyst.status_code == 422 and analyst.json()["errors"][0]["field"] == "assignee_id"
    foreign_contact = api.client.post("/api/v1/cases", headers=headers, json={
        "customer_id": customer_id, "subject": "x", "contact_id": 2_000_000_000})
    assert foreign_contact.status_code == 422 and foreign_contact.json()["errors"][0]["field"] == "contact_id"


def test_a_case_is_about_one_of_its_customer_s_orders_and_a_product(api: Api, world: World) -> None:
    from crm_core.services.orders import OrderInput, OrderLineInput, create_order
    from crm_core.services.products import ProductInput, create_product

    product = create_product(api.db, world.admin, ProductInput(sku=unique("SKU-"), name="Scanner", unit_price="9"))
    customer_id = create_random_customer(api.db, world.rep)
    order = create_order(api.db, world.rep, OrderInput(customer_id=customer_id, lines=[OrderLineInput(product)]))
    stranger = create_order(api.db, world.rep, OrderInput(customer_id=create_random_customer(api.db, world.rep),
                                                          lines=[OrderLineInput(product)]))
    case = new_case(api, world.rep, customer_id=customer_id, order_id=order, product_id=product)
    assert (case["order_id"], case["product_id"]) == (order, product)
    headers = api.headers(world.rep, **{"Accept-Language": "zh-CN"})
    refused = api.client.patch(f"/api/v1/cases/{case['id']}", json={"order_id": stranger, "version": case["version"]},
                               headers=headers)
    assert refused.status_code == 422
    assert [(e["field"], e["message"]) for e in refused.json()["errors"]] == [("order_id", "请选择该客户自己的订单。")]
    cleared = api.client.patch(f"/api/v1/cases/{case['id']}", json={"product_id": None, "version": case["version"]},
                               headers=headers)
    assert cleared.status_code == 200 and (cleared.json()["order_id"], cleared.json()["product_id"]) == (order, None)


def test_a_stale_write_is_412_and_nothing_is_written(api: Api, world: World) -> None:
    case = new_case(api, world.rep)
    path = f"/api/v1/cases/{case['id']}"
    assert api.client.patch(path, json={"priority": "low"},
                            headers=api.headers(world.manager, **{"If-Match": '"1"'})).status_code == 200
    headers = api.headers(world.rep, **{"If-Match": '"1"'})
    for answer in (api.client.patch(path, json={"status": "pending"}, headers=headers),
                   api.client.delete(path, headers=headers)):
        assert (answer.status_code, answer.json()["code"]) == (412, "stale_record")
        assert answer.json()["changed_by"] == world.manager.full_name
    current = api.client.get(path, headers=headers).json()
    assert (current["status"], current["priority"], current["version"]) == ("open", "low", 2)


def test_field_errors_are_422_in_the_callers_language(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    body = {"customer_id": customer_id, "subject": " ", "description": "=HYPERLINK(\"http://x\")"}
    english = api.client.post("/api/v1/cases", json=body, headers=api.headers(world.rep))
    chinese = api.client.post("/api/v1/cases", json=body,
                              headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert english.status_code == chinese.status_code == 422
    assert [e["field"] for e in english.json()["errors"]] == ["description", "subject"]
    assert chinese.json()["detail"].startswith("请修改")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in chinese.json()["errors"])
    shape = api.client.post("/api/v1/cases", json={"customer_id": customer_id, "subject": "x", "priority": "critical"},
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert shape.status_code == 422 and shape.json()["errors"][0]["message"] == "请从给定选项中选择。"


def test_the_list_pages_by_cursor_and_filters(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    marker = unique("Pairing")
    made = [new_case(api, world.rep, customer_id=customer_id, subject=f"{marker} {n}")["id"] for n in range(5)]
    headers = api.headers(world.rep)
    query = f"&search={marker}"
    first = api.client.get(f"/api/v1/cases?limit=2&include_total=true{query}", headers=headers).json()
    assert first["total"] == 5 and first["has_more"]
    new_case(api, world.rep, customer_id=customer_id, subject=f"{marker} late")
    rest = listed_ids(api, headers, query + f"&after={first['next_cursor']}", limit=2)
    assert [row["id"] for row in first["data"]] + rest == made[::-1]
    assert listed_ids(api, headers, query + "&priority=high") == []
    wrong = api.client.get(f"/api/v1/cases?limit=2&after={first['next_cursor']}", headers=headers)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_cursor")


def test_the_transition_endpoint_follows_the_flow_and_refuses_with_problem_json(api: Api, world: World) -> None:
    case = new_case(api, world.rep, priority="urgent", channel="phone", category="Hardware")
    assert (case["priority"], case["channel"], case["category"], case["sla_due_at"]) == (
        "urgent", "phone", "Hardware", None)  # no SLA policy in this tenant: no due time
    path = f"/api/v1/cases/{case['id']}/transition"
    headers = api.headers(world.rep)
    held = api.client.post(path, json={"status": "on_hold", "version": case["version"]}, headers=headers)
    assert held.status_code == 200 and held.json()["status"] == "on_hold"
    refused = api.client.post(path, json={"status": "closed", "version": held.json()["version"]}, headers=headers)
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["errors"][0]["field"] == "status"
    patched = api.client.patch(f"/api/v1/cases/{case['id']}", json={"subject": "Renamed",
                               "version": held.json()["version"]}, headers=headers)
    assert (patched.json()["channel"], patched.json()["category"]) == ("phone", "Hardware")  # kept by a PATCH


def test_the_list_sorts_by_sla_due_across_cursor_pages(api: Api, world: World) -> None:
    from crm_core.services import sla_settings

    calendar_id = sla_settings.save_calendar(api.db, world.admin, name=unique("Desk "), time_zone="Asia/Shanghai",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    for priority, minutes in (("urgent", 30), ("high", 120), ("normal", 480), ("low", 1440)):
        sla_settings.save_policy(api.db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=minutes,
            next_response_minutes=minutes, resolution_minutes=minutes * 4))
    customer_id = create_random_customer(api.db, world.rep)
    made = {priority: new_case(api, world.rep, customer_id=customer_id, priority=priority)["id"]
            for priority in ("normal", "urgent", "high")}
    headers = api.headers(world.rep)
    ordered = listed_ids(api, headers, f"&customer_id={customer_id}&sort=sla_due&order=asc", limit=1)
    assert ordered == [made["urgent"], made["high"], made["normal"]]
    first = api.client.get(f"/api/v1/cases/{made['urgent']}", headers=headers).json()
    assert first["sla_due_at"] is not None
