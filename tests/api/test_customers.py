"""/api/v1/customers: the grid and the form over HTTP, under the token user's rules, on every database."""

from __future__ import annotations

from typing import Any

import pytest

from crm_api import customers as customers_module
from crm_core.services.customers import CustomerInput, update_customer
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def listed_ids(api: Api, headers: dict[str, str], query: str = "") -> list[int]:
    """Every id the list gives, following the cursors."""
    found: list[int] = []
    cursor = None
    while True:
        suffix = f"&after={cursor}" if cursor else ""
        answer = api.client.get(f"/api/v1/customers?limit=100{query}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


# --- isolation ------------------------------------------------------------------------


def test_a_token_of_tenant_b_never_reads_or_writes_tenant_a(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.admin)
    other = api.headers(world.other_admin, **{"If-Match": '"1"'})
    assert customer_id not in listed_ids(api, other)
    assert api.client.get(f"/api/v1/customers/{customer_id}", headers=other).status_code == 404
    stolen = api.client.patch(f"/api/v1/customers/{customer_id}", json={"name": "Stolen"}, headers=other)
    assert stolen.status_code == 404
    assert api.client.delete(f"/api/v1/customers/{customer_id}", headers=other).status_code == 404
    contact = api.client.post("/api/v1/contacts", json={"customer_id": customer_id, "name": "Spy"}, headers=other)
    assert contact.status_code == 404
    mine = api.headers(world.admin)
    assert api.client.get(f"/api/v1/customers/{customer_id}", headers=mine).json()["version"] == 1


def test_a_rep_sees_only_their_own_customers_and_a_manager_their_team(api: Api, world: World) -> None:
    own = create_random_customer(api.db, world.rep)
    teammate = create_random_customer(api.db, world.rep_same_team)
    far = create_random_customer(api.db, world.rep_other_team)
    rep = api.headers(world.rep)
    seen = set(listed_ids(api, rep))
    assert own in seen and teammate not in seen and far not in seen
    assert api.client.get(f"/api/v1/customers/{far}", headers=rep).status_code == 404
    manager = set(listed_ids(api, api.headers(world.manager)))
    assert {own, teammate} <= manager and far not in manager
    assert {own, teammate, far} <= set(listed_ids(api, api.headers(world.analyst)))


def test_a_duplicate_names_the_existing_customer_only_when_the_caller_may_see_it(api: Api, world: World) -> None:
    email = f"{unique('dup')}@example.com"
    create_random_customer(api.db, world.rep_other_team, email=email)
    answer = api.client.post("/api/v1/customers", json={"name": unique("Lead "), "email": email},
                             headers=api.headers(world.rep))
    assert answer.status_code == 409
    assert answer.json()["matched_on"] == "email" and "existing_id" not in answer.json()
    # the record stays hidden; whom to ask is said (查重)
    assert answer.json()["detail"] == "A customer with the same email already exists:  (owner: Fay Faraway)"
    seen_by_admin = api.client.post("/api/v1/customers", json={"name": unique("Lead "), "email": email},
                                    headers=api.headers(world.admin))
    assert seen_by_admin.status_code == 409 and isinstance(seen_by_admin.json()["existing_id"], int)


def test_credit_code_and_region_codes_travel_and_a_blocked_duplicate_says_so(api: Api, world: World) -> None:
    headers = api.headers(world.rep)
    created = api.client.post("/api/v1/customers", headers=headers, json={
        "name": unique("杭州 "), "credit_code": "91330106-ma2h00001e", "province_code": "330000",
        "city_code": "330100", "district_code": "330106", "phone": "0571-8765 4321"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["credit_code"], body["province_code"], body["city_code"], body["district_code"]) == (
        "91330106MA2H00001E", "330000", "330100", "330106")
    path = f"/api/v1/customers/{body['id']}"
    patched = api.client.patch(path, json={"industry": "Retail"}, headers={**headers, "If-Match": '"1"'})
    assert patched.json()["credit_code"] == "91330106MA2H00001E"  # a PATCH keeps what it does not name
    in_province = api.client.get("/api/v1/customers?province_code=330000", headers=headers).json()["data"]
    assert [row["id"] for row in in_province] == [body["id"]]
    assert api.client.get("/api/v1/customers?province_code=440000", headers=headers).json()["data"] == []
    # another team's rep: blocked by the default credit-code rule, allow_duplicate does not lift it
    blocked = api.client.post("/api/v1/customers?allow_duplicate=true", headers=api.headers(world.rep_other_team),
                              json={"name": unique("Other "), "credit_code": "91330106MA2H00001E"})
    assert blocked.status_code == 409
    assert (blocked.json()["action"], blocked.json()["matched_on"]) == ("block", "credit_code")
    assert "existing_id" not in blocked.json() and "Rita Rep" in blocked.json()["detail"]
    assert body["name"] not in blocked.json()["detail"]
    # an edit to a warned key is a 409 until the caller confirms it
    other = api.client.post("/api/v1/customers", headers=headers, json={"name": unique("Y "), "phone": "0571-1234567"})
    other_path = f"/api/v1/customers/{other.json()['id']}"
    warned = api.client.patch(other_path, json={"phone": "0571 8765 4321"}, headers={**headers, "If-Match": '"1"'})
    assert (warned.status_code, warned.json()["action"], warned.json()["matched_on"]) == (409, "warn", "phone")
    confirmed = api.client.patch(other_path, json={"phone": "0571 8765 4321"}, params={"allow_duplicate": "true"},
                                 headers={**headers, "If-Match": '"1"'})
    assert confirmed.status_code == 200 and confirmed.json()["phone"] == "0571 8765 4321"
    wrong_region = api.client.post("/api/v1/customers", headers=headers, json={
        "name": unique("X "), "credit_code": "91440300MA5F0A1B2N", "province_code": "330000"},
        params={"allow_duplicate": "true"})
    assert wrong_region.status_code == 422
    assert "credit_code" in str(wrong_region.json()["errors"])


# --- the form -------------------------------------------------------------------------


def test_create_read_update_archive_and_restore(api: Api, world: World) -> None:
    headers = api.headers(world.rep)
    created = api.client.post("/api/v1/customers", headers=headers, json={
        "name": unique("Web lead "), "email": "lead@example.com", "tags": ["web", "expo"], "source": "website"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["owner_id"] == world.rep.user_id  # omitted: the caller, as the form's default
    assert body["tags"] == ["web", "expo"] and body["version"] == 1
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"].endswith(f"/api/v1/customers/{body['id']}")
    path = f"/api/v1/customers/{body['id']}"
    got = api.client.get(path, headers=headers)
    assert got.json() == body and got.headers["etag"] == '"1"'
    patched = api.client.patch(path, json={"lifecycle_stage": "intent", "region": "East"},
                               headers={**headers, "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["lifecycle_stage"], patched.json()["region"], patched.json()["name"]) == (
        "intent", "East", body["name"])
    assert patched.json()["email"] == "lead@example.com" and patched.headers["etag"] == '"2"'
    by_body_version = api.client.patch(path, json={"region": "West", "version": 2}, headers=headers)
    assert by_body_version.status_code == 200 and by_body_version.json()["version"] == 3
    archived = api.client.delete(path, headers={**headers, "If-Match": '"3"'})
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert body["id"] not in listed_ids(api, headers)
    assert body["id"] in listed_ids(api, headers, "&include_archived=true")
    restored = api.client.post(f"{path}/restore", headers={**headers, "If-Match": archived.headers["etag"]})
    assert restored.status_code == 200 and restored.json()["archived_at"] is None


def test_owner_null_leaves_the_customer_unowned_on_the_reps_team(api: Api, world: World) -> None:
    answer = api.client.post("/api/v1/customers", json={"name": unique("Unowned "), "owner_id": None},
                             headers=api.headers(world.rep))
    assert answer.status_code == 201 and answer.json()["owner_id"] is None


def test_a_stale_write_is_412_with_who_changed_what_and_nothing_is_written(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    name = api.client.get(f"/api/v1/customers/{customer_id}", headers=api.headers(world.rep)).json()["name"]
    update_customer(api.db, world.manager, customer_id,
                    CustomerInput(name=name, owner_id=world.rep.user_id, lifecycle_stage="intent"),
                    expected_version=1)
    path = f"/api/v1/customers/{customer_id}"
    headers = api.headers(world.rep, **{"If-Match": '"1"'})
    for answer in (api.client.patch(path, json={"region": "North"}, headers=headers),
                   api.client.delete(path, headers=headers)):
        assert answer.status_code == 412
        problem = answer.json()
        assert (problem["code"], problem["changed_by"]) == ("stale_record", world.manager.full_name)
        assert problem["changes"]["lifecycle_stage"] == {"from": "prospect", "to": "intent"}
        assert problem["changed_at"].endswith("Z")
    current = api.client.get(path, headers=headers).json()
    assert (current["version"], current["region"], current["archived_at"]) == (2, None, None)


def test_a_patch_may_leave_out_a_required_field_but_not_null_it(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep, industry="Retail")
    path = f"/api/v1/customers/{customer_id}"
    headers = api.headers(world.rep, **{"If-Match": '"1"'})
    for field in ("name", "kind", "lifecycle_stage", "tags", "custom_fields", "version"):
        answer = api.client.patch(path, json={field: None}, headers=headers)
        assert answer.status_code == 422, field
        assert [(e["field"], e["code"]) for e in answer.json()["errors"]] == [(field, "validation.required")]
    cleared = api.client.patch(path, json={"industry": None}, headers=headers)
    assert cleared.status_code == 200 and cleared.json()["industry"] is None


def test_answers_give_moments_in_utc_with_z(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    body = api.client.get(f"/api/v1/customers/{customer_id}", headers=api.headers(world.rep)).json()
    assert body["created_at"].endswith("Z") and body["updated_at"].endswith("Z")


@pytest.mark.parametrize(("if_match", "body", "status", "code"), [
    (None, {"region": "North"}, 428, "precondition_required"),
    ('W/"1"', {"region": "North"}, 412, "precondition_failed"),
    ('"one"', {"region": "North"}, 400, "malformed_if_match"),
    ("c", {"region": "North"}, 400, "malformed_if_match"),
    ("*", {"region": "North"}, 428, "precondition_required"),
    ('"1"', {"region": "North", "version": 2}, 412, "precondition_failed"),
])
def test_a_write_must_name_the_version_it_changes(api: Api, world: World, if_match: str | None,
                                                  body: dict[str, Any], status: int, code: str) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep, **({"If-Match": if_match} if if_match else {}))
    answer = api.client.patch(f"/api/v1/customers/{customer_id}", json=body, headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_field_errors_are_422_in_the_callers_language(api: Api, world: World) -> None:
    body = {"name": " ", "email": "not-an-email"}
    english = api.client.post("/api/v1/customers", json=body, headers=api.headers(world.rep))
    chinese = api.client.post("/api/v1/customers", json=body,
                              headers=api.headers(world.rep, **{"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"}))
    assert english.status_code == chinese.status_code == 422
    assert [e["field"] for e in english.json()["errors"]] == ["email", "name"]
    assert [e["code"] for e in english.json()["errors"]] == [e["code"] for e in chinese.json()["errors"]]
    assert english.json()["detail"].startswith("Please correct")
    assert chinese.json()["detail"].startswith("请修改")
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in chinese.json()["errors"])
    shape = api.client.post("/api/v1/customers", json={"name": "X", "kind": "alien", "colour": "red"},
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert shape.status_code == 422
    assert {(e["field"], e["code"]) for e in shape.json()["errors"]} == {
        ("kind", "validation.choice"), ("colour", "api.validation.unknown_field")}
    assert {e["message"] for e in shape.json()["errors"]} == {"未知字段。", "请从给定选项中选择。"}


# --- idempotency ----------------------------------------------------------------------


def test_the_same_idempotency_key_and_body_replays_the_first_answer(api: Api, world: World) -> None:
    headers = api.headers(world.rep, **{"Idempotency-Key": "form-submit-1"})
    body = {"name": unique("Idem "), "email": f"{unique('idem')}@example.com"}
    first = api.client.post("/api/v1/customers", json=body, headers=headers)
    again = api.client.post("/api/v1/customers", content=(  # same JSON, other key order and spacing
        f'{{ "email": "{body["email"]}", "name": "{body["name"]}" }}'),
        headers={**headers, "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert "idempotent-replayed" not in first.headers
    other = api.client.post("/api/v1/customers", json={**body, "name": "Other"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert listed_ids(api, headers).count(first.json()["id"]) == 1


def test_a_refused_request_is_replayed_too_but_a_conflict_is_not_kept(api: Api, world: World) -> None:
    headers = api.headers(world.rep, **{"Idempotency-Key": "bad-email"})
    first = api.client.post("/api/v1/customers", json={"name": "X", "email": "nope"}, headers=headers)
    again = api.client.post("/api/v1/customers", json={"name": "X", "email": "nope"}, headers=headers)
    assert first.status_code == again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    email = f"{unique('taken')}@example.com"
    create_random_customer(api.db, world.rep, email=email)
    dup_headers = {**headers, "Idempotency-Key": "dup"}
    assert api.client.post("/api/v1/customers", json={"name": "Y", "email": email}, headers=dup_headers
                           ).status_code == 409
    assert "idempotent-replayed" not in api.client.post(
        "/api/v1/customers", json={"name": "Y", "email": email}, headers=dup_headers).headers


def test_a_key_still_in_flight_is_409(api: Api, world: World) -> None:
    from crm_api.routing import request_hash
    from crm_core.services.api_tokens import authenticate_token
    from crm_core.services.idempotency import ClaimOutcome, claim_key

    secret = api.token(world.rep)
    caller = authenticate_token(api.db, secret)
    assert caller is not None
    raw = b'{"name":"Slow"}'
    path = "/api/v1/customers"
    claim = claim_key(api.db, tenant_id=world.rep.tenant_id, token_id=caller.token_id, key="slow",
                      method="POST", path=path, request_hash=request_hash("POST", path, raw))
    assert claim.outcome is ClaimOutcome.CLAIMED
    answer = api.client.post("/api/v1/customers", content=raw, headers={
        "Authorization": f"Bearer {secret}", "Idempotency-Key": "slow", "Content-Type": "application/json"})
    assert (answer.status_code, answer.json()["code"]) == (409, "idempotency_key_in_flight")


def test_keys_belong_to_one_token(api: Api, world: World) -> None:
    body = {"name": unique("Per token ")}
    first = api.client.post("/api/v1/customers", json=body, headers=api.headers(world.rep, **{"Idempotency-Key": "k"}))
    other_token = api.client.post("/api/v1/customers", json={**body, "name": unique("Per token ")},
                                  headers=api.headers(world.rep, **{"Idempotency-Key": "k"}))
    assert first.status_code == other_token.status_code == 201
    assert first.json()["id"] != other_token.json()["id"]


# --- paging ---------------------------------------------------------------------------


def test_the_cursor_is_stable_under_inserts(api: Api, world: World) -> None:
    headers = api.headers(world.rep)
    before = [create_random_customer(api.db, world.rep) for _ in range(7)]
    first = api.client.get("/api/v1/customers?limit=3", headers=headers).json()
    inserted = [create_random_customer(api.db, world.rep) for _ in range(3)]
    seen = [row["id"] for row in first["data"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api.client.get(f"/api/v1/customers?limit=3&after={cursor}", headers=headers).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))  # nothing repeated
    assert set(before) <= set(seen) and not set(inserted) & set(seen)  # nothing skipped; newer rows come first


@pytest.mark.parametrize("sort", ["updated_at", "created_at", "name", "lifecycle_stage"])
@pytest.mark.parametrize("order", ["asc", "desc"])
def test_every_sort_pages_through_every_row_once(api: Api, world: World, sort: str, order: str) -> None:
    made = {create_random_customer(api.db, world.rep, name=f"Same name {unique('')[:0]}", lifecycle_stage=stage)
            for stage in ("prospect", "intent", "prospect", "customer", "intent")}
    seen = listed_ids(api, api.headers(world.rep), f"&sort={sort}&order={order}".replace("limit=100", ""))
    assert made <= set(seen) and len(seen) == len(set(seen))


def test_limit_and_total(api: Api, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(4):
        create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    page = api.client.get("/api/v1/customers?limit=2&include_total=true", headers=headers).json()
    assert (len(page["data"]), page["has_more"], page["total"], page["total_capped"]) == (2, True, 4, False)
    assert api.client.get("/api/v1/customers?limit=2", headers=headers).json()["total"] is None
    monkeypatch.setattr(customers_module, "COUNT_CAP", 3)
    capped = api.client.get("/api/v1/customers?limit=2&include_total=true", headers=headers).json()
    assert (capped["total"], capped["total_capped"]) == (3, True)
    for limit in ("0", "101", "x"):
        assert api.client.get(f"/api/v1/customers?limit={limit}", headers=headers).status_code == 422


def test_filters_and_search_are_the_grids(api: Api, world: World) -> None:
    stamp = unique("Zebra")
    wanted = create_random_customer(api.db, world.rep, name=f"{stamp} Trading", industry="Retail", region="East",
                                    tags="vip", lifecycle_stage="intent")
    create_random_customer(api.db, world.rep, name=f"{stamp} Other", industry="Energy")
    headers = api.headers(world.rep)
    for query in (f"&search={stamp}&industry=Retail", "&industry=Retail&region=East&tag=vip&lifecycle_stage=intent"):
        assert listed_ids(api, headers, query) == [wanted], query


@pytest.mark.parametrize("mangle", [
    lambda c: c + "x", lambda c: "!!!" + c, lambda c: c[:-4], lambda c: "e30",  # "{}"
    lambda c: "WyJhIl0",  # ["a"]
])
def test_a_tampered_or_foreign_cursor_is_400(api: Api, world: World, mangle: Any) -> None:
    for _ in range(3):
        create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    cursor = api.client.get("/api/v1/customers?limit=1", headers=headers).json()["next_cursor"]
    answer = api.client.get(f"/api/v1/customers?limit=1&after={mangle(cursor)}", headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_cursor")
    for other in ("&sort=name", "&order=asc", "&industry=Retail"):
        foreign = api.client.get(f"/api/v1/customers?limit=1&after={cursor}{other}", headers=headers)
        assert foreign.status_code == 400, other
