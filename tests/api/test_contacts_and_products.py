"""/api/v1/contacts and /api/v1/products: the same conventions as customers, under the same rules."""

from __future__ import annotations

from crm_core.services.contacts import ContactInput, create_contact, update_contact
from crm_core.services.duplicate_rules import save_duplicate_rules
from crm_core.services.products import ProductInput, create_product
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def contact_ids(api: Api, headers: dict[str, str], query: str = "") -> list[int]:
    found: list[int] = []
    cursor = None
    while True:
        answer = api.client.get(f"/api/v1/contacts?limit=2{query}" + (f"&after={cursor}" if cursor else ""),
                                headers=headers)
        assert answer.status_code == 200, answer.text
        found += [row["id"] for row in answer.json()["data"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found


def test_contacts_are_visible_with_their_customer_only(api: Api, world: World) -> None:
    mine = create_random_customer(api.db, world.rep)
    far = create_random_customer(api.db, world.rep_other_team)
    own_contact = create_contact(api.db, world.rep, ContactInput(customer_id=mine, name="Mine"))
    far_contact = create_contact(api.db, world.rep_other_team, ContactInput(customer_id=far, name="Far"))
    rep = api.headers(world.rep, **{"If-Match": '"1"'})
    seen = contact_ids(api, rep)
    assert own_contact in seen and far_contact not in seen
    assert api.client.get(f"/api/v1/contacts/{far_contact}", headers=rep).status_code == 404
    assert api.client.patch(f"/api/v1/contacts/{far_contact}", json={"name": "X"}, headers=rep).status_code == 404
    assert api.client.post("/api/v1/contacts", json={"customer_id": far, "name": "Sneak"},
                           headers=rep).status_code == 404
    other_tenant = api.headers(world.other_admin)
    assert own_contact not in contact_ids(api, other_tenant)
    assert api.client.get(f"/api/v1/contacts/{own_contact}", headers=other_tenant).status_code == 404
    assert {own_contact, far_contact} <= set(contact_ids(api, api.headers(world.analyst)))


def test_a_contact_is_added_edited_and_archived(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    created = api.client.post("/api/v1/contacts", headers=headers, json={
        "customer_id": customer_id, "name": "Lin Mei", "email": "lin@example.com", "is_primary": True})
    assert created.status_code == 201, created.text
    contact = created.json()
    assert (contact["customer_id"], contact["is_primary"], contact["version"]) == (customer_id, True, 1)
    path = f"/api/v1/contacts/{contact['id']}"
    patched = api.client.patch(path, json={"title": "Director", "version": 1}, headers=headers)
    assert patched.status_code == 200 and patched.json()["title"] == "Director"
    assert patched.json()["email"] == "lin@example.com" and patched.headers["etag"] == '"2"'
    assert contact_ids(api, headers, f"&customer_id={customer_id}") == [contact["id"]]
    archived = api.client.delete(path, headers={**headers, "If-Match": '"2"'})
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert contact_ids(api, headers, f"&customer_id={customer_id}") == []
    refused = api.client.post("/api/v1/contacts", json={"customer_id": customer_id, "name": " ", "email": "x"},
                              headers={**headers, "Accept-Language": "zh-CN"})
    assert refused.status_code == 422 and {e["field"] for e in refused.json()["errors"]} == {"name", "email"}


def test_a_stale_contact_edit_is_412(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    contact_id = create_contact(api.db, world.rep, ContactInput(customer_id=customer_id, name="Old"))
    update_contact(api.db, world.manager, contact_id, ContactInput(customer_id=customer_id, name="New"),
                   expected_version=1)
    answer = api.client.patch(f"/api/v1/contacts/{contact_id}", json={"title": "X"},
                              headers=api.headers(world.rep, **{"If-Match": '"1"'}))
    assert answer.status_code == 412 and answer.json()["code"] == "stale_record"
    assert answer.json()["changed_by"] == world.manager.full_name


def test_contacts_page_by_cursor_and_search(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    stamp = unique("Q")
    made = [create_contact(api.db, world.rep, ContactInput(customer_id=customer_id, name=f"{stamp} {n}"))
            for n in range(5)]
    headers = api.headers(world.rep)
    for sort in ("name", "created_at", "updated_at"):
        for order in ("asc", "desc"):
            assert sorted(contact_ids(api, headers, f"&search={stamp}&sort={sort}&order={order}")) == made
    page = api.client.get(f"/api/v1/contacts?limit=2&search={stamp}&include_total=true", headers=headers).json()
    assert (page["total"], page["has_more"]) == (5, True)
    foreign = api.client.get(f"/api/v1/contacts?limit=2&after={page['next_cursor']}", headers=headers)
    assert foreign.status_code == 400


def test_products_are_read_by_all_and_written_by_managers(api: Api, world: World) -> None:
    sku = unique("SKU-")
    created = api.client.post("/api/v1/products", json={"sku": sku, "name": "Scanner", "unit_price": "1,200.50"},
                              headers=api.headers(world.manager))
    assert created.status_code == 201, created.text
    product = created.json()
    assert (product["unit_price"], product["currency"]) == ("1200.50", "CNY")
    path = f"/api/v1/products/{product['id']}"
    rep = api.headers(world.rep, **{"If-Match": '"1"'})
    assert api.client.get(path, headers=rep).json() == product
    assert api.client.patch(path, json={"name": "Mine now"}, headers=rep).status_code == 403
    assert api.client.post("/api/v1/products", json={"sku": unique("S"), "name": "N"}, headers=rep).status_code == 403
    assert api.client.get(path, headers=api.headers(world.other_admin)).status_code == 404
    admin = api.headers(world.admin)
    taken = api.client.post("/api/v1/products", json={"sku": sku, "name": "Again"}, headers=admin)
    assert taken.status_code == 422 and [e["field"] for e in taken.json()["errors"]] == ["sku"]
    patched = api.client.patch(path, json={"unit_price": 99.5, "version": 1}, headers=admin)
    assert patched.status_code == 200 and patched.json()["unit_price"] == "99.50"
    bad_price = api.client.patch(path, json={"unit_price": "abc", "version": 2}, headers=admin)
    assert bad_price.status_code == 422 and bad_price.json()["errors"][0]["field"] == "unit_price"
    archived = api.client.delete(path, headers={**admin, "If-Match": '"2"'})
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None


def test_products_page_by_name(api: Api, world: World) -> None:
    stamp = unique("P")
    made = {create_product(api.db, world.admin, ProductInput(sku=f"{stamp}-{n}", name=f"{stamp} {n % 2}"))
            for n in range(5)}
    headers = api.headers(world.rep)
    seen: list[int] = []
    cursor = None
    while True:
        page = api.client.get(f"/api/v1/products?limit=2&search={stamp}" + (f"&after={cursor}" if cursor else ""),
                              headers=headers).json()
        seen += [row["id"] for row in page["data"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert set(seen) == made and len(seen) == 5


def test_a_duplicate_contact_is_409_with_its_ids_only_when_the_caller_may_see_its_customer(
    api: Api, world: World
) -> None:
    far = create_random_customer(api.db, world.rep_other_team)
    mine = create_random_customer(api.db, world.rep)
    email = f"{unique('person')}@example.com"
    existing = create_contact(api.db, world.rep_other_team, ContactInput(customer_id=far, name="Far", email=email))
    body = {"customer_id": mine, "name": "Near", "email": email.upper()}
    hidden = api.client.post("/api/v1/contacts", json=body, headers=api.headers(world.rep))
    assert hidden.status_code == 409 and hidden.headers["content-type"].startswith("application/problem+json")
    problem = hidden.json()
    assert (problem["code"], problem["entity"], problem["matched_on"], problem["action"]) == (
        "duplicate", "contact", "email", "warn")
    assert "existing_id" not in problem and "customer_id" not in problem
    assert problem["detail"] == (
        "A contact with the same email already exists at a customer owned by Fay Faraway, which you cannot open.")
    seen = api.client.post("/api/v1/contacts", json=body, headers=api.headers(world.admin))
    assert seen.status_code == 409 and (seen.json()["existing_id"], seen.json()["customer_id"]) == (existing, far)
    confirmed = api.client.post("/api/v1/contacts?allow_duplicate=true", json=body, headers=api.headers(world.rep))
    assert confirmed.status_code == 201, confirmed.text

    # a blocking rule: a rep's confirmation does not lift it; a PATCH is checked on the keys it changes
    save_duplicate_rules(api.db, world.admin, {"phone": "block"}, "contact")
    create_contact(api.db, world.rep_other_team, ContactInput(customer_id=far, name="Phone", phone="13700137000"))
    path = f"/api/v1/contacts/{confirmed.json()['id']}"
    headers = {**api.headers(world.rep), "If-Match": '"1"', "Accept-Language": "zh-CN"}
    assert api.client.patch(path, json={"title": "Buyer"}, headers=headers).status_code == 200  # email unchanged
    headers["If-Match"] = '"2"'
    blocked = api.client.patch(path, json={"phone": "+86 137 0013 7000"}, params={"allow_duplicate": "true"},
                               headers=headers)
    assert (blocked.status_code, blocked.json()["action"], blocked.json()["matched_on"]) == (409, "block", "phone")
    assert "禁止再次添加" in blocked.json()["detail"]
    admin = {**api.headers(world.admin), "If-Match": '"2"'}
    overridden = api.client.patch(path, json={"phone": "+86 137 0013 7000"}, params={"allow_duplicate": "true"},
                                  headers=admin)
    assert overridden.status_code == 200, overridden.text
