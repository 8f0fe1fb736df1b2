"""Login use cases: password hashing, lockout, session revocation, and building the Actor.

The browser login widget is streamlit-authenticator's; it checks the password against
the credentials this module builds from the ``users`` table. Everything that must
outlive a browser session — failed-attempt counters, lockouts, revoked cookies — is
stored here, in the database, because the authenticator keeps it only in memory.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

import bcrypt
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.config import LOGIN_LOCKOUT_MINUTES, LOGIN_MAX_FAILED_ATTEMPTS, demo_mode, is_demo_slug
from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.metrics import LOCKOUTS, LOGIN_FAILURES
from crm_core.models import AuditEvent, Role, Team, Tenant, User, utcnow

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")


def bcrypt_rounds() -> int:
    """Work factor: 12 in production; tests may lower it with ``CRM_BCRYPT_ROUNDS``."""
    return max(4, min(15, int(os.environ.get("CRM_BCRYPT_ROUNDS", "12"))))


def hash_password(password: str) -> str:
    """A bcrypt hash of ``password``."""
    return bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds=bcrypt_rounds())).decode()


def verify_password(password: str, password_hash: str) -> bool:
    """Does ``password`` match the stored bcrypt hash?"""
    try:
        return bcrypt.checkpw(password.encode("utf-8"), password_hash.encode("utf-8"))
    except ValueError:
        return False


def password_problems(password: str) -> list[str]:
    """Catalog keys of the rules ``password`` breaks (empty when acceptable)."""
    problems = []
    if len(password) < 10:
        problems.append("password.too_short")
    if len(password.encode("utf-8")) > 72:
        problems.append("password.too_long")  # bcrypt ignores bytes past 72
    if not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        problems.append("password.needs_letter_and_digit")
    return problems


def username_problem(username: str) -> str | None:
    """Catalog key when ``username`` is not 3-64 lower-case letters, digits or . _ @ -."""
    if not USERNAME_PATTERN.match(username):
        return "user.username_invalid"
    return None


_UNKNOWN_USER_HASH: list[str] = []


def spend_password_check_time() -> None:
    """Check a password against a throw-away hash: a login for an unknown name takes as long as a wrong password."""
    if not _UNKNOWN_USER_HASH:
        _UNKNOWN_USER_HASH.append(hash_password("unknown-user-" + os.urandom(8).hex()))
    verify_password("not the password", _UNKNOWN_USER_HASH[0])


def is_locked(user: User, now: dt.datetime | None = None) -> bool:
    """Locked after too many failures, until the lockout passes or an admin unlocks."""
    now = now or utcnow()
    return user.locked_until is not None and user.locked_until > now


def login_credentials(db: Database) -> dict[str, Any]:
    """The credentials mapping streamlit-authenticator expects, built from active users.

    A locked user is listed with ``failed_login_attempts`` at the maximum, so the
    authenticator refuses them before looking at the password. Users of the demo workspaces
    are listed in demo mode only (:func:`crm_core.config.demo_mode`).
    """
    now = utcnow()
    usernames: dict[str, dict[str, Any]] = {}
    with db.system_session("login") as session:
        rows = session.execute(
            select(User, Tenant.slug)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(User.is_active.is_(True), Tenant.is_active.is_(True))
        )
        demo_allowed = demo_mode()
        for user, slug in rows:
            if not demo_allowed and is_demo_slug(slug):
                continue  # a demo user's password is published: outside demo mode it opens nothing
            usernames[user.username] = {
                "name": user.full_name,
                "email": user.email or f"{user.username}@invalid.local",
                "password": user.password_hash,
                "roles": [user.role],
                "failed_login_attempts": LOGIN_MAX_FAILED_ATTEMPTS if is_locked(user, now) else 0,
            }
    return {"usernames": usernames}


def _audit(session: Any, user: User, action: str, changes: dict[str, Any] | None = None) -> None:
    session.add(
        AuditEvent(
            tenant_id=user.tenant_id,
            actor_id=user.id,
            action=action,
            entity="user",
            entity_id=user.id,
            changes=changes or {},
        )
    )


def _bookkeeping(**values: Any) -> Any:
    """An UPDATE of login bookkeeping on ``users``: no version bump, so an admin's open form of the user stays
    current, and no read-modify-write, so two logins at once (two tabs) never trip the optimistic lock."""
    return update(User).values(**values).execution_options(synchronize_session=False)


def record_failed_login(db: Database, username: str) -> bool:
    """Count a wrong password; returns True when this failure locked the account.

    The counter moves in one ``UPDATE … SET n = n + 1`` and the lock is set by one conditional
    ``UPDATE``: parallel wrong passwords each count, and exactly one of them locks.
    """
    with db.system_transaction("login") as session:
        session.info["crm_skip_audit"] = True
        counted = session.execute(
            _bookkeeping(failed_login_count=func.coalesce(User.failed_login_count, 0) + 1)
            .where(User.username == username)
        )
        if not counted.rowcount:  # type: ignore[attr-defined]
            return False
        now = utcnow()
        locking = session.execute(
            # the lock starts a fresh count: after it lapses, five more tries before the next
            _bookkeeping(locked_until=now + dt.timedelta(minutes=LOGIN_LOCKOUT_MINUTES), failed_login_count=0)
            .where(User.username == username, User.failed_login_count >= LOGIN_MAX_FAILED_ATTEMPTS,
                   or_(User.locked_until.is_(None), User.locked_until <= now))
        )
        locked_now = bool(locking.rowcount)  # type: ignore[attr-defined]
        LOGIN_FAILURES.inc()
        if locked_now:
            LOCKOUTS.inc()
        user = session.scalars(select(User).where(User.username == username)).one()
        _audit(session, user, "login_locked" if locked_now else "login_failed")
        return locked_now


def record_login(db: Database, username: str) -> dt.datetime | None:
    """A successful password login: reset the counter, stamp the time, audit it.

    Returns when the session started (naive UTC), or None when the account was locked by the
    time the login is recorded: a right password that raced past the fifth wrong one in
    parallel opens nothing. One conditional ``UPDATE`` decides.
    """
    with db.system_transaction("login") as session:
        session.info["crm_skip_audit"] = True
        started = utcnow()
        stamped = session.execute(
            _bookkeeping(failed_login_count=0, locked_until=None, last_login_at=started)
            .where(User.username == username, or_(User.locked_until.is_(None), User.locked_until <= started))
        )
        if not stamped.rowcount:  # type: ignore[attr-defined]
            return None  # unknown, or locked
        user = session.scalars(select(User).where(User.username == username)).one()
        _audit(session, user, "login")
        return started


def end_sessions(db: Database, username: str) -> None:
    """Logout: every session of the user (this tab, other tabs, other browsers, their cookies) ends."""
    with db.system_transaction("logout") as session:
        session.info["crm_skip_audit"] = True
        ended = session.execute(_bookkeeping(sessions_valid_after=utcnow()).where(User.username == username))
        if not ended.rowcount:  # type: ignore[attr-defined]
            return
        user = session.scalars(select(User).where(User.username == username)).one()
        _audit(session, user, "logout")


def session_is_current(user: User, session_started: dt.datetime) -> bool:
    """Did a session that started at ``session_started`` start after everything that ends sessions?"""
    if is_locked(user):
        return False
    return user.sessions_valid_after is None or session_started > user.sessions_valid_after


def load_actor(db: Database, username: str, *, session_started: dt.datetime | None = None) -> Actor | None:
    """Build the Actor for ``username`` from the database (None if inactive or unknown).

    With ``session_started`` (a browser session's login time, naive UTC), also None when that
    session has ended: the user logged out, an admin changed their password or role, the user
    changed their own password elsewhere, or the account is locked. The frame calls this on
    every rerun, so an ended session stops at its next click.
    """
    with db.system_session("login") as session:
        user = session.scalars(
            select(User)
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(User.username == username, User.is_active.is_(True), Tenant.is_active.is_(True))
        ).one_or_none()
        if user is None:
            return None
        if session_started is not None and not session_is_current(user, session_started):
            return None
        return actor_of_user(session, user)


def actor_of_user(session: Session, user: User) -> Actor:
    """The Actor of ``user`` (their teams and, for a manager, the members of the teams they manage), read in
    ``session`` (users and teams are read tenant-wide by every role): who would see what, for a notification."""
    team_ids: set[int] = set()
    visible_owner_ids: set[int] = {user.id}
    managed: dict[int, frozenset[int]] = {}
    if user.team_id is not None:
        team_ids.add(user.team_id)
    if user.role == Role.MANAGER:
        # the teams they manage and those teams' members, in one statement (a team may have none)
        members = session.execute(
            select(Team.id, User.id)
            .outerjoin(User, and_(User.tenant_id == Team.tenant_id, User.team_id == Team.id))
            .where(Team.tenant_id == user.tenant_id, Team.manager_id == user.id)
        ).all()
        teams: dict[int, set[int]] = {}
        for team_id, member_id in members:  # one row per member, one with no member for an empty team
            team = teams.setdefault(team_id, set())
            if member_id is not None:
                team.add(member_id)
        managed = {team_id: frozenset(member_ids) for team_id, member_ids in teams.items()}
        team_ids |= managed.keys()
        visible_owner_ids |= set().union(*managed.values())
    return Actor(
        user_id=user.id,
        tenant_id=user.tenant_id,
        role=Role(user.role),
        username=user.username,
        full_name=user.full_name,
        team_ids=frozenset(team_ids),
        visible_owner_ids=frozenset(visible_owner_ids),
        language=user.language,
        managed_teams=tuple(sorted(managed.items())),
    )

def set_language(db: Database, username: str, language: str) -> None:
    """Remember the user's interface language."""
    with db.system_transaction("preferences") as session:
        user = session.scalars(select(User).where(User.username == username)).one_or_none()
        if user is not None and user.language != language:
            user.language = language


def change_own_password(db: Database, actor: Actor, current: str, new: str, confirm: str) -> dt.datetime:
    """The signed-in user replaces their password; every other session of theirs ends.

    Returns the new session start for the caller's own session (later than the cut-off), so
    the session that made the change stays signed in. Refused with field errors when the
    current password is wrong, the new one breaks the rules or the two entries differ.
    """
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    problems = password_problems(new)
    if problems:
        errors["new_password"] = (problems[0], {})
    elif new != confirm:
        errors["confirm_password"] = ("password.mismatch", {})
    elif new == current:
        errors["new_password"] = ("password.unchanged", {})
    with db.system_transaction("password change") as session:
        session.info["crm_skip_audit"] = True
        user = session.get(User, actor.user_id)
        if user is None or not user.is_active:
            raise ValidationFailed({"current_password": ("login.session_ended", {})})
        if not verify_password(current, user.password_hash):
            errors = {"current_password": ("password.current_wrong", {})}  # nothing else is judged then
        if errors:
            raise ValidationFailed(errors)
        cut_off = utcnow()
        user.password_hash = hash_password(new)
        user.sessions_valid_after = cut_off
        _audit(session, user, "password_changed")
    return cut_off + dt.timedelta(microseconds=1)
