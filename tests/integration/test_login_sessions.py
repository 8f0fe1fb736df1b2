"""Login state in the database, on every database with real commits: lockout races, session ends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from crm_core.config import LOGIN_MAX_FAILED_ATTEMPTS
from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.models import AuditEvent, User, utcnow
from crm_core.services import auth, tenants
from tests.conftest import live_database
from tests.factories import PASSWORD, World, build_world

NEW_PASSWORD = "Another-pass-2026"


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def live_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """An engine-bound database of each kind (real commits, parallel connections), private to this module."""
    with live_database(request.param, tmp_path_factory, "sessions") as db:
        yield db


@pytest.fixture
def world(live_db: Database) -> World:
    return build_world(live_db)


def user_row(db: Database, username: str) -> User:
    with db.system_session("test") as session:
        return session.scalars(select(User).where(User.username == username)).one()


def test_parallel_wrong_passwords_each_count_and_lock_once(live_db: Database, world: World) -> None:
    username = world.rep.username
    attempts = LOGIN_MAX_FAILED_ATTEMPTS + 3
    with ThreadPoolExecutor(max_workers=4) as pool:
        locked = list(pool.map(lambda _: auth.record_failed_login(live_db, username), range(attempts)))
    user = user_row(live_db, username)
    # none lost to a read-then-write race: the fifth locked (and started a fresh count), three more followed
    assert user.failed_login_count == attempts - LOGIN_MAX_FAILED_ATTEMPTS
    assert locked.count(True) == 1  # exactly one failure locked the account
    assert auth.is_locked(user)
    # a right password that was being checked meanwhile opens nothing once the lock is recorded
    assert auth.record_login(live_db, username) is None
    with live_db.system_session("test") as session:
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.entity == "user",
                                                                  AuditEvent.entity_id == user.id)).all()
    assert actions.count("login_failed") == attempts - 1 and actions.count("login_locked") == 1


def test_a_login_starts_a_session_that_each_ending_event_ends(live_db: Database, world: World) -> None:
    username = world.rep.username
    started = auth.record_login(live_db, username)
    assert started is not None
    assert auth.load_actor(live_db, username, session_started=started) is not None

    # an admin changes something harmless: the session goes on
    user = user_row(live_db, username)
    form = tenants.UserInput(username, "Renamed Rep", user.role, team_id=user.team_id)
    tenants.update_user(live_db, world.admin, user.id, form, expected_version=user.version)
    assert auth.load_actor(live_db, username, session_started=started) is not None

    # an admin sets a new password: every session that started before ends
    user = user_row(live_db, username)
    form = tenants.UserInput(username, "Renamed Rep", user.role, team_id=user.team_id, password=NEW_PASSWORD)
    tenants.update_user(live_db, world.admin, user.id, form, expected_version=user.version)
    assert auth.load_actor(live_db, username, session_started=started) is None
    again = auth.record_login(live_db, username)
    assert again is not None and auth.load_actor(live_db, username, session_started=again) is not None

    # another role ends it too
    user = user_row(live_db, username)
    form = tenants.UserInput(username, "Renamed Rep", "analyst", team_id=user.team_id)
    tenants.update_user(live_db, world.admin, user.id, form, expected_version=user.version)
    assert auth.load_actor(live_db, username, session_started=again) is None

    # and logging out anywhere
    third = auth.record_login(live_db, username)
    assert third is not None
    auth.end_sessions(live_db, username)
    assert auth.load_actor(live_db, username, session_started=third) is None

    # a lock (someone guessing the password) ends the sessions that are open
    fourth = auth.record_login(live_db, username)
    assert fourth is not None
    for _ in range(LOGIN_MAX_FAILED_ATTEMPTS):
        auth.record_failed_login(live_db, username)
    assert auth.load_actor(live_db, username, session_started=fourth) is None
    assert auth.load_actor(live_db, username) is not None  # jobs and tokens of the user are not sessions


def test_deactivation_ends_the_session(live_db: Database, world: World) -> None:
    username = world.manager.username
    started = auth.record_login(live_db, username)
    assert started is not None
    user = user_row(live_db, username)
    form = tenants.UserInput(username, user.full_name, user.role, team_id=user.team_id)
    tenants.update_user(live_db, world.admin, user.id, form, expected_version=user.version, is_active=False)
    assert auth.load_actor(live_db, username, session_started=started) is None


def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(live_db: Database, world: World) -> None:
    username = world.rep.username
    here = auth.record_login(live_db, username)
    there = auth.record_login(live_db, username)
    assert here is not None and there is not None
    kept = auth.change_own_password(live_db, world.rep, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    assert auth.load_actor(live_db, username, session_started=kept) is not None
    assert auth.load_actor(live_db, username, session_started=there) is None
    assert auth.verify_password(NEW_PASSWORD, user_row(live_db, username).password_hash)
    with live_db.system_session("test") as session:
        assert session.scalar(select(AuditEvent.action).where(AuditEvent.entity == "user",
                                                              AuditEvent.entity_id == world.rep.user_id)
                              .order_by(AuditEvent.id.desc()).limit(1)) == "password_changed"


@pytest.mark.parametrize(("current", "new", "confirm", "field", "key"), [
    ("wrong-password-1", NEW_PASSWORD, NEW_PASSWORD, "current_password", "password.current_wrong"),
    (PASSWORD, "short1", "short1", "new_password", "password.too_short"),
    (PASSWORD, NEW_PASSWORD, NEW_PASSWORD + "x", "confirm_password", "password.mismatch"),
    (PASSWORD, PASSWORD, PASSWORD, "new_password", "password.unchanged"),
])
def test_a_refused_password_change_changes_nothing(live_db: Database, world: World, current: str, new: str,
                                                   confirm: str, field: str, key: str) -> None:
    before = user_row(live_db, world.rep.username)
    started = utcnow() - dt.timedelta(seconds=1)
    with pytest.raises(ValidationFailed) as refused:
        auth.change_own_password(live_db, world.rep, current, new, confirm)
    assert refused.value.errors[field][0] == key
    after = user_row(live_db, world.rep.username)
    assert (after.password_hash, after.sessions_valid_after) == (before.password_hash, before.sessions_valid_after)
    assert auth.load_actor(live_db, world.rep.username, session_started=started) is not None


def test_demo_users_sign_in_only_in_demo_mode(live_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_core.demo import generate_demo

    with live_db.system_session("test") as session:
        from crm_core.models import Tenant

        has_demo = session.scalar(select(Tenant.id).where(Tenant.slug == "demo")) is not None
    if not has_demo:
        generate_demo(live_db, customers=5)
    monkeypatch.delenv("CRM_DEMO_MODE", raising=False)
    assert "demo.rep" not in auth.login_credentials(live_db)["usernames"]
    monkeypatch.setenv("CRM_DEMO_MODE", "1")
    assert "demo.rep" in auth.login_credentials(live_db)["usernames"]


def test_no_real_workspace_can_take_a_demo_slug(live_db: Database) -> None:
    for slug in ("demo", "demo-7"):
        with pytest.raises(ValidationFailed) as refused:
            tenants.create_tenant(live_db, name="Real", slug=slug, admin_username=f"boss-{slug}",
                                  admin_password=PASSWORD)
        assert refused.value.errors["slug"][0] == "tenant.slug_reserved"
    created = tenants.create_tenant(live_db, name="Demolition", slug="demolition-co", admin_username="boss.demolition",
                                    admin_password=PASSWORD)
    assert created.tenant_id
