"""/api/v1/users: the Users page over HTTP, admins only, on every database."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from tests.factories import World, unique

PASSWORD = "Kestrel-2026-ok"


def new_user(api: Api, world: World, **fields: Any) -> dict[str, Any]:
    """A rep added through the API by the tenant's admin."""
    body = {"username": unique("apiuser"), "full_name": "Api User", "role": "rep", "password": PASSWORD, **fields}
    answer = api.client.post("/api/v1/users", json=body, headers=api.headers(world.admin))
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


def listed_ids(api: Api, headers: dict[str, str], query: str = "", limit: int = 100) -> list[int]:
    """Every id the list gives, following the cursors."""
    found: list[int] = []
    cursor = None
    while True:
        suffix = f"&after={cursor}" if cursor else ""
        answer = api.client.get(f"/api/v1/users?limit={limit}{query}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        found += [row["id"] for row in answer.json()["data"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found


def test_only_an_admin_reads_or_writes_users(api: Api, world: World) -> None:
    for actor in (world.manager, world.rep, world.analyst):
        headers = api.headers(actor, **{"If-Match": '"1"'})
        assert api.client.get("/api/v1/users", headers=headers).status_code == 403
        assert api.client.get(f"/api/v1/users/{world.rep.user_id}", headers=headers).status_code == 403
        assert api.client.patch(f"/api/v1/users/{world.rep.user_id}", json={"role": "admin"},
                                headers=headers).status_code == 403
        made = api.client.post("/api/v1/users", headers=headers, json={
            "username": unique("sneak"), "full_name": "S", "role": "admin", "password": PASSWORD})
        assert made.status_code == 403
    read_only = api.headers(world.admin, scope="read", **{"If-Match": '"1"'})
    assert api.client.get("/api/v1/users", headers=read_only).status_code == 200
    assert api.client.patch(f"/api/v1/users/{world.rep.user_id}", json={"role": "admin"},
                            headers=read_only).status_code == 403
    rep = api.client.get(f"/api/v1/users/{world.rep.user_id}", headers=api.headers(world.admin)).json()
    assert rep["role"] == "rep"


def test_a_token_of_tenant_b_never_sees_tenant_a_users(api: Api, world: World) -> None:
    other = api.headers(world.other_admin, **{"If-Match": '"1"'})
    assert world.rep.user_id not in listed_ids(api, other)
    assert api.client.get(f"/api/v1/users/{world.rep.user_id}", headers=other).status_code == 404
    assert api.client.patch(f"/api/v1/users/{world.rep.user_id}", json={"is_active": False},
                            headers=other).status_code == 404
    assert api.client.get(f"/api/v1/users/{world.rep.user_id}", headers=api.headers(world.admin)).json()["is_active"]


def test_create_get_patch_and_no_password_in_answers(api: Api, world: World) -> None:
    created = new_user(api, world, team_id=world.east_team_id, email="api.user@example.com")
    assert "password" not in created and "password_hash" not in created
    assert (created["role"], created["team_name"], created["is_active"]) == ("rep", "East", True)
    path = f"/api/v1/users/{created['id']}"
    headers = api.headers(world.admin)
    assert api.client.get(path, headers=headers).json() == created
    patched = api.client.patch(path, json={"role": "manager", "team_id": world.west_team_id},
                               headers={**headers, "If-Match": f'"{created["version"]}"'})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["role"], patched.json()["team_name"], patched.json()["email"]) == (
        "manager", "West", "api.user@example.com")
    assert api.client.delete(path, headers=headers).status_code == 405  # no delete: deactivate


def test_deactivating_a_user_stops_their_tokens_at_once(api: Api, world: World) -> None:
    created = new_user(api, world)
    from crm_core.services.auth import load_actor

    actor = load_actor(api.db, created["username"])
    assert actor is not None
    token = {"Authorization": f"Bearer {api.token(actor)}"}
    assert api.client.get("/api/v1/customers", headers=token).status_code == 200
    off = api.client.patch(f"/api/v1/users/{created['id']}", json={"is_active": False, "version": created["version"]},
                           headers=api.headers(world.admin))
    assert off.status_code == 200 and off.json()["is_active"] is False
    refused = api.client.get("/api/v1/customers", headers=token)
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthenticated")
    back = api.client.patch(f"/api/v1/users/{created['id']}", headers=api.headers(world.admin),
                            json={"is_active": True, "version": off.json()["version"]})
    assert back.status_code == 200
    assert api.client.get("/api/v1/customers", headers=token).status_code == 200


def test_password_rules_and_field_errors_in_the_callers_language(api: Api, world: World) -> None:
    body = {"username": unique("weak"), "full_name": " ", "role": "rep", "password": "short1", "email": "nope"}
    english = api.client.post("/api/v1/users", json=body, headers=api.headers(world.admin))
    chinese = api.client.post("/api/v1/users", json=body,
                              headers=api.headers(world.admin, **{"Accept-Language": "zh-CN"}))
    assert english.status_code == chinese.status_code == 422
    assert [e["field"] for e in english.json()["errors"]] == ["email", "full_name", "password"]
    assert [e["code"] for e in chinese.json()["errors"]][2] == "password.too_short"
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in chinese.json()["errors"])
    taken = api.client.post("/api/v1/users", headers=api.headers(world.admin), json={
        "username": world.rep.username, "full_name": "Again", "role": "rep", "password": PASSWORD})
    assert taken.status_code == 422 and taken.json()["errors"][0]["code"] == "user.username_taken"
    unknown_team = api.client.patch(f"/api/v1/users/{world.rep.user_id}", json={"team_id": 2_000_000_000},
                                    headers=api.headers(world.admin, **{"If-Match": '"1"'}))
    assert unknown_team.status_code == 422 and unknown_team.json()["errors"][0]["field"] == "team_id"


def test_an_admin_cannot_demote_themselves(api: Api, world: World) -> None:
    me = api.client.get(f"/api/v1/users/{world.admin.user_id}", headers=api.headers(world.admin)).json()
    answer = api.client.patch(f"/api/v1/users/{world.admin.user_id}", json={"is_active": False},
                              headers=api.headers(world.admin, **{"If-Match": f'"{me["version"]}"'}))
    assert answer.status_code == 422 and answer.json()["errors"][0]["code"] == "user.cannot_demote_self"


def test_a_stale_write_is_412_and_nothing_is_written(api: Api, world: World) -> None:
    created = new_user(api, world)
    path = f"/api/v1/users/{created['id']}"
    first = api.client.patch(path, json={"full_name": "Renamed", "version": created["version"]},
                             headers=api.headers(world.admin))
    assert first.status_code == 200
    stale = api.client.patch(path, json={"role": "admin", "version": created["version"]},
                             headers=api.headers(world.admin))
    assert (stale.status_code, stale.json()["code"]) == (412, "stale_record")
    assert api.client.get(path, headers=api.headers(world.admin)).json()["role"] == "rep"


def test_the_list_pages_by_cursor_and_filters(api: Api, world: World) -> None:
    made = [new_user(api, world, team_id=world.west_team_id)["id"] for _ in range(3)]
    headers = api.headers(world.admin)
    first = api.client.get(f"/api/v1/users?limit=2&include_total=true&team_id={world.west_team_id}",
                           headers=headers).json()
    assert first["total"] == 4 and first["has_more"]  # Fay Faraway and the three
    every = listed_ids(api, headers, f"&team_id={world.west_team_id}", limit=2)
    assert every == sorted([world.rep_other_team.user_id, *made])
    wrong = api.client.get(f"/api/v1/users?limit=2&after={first['next_cursor']}&role=rep", headers=headers)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_cursor")
