"""Merges over the API (issue 17): POST …/merge under If-Match, problem+json refusals, and a merged id
that answers 308 with the survivor's URL; on every database."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Contact, Customer
from crm_core.services.contacts import ContactInput, create_contact
from tests.api.conftest import Api
from tests.factories import World, create_random_customer


def version(api: Api, model: type, record_id: int) -> int:
    with api.db.system_session("test") as session:
        return int(session.execute(select(model.version).where(model.id == record_id)).scalar_one())  # type: ignore[attr-defined]


def merge(api: Api, actor: object, survivor: int, merged: int, *, resource: str = "customers",
          choices: dict[str, str] | None = None, if_match: str | None = None, merged_version: int | None = None,
          language: str = "en", scope: str = "read_write"):  # type: ignore[no-untyped-def]
    model = Customer if resource == "customers" else Contact
    extra = {"If-Match": if_match or f'"{version(api, model, survivor)}"', "Accept-Language": language}
    body = {"merged_id": merged, "merged_version": merged_version or version(api, model, merged),
            "field_choices": choices or {}}
    return api.client.post(f"/api/v1/{resource}/{survivor}/merge", json=body,
                           headers=api.headers(actor, scope, **extra))  # type: ignore[arg-type]


def test_a_manager_merges_over_the_api_and_the_old_id_answers_308(api: Api, world: World) -> None:
    survivor = create_random_customer(api.db, world.rep, email="")
    merged = create_random_customer(api.db, world.rep_same_team, email="old@kestrel.example", phone="021 5555 0100")
    create_contact(api.db, world.rep_same_team, ContactInput(merged, "Lin Mei"))
    answer = merge(api, world.manager, survivor, merged, choices={"phone": "survivor"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["survivor"]["id"] == survivor and body["merged_id"] == merged
    assert body["survivor"]["email"] == "old@kestrel.example" and body["survivor"]["phone"] is None
    assert body["moved"]["contacts.customer_id"] == 1
    assert answer.headers["ETag"] == f'"{body["survivor"]["version"]}"'

    old = api.client.get(f"/api/v1/customers/{merged}", headers=api.headers(world.manager), follow_redirects=False)
    assert old.status_code == 308
    assert old.headers["Location"].endswith(f"/api/v1/customers/{survivor}")
    assert old.headers["content-type"].startswith("application/problem+json")
    assert old.json()["code"] == "merged" and old.json()["survivor_id"] == survivor
    # one who could not see the old record learns nothing of where it went
    hidden = api.client.get(f"/api/v1/customers/{merged}", headers=api.headers(world.rep_other_team),
                            follow_redirects=False)
    assert hidden.status_code == 404
    followed = api.client.get(f"/api/v1/customers/{merged}", headers=api.headers(world.manager))
    assert followed.status_code == 200 and followed.json()["id"] == survivor
    # a write with the old record's version follows to the survivor and is refused as stale, never applied
    stale = api.client.patch(f"/api/v1/customers/{merged}", json={"industry": "Retail"},
                             headers=api.headers(world.manager, **{"If-Match": f'"{version(api, Customer, merged)}"'}))
    assert stale.status_code == 412
    action = api.client.post(f"/api/v1/customers/{merged}/release", headers=api.headers(world.manager),
                             follow_redirects=False)
    assert action.status_code == 308 and action.headers["Location"].endswith(f"/customers/{survivor}/release")


def test_refusals_are_problems_with_codes(api: Api, world: World) -> None:
    survivor = create_random_customer(api.db, world.rep)
    merged = create_random_customer(api.db, world.rep)
    far = create_random_customer(api.db, world.rep_other_team)
    no_version = api.client.post(f"/api/v1/customers/{survivor}/merge",
                                 json={"merged_id": merged, "merged_version": 1}, headers=api.headers(world.admin))
    assert no_version.status_code == 428
    itself = merge(api, world.admin, survivor, survivor)
    assert itself.status_code == 409 and itself.json()["code"] == "merge.error.same_record"
    stale = merge(api, world.admin, survivor, merged, merged_version=99)
    assert stale.status_code == 412 and stale.json()["code"] == "stale_record"
    bad_choice = merge(api, world.admin, survivor, merged, choices={"name": "both"}, language="zh-CN")
    assert bad_choice.status_code == 422
    assert bad_choice.json()["errors"][0]["field"] == "field_choices.name"
    unknown = api.client.post(f"/api/v1/customers/{survivor}/merge", json={"merged_id": merged, "merged_version": 1,
                                                                            "colour": "red"},
                              headers=api.headers(world.admin, **{"If-Match": '"1"'}))
    assert unknown.status_code == 422
    # reps and read-only tokens may not merge; a manager not what they cannot see; tenants are apart
    assert merge(api, world.rep, survivor, merged).status_code == 403
    assert merge(api, world.manager, survivor, merged, scope="read").status_code == 403
    assert merge(api, world.manager, survivor, far).status_code == 404
    assert merge(api, world.other_admin, survivor, merged).status_code == 404
    assert merge(api, world.admin, survivor, merged).status_code == 200
    again = merge(api, world.admin, far, merged, merged_version=version(api, Customer, merged))
    assert again.status_code == 409 and again.json()["code"] == "merge.error.already_merged"
    assert "already merged" in again.json()["detail"]


def test_contacts_merge_over_the_api(api: Api, world: World) -> None:
    customer = create_random_customer(api.db, world.rep)
    kept = create_contact(api.db, world.rep, ContactInput(customer, "Lin Mei", email="lin@kestrel.example"))
    duplicate = create_contact(api.db, world.rep, ContactInput(customer, "Lin Mei", phone="138 0013 8000"))
    answer = merge(api, world.manager, kept, duplicate, resource="contacts")
    assert answer.status_code == 200, answer.text
    assert answer.json()["survivor"]["phone"] == "138 0013 8000"
    old = api.client.get(f"/api/v1/contacts/{duplicate}", headers=api.headers(world.rep), follow_redirects=False)
    assert old.status_code == 308 and old.headers["Location"].endswith(f"/api/v1/contacts/{kept}")
