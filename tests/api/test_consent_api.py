"""The consent ledger over the API on every database: a customer's consent read and recorded under the customer's
rule, the do-not-contact list paged by cursor, added by anyone who writes and removed by managers (decision 0047)."""

from __future__ import annotations

from crm_core.services.contacts import ContactInput, create_contact
from tests.api.conftest import Api
from tests.factories import World, create_random_customer


def test_a_customers_consent_is_recorded_and_read_under_the_customers_rule(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep, email="office@xc.cn")
    contact_id = create_contact(api.db, world.rep, ContactInput(customer_id, "Lin Mei", email="Lin@XC.cn"))
    url = f"/api/v1/customers/{customer_id}/consent"
    created = api.client.post(url, headers=api.headers(world.rep), json={
        "contact_id": contact_id, "channel": "email", "action": "grant", "basis": "consent", "proof_kind": "form",
        "proof": "Trade fair form"})
    assert created.status_code == 201, created.text
    body = created.json()
    [granted] = [row for row in body["current"] if row["contact_id"] == contact_id and row["channel"] == "email"]
    assert (granted["state"], granted["address"], granted["basis"], granted["recorded_by"]) == (
        "granted", "lin@xc.cn", "consent", "Rita Rep")
    assert granted["since"].endswith("Z")
    assert [entry["action"] for entry in body["history"]["data"]] == ["grant"]

    wrong = api.client.post(url, headers={**api.headers(world.rep), "Accept-Language": "zh-CN"},
                            json={"channel": "email", "action": "grant", "proof_kind": "manual"})
    assert wrong.status_code == 422 and wrong.headers["content-type"].startswith("application/problem+json")
    fields = {error["field"]: error for error in wrong.json()["errors"]}
    assert set(fields) == {"basis", "proof"} and fields["basis"]["code"] == "consent.error.basis_required"
    assert all(not error["message"].isascii() for error in fields.values())  # in the caller's language

    for _ in range(2):
        assert api.client.post(url, headers=api.headers(world.rep), json={
            "contact_id": contact_id, "channel": "email", "action": "withdraw", "proof_kind": "import"}
        ).status_code == 201
    first = api.client.get(url, headers=api.headers(world.rep), params={"limit": 2}).json()
    assert len(first["history"]["data"]) == 2 and first["history"]["has_more"]
    rest = api.client.get(url, headers=api.headers(world.rep),
                          params={"limit": 2, "after": first["history"]["next_cursor"]}).json()
    assert [entry["action"] for entry in rest["history"]["data"]] == ["grant"]
    assert api.client.get(url, headers=api.headers(world.rep),
                          params={"after": "bm90IGEgY3Vyc29y"}).status_code == 400

    for caller in (world.rep_other_team, world.other_admin):  # not theirs to see
        assert api.client.get(url, headers=api.headers(caller)).status_code == 404
    assert api.client.post(url, headers=api.headers(world.rep_other_team), json={
        "channel": "email", "action": "withdraw", "proof_kind": "import"}).status_code == 404
    assert api.client.post(url, headers=api.headers(world.rep, scope="read"), json={
        "channel": "email", "action": "withdraw", "proof_kind": "import"}).status_code == 403
    assert api.client.get(url, headers=api.headers(world.manager)).status_code == 200
    assert api.client.get(url).status_code == 401


def test_the_do_not_contact_list_over_the_api(api: Api, world: World) -> None:
    added = api.client.post("/api/v1/do-not-contact", headers=api.headers(world.rep),
                            json={"channel": "all", "address": "Zhang@Example.cn", "reason": "said never again"})
    assert added.status_code == 201, added.text
    entry = added.json()
    assert (entry["address"], entry["added_by"]) == ("zhang@example.cn", "Rita Rep")
    assert api.client.get(added.headers["Location"], headers=api.headers(world.rep)).json() == entry
    again = api.client.post("/api/v1/do-not-contact", headers=api.headers(world.rep),
                            json={"channel": "all", "address": "zhang@example.cn"})
    assert again.status_code == 422 and again.json()["errors"][0]["code"] == "consent.error.already_listed"
    for number in range(3):
        assert api.client.post("/api/v1/do-not-contact", headers=api.headers(world.manager),
                               json={"channel": "email", "address": f"n{number}@example.cn"}).status_code == 201
    page = api.client.get("/api/v1/do-not-contact", headers=api.headers(world.analyst),
                          params={"limit": 3, "include_total": "true"}).json()
    assert (len(page["data"]), page["has_more"], page["total"]) == (3, True, 4)
    following = api.client.get("/api/v1/do-not-contact", headers=api.headers(world.analyst),
                               params={"limit": 3, "after": page["next_cursor"]}).json()
    assert [row["address"] for row in following["data"]] == ["zhang@example.cn"]
    found = api.client.get("/api/v1/do-not-contact", headers=api.headers(world.rep), params={"search": "NEVER"})
    assert [row["id"] for row in found.json()["data"]] == [entry["id"]]
    assert api.client.get("/api/v1/do-not-contact", headers=api.headers(world.other_admin)).json()["data"] == []
    assert api.client.post("/api/v1/do-not-contact", headers=api.headers(world.analyst),
                           json={"channel": "all", "address": "a@example.cn"}).status_code == 403

    removal = f"/api/v1/do-not-contact/{entry['id']}"
    assert api.client.delete(removal, headers=api.headers(world.rep)).status_code == 403
    assert api.client.delete(removal, headers=api.headers(world.other_admin)).status_code == 404
    assert api.client.delete(removal, headers=api.headers(world.manager)).status_code == 204
    assert api.client.get(removal, headers=api.headers(world.manager)).status_code == 404
