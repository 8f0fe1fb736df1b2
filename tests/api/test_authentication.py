"""Who may call the API: a bearer token, checked on every request; its scope and its user's role decide writes."""

from __future__ import annotations

import datetime as dt

from crm_core.db import WRITE_OPTION, Database
from crm_core.models import User, utcnow
from crm_core.services import tenants
from crm_core.services.api_tokens import authenticate_token, issue_api_token, revoke_api_token
from tests.api.conftest import Api
from tests.factories import World, build_world, create_random_customer


def test_data_endpoints_need_a_token_but_the_docs_and_status_do_not(api: Api, world: World) -> None:
    for path in ("/api/v1/customers", "/api/v1/contacts", "/api/v1/customers/1"):
        answer = api.client.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["code"] == "unauthenticated"
    assert api.client.get("/api/openapi.json").status_code == 200
    assert api.client.get("/api/docs").status_code == 200
    assert api.client.get("/api/v1/status").status_code == 200


def test_a_malformed_or_unknown_token_is_401(api: Api, world: World) -> None:
    for value in ("Bearer", "Bearer kst_unknown", "Basic dXNlcjpwdw==", "kst_no_scheme", "Bearer " + "x" * 5000):
        answer = api.client.get("/api/v1/customers", headers={"Authorization": value})
        assert answer.status_code == 401, value


def test_a_revoked_token_stops_at_once(api: Api, world: World) -> None:
    issued = issue_api_token(api.db, world.rep, name="script", scope="read", expires_in_days=None)
    headers = {"Authorization": f"Bearer {issued.secret}"}
    assert api.client.get("/api/v1/customers", headers=headers).status_code == 200
    revoke_api_token(api.db, world.rep, issued.id)
    assert api.client.get("/api/v1/customers", headers=headers).status_code == 401


def test_an_admin_revokes_a_users_token(api: Api, world: World) -> None:
    issued = issue_api_token(api.db, world.rep, name="script", scope="read", expires_in_days=None)
    revoke_api_token(api.db, world.admin, issued.id)
    assert api.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {issued.secret}"}).status_code == 401


def test_deactivating_the_user_stops_their_tokens_at_once(api: Api, world: World) -> None:
    headers = api.headers(world.rep)
    assert api.client.get("/api/v1/customers", headers=headers).status_code == 200
    form = tenants.UserInput(world.rep.username, world.rep.full_name, "rep", team_id=min(world.rep.team_ids))
    with api.db.system_session("test") as session:
        version = session.get(User, world.rep.user_id).version  # type: ignore[union-attr]
    tenants.update_user(api.db, world.admin, world.rep.user_id, form, expected_version=version, is_active=False)
    assert api.client.get("/api/v1/customers", headers=headers).status_code == 401


def test_an_expired_token_is_refused_and_last_use_is_recorded(api: Api, world: World) -> None:
    issued = issue_api_token(api.db, world.rep, name="short", scope="read", expires_in_days=1)
    assert authenticate_token(api.db, issued.secret) is not None
    assert authenticate_token(api.db, issued.secret, now=utcnow() + dt.timedelta(days=1, seconds=1)) is None
    from crm_core.queries.api_tokens import list_api_tokens

    with api.db.session(world.rep) as session:
        [row] = [row for row in list_api_tokens(session) if row.id == issued.id]
    assert row.last_used_at is not None and row.prefix == issued.secret[:12]


def test_a_read_scope_token_writes_nothing(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep, "read", **{"If-Match": '"1"'})
    assert api.client.get(f"/api/v1/customers/{customer_id}", headers=headers).status_code == 200
    answers = [
        api.client.post("/api/v1/customers", json={"name": "Nope"}, headers=headers),
        api.client.patch(f"/api/v1/customers/{customer_id}", json={"name": "Nope"}, headers=headers),
        api.client.delete(f"/api/v1/customers/{customer_id}", headers=headers),
        api.client.post("/api/v1/contacts", json={"customer_id": customer_id, "name": "Nope"}, headers=headers),
    ]
    assert [(a.status_code, a.json()["code"]) for a in answers] == [(403, "read_only_token")] * 4


def test_an_analysts_token_writes_nothing_even_with_read_write_scope(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.analyst, "read_write", **{"If-Match": '"1"'})
    assert api.client.get(f"/api/v1/customers/{customer_id}", headers=headers).status_code == 200
    answers = [
        api.client.post("/api/v1/customers", json={"name": "Nope"}, headers=headers),
        api.client.patch(f"/api/v1/customers/{customer_id}", json={"name": "Nope"}, headers=headers),
        api.client.delete(f"/api/v1/customers/{customer_id}", headers=headers),
        api.client.post(f"/api/v1/customers/{customer_id}/restore", headers=headers),
    ]
    assert [a.status_code for a in answers] == [403] * 4
    with api.db.session(world.admin) as session:
        from crm_core.queries.customers import get_customer

        record = get_customer(session, customer_id)
        assert record is not None and record.version == 1 and record.archived_at is None


def test_issuing_and_revoking_are_audited_without_the_secret(api: Api, world: World) -> None:
    from sqlalchemy import select

    from crm_core.models import AuditEvent

    issued = issue_api_token(api.db, world.analyst, name="report script", scope="read", expires_in_days=30)
    revoke_api_token(api.db, world.analyst, issued.id)
    with api.db.session(world.admin) as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.entity == "api_token",
                                                          AuditEvent.entity_id == issued.id)
                                 .order_by(AuditEvent.id)).all()
    assert [event.action for event in events] == ["create", "update"]
    assert events[0].actor_id == world.analyst.user_id
    assert "secret_hash" not in events[0].changes and issued.secret not in str(events[0].changes)
    assert "revoked_at" in events[1].changes


def test_stamping_the_last_use_never_waits_for_another_writer_on_sqlite(sqlite_db: Database) -> None:
    import time

    from crm_core.queries.api_tokens import list_api_tokens

    world = build_world(sqlite_db)
    issued = issue_api_token(sqlite_db, world.rep, name="sync", scope="read", expires_in_days=None)
    writer = sqlite_db.engine.connect().execution_options(**{WRITE_OPTION: True})
    held = writer.begin()  # BEGIN IMMEDIATE: an import holding the write lock
    try:
        started = time.monotonic()
        caller = authenticate_token(sqlite_db, issued.secret)
        assert caller is not None and time.monotonic() - started < 2
    finally:
        held.rollback()
        writer.close()
    with sqlite_db.session(world.rep) as session:
        assert list_api_tokens(session)[0].last_used_at is None  # skipped, not waited for
    assert authenticate_token(sqlite_db, issued.secret) is not None
    with sqlite_db.session(world.rep) as session:
        assert list_api_tokens(session)[0].last_used_at is not None
