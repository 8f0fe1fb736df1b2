"""Tenant and user administration use cases: create a tenant with its default pipeline,
create and change users, unlock accounts."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.config import is_demo_slug
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import Pipeline, PipelineStage, Role, StageKind, Team, Tenant, User, utcnow
from crm_core.rules.contact_details import is_valid_email
from crm_core.services.auth import hash_password, password_problems, username_problem
from crm_core.services.editing import check_version, translate_stale

DEFAULT_STAGES_EN = [
    ("Lead", 10, StageKind.OPEN),
    ("Qualified", 25, StageKind.OPEN),
    ("Proposal", 50, StageKind.OPEN),
    ("Negotiation", 75, StageKind.OPEN),
    ("Won", 100, StageKind.WON),
    ("Lost", 0, StageKind.LOST),
]
DEFAULT_STAGES_ZH = ["线索", "资格确认", "方案报价", "商务谈判", "赢单", "输单"]
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class NewTenant:
    """What the tenant-creation use case returns."""

    tenant_id: int
    admin_user_id: int
    admin_password: str
    generated_password: bool


def create_tenant(
    db: Database,
    *,
    name: str,
    slug: str,
    admin_username: str,
    admin_password: str | None = None,
    admin_full_name: str = "Administrator",
    locale: str = "en",
) -> NewTenant:
    """Create a tenant, its default pipeline and its first admin (password generated if None)."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    if not name.strip():
        errors["name"] = ("validation.required", {})
    if not _SLUG.match(slug):
        errors["slug"] = ("tenant.slug_invalid", {})
    elif is_demo_slug(slug):
        errors["slug"] = ("tenant.slug_reserved", {"slug": slug})
    if (problem := username_problem(admin_username)) is not None:
        errors["username"] = (problem, {})
    generated = admin_password is None
    password = admin_password or secrets.token_urlsafe(12) + "7a"
    for problem in password_problems(password):
        errors["password"] = (problem, {})
    if errors:
        raise ValidationFailed(errors)
    with db.system_transaction("create tenant") as session:
        if session.scalar(select(func.count()).select_from(Tenant).where(Tenant.slug == slug)):
            raise ValidationFailed({"slug": ("tenant.slug_taken", {"slug": slug})})
        if session.scalar(select(func.count()).select_from(User).where(User.username == admin_username)):
            raise ValidationFailed({"username": ("user.username_taken", {"username": admin_username})})
        tenant = Tenant(name=name.strip(), slug=slug)
        session.add(tenant)
        session.flush()
        add_default_pipeline(session, tenant.id, locale=locale)
        admin = User(
            tenant_id=tenant.id,
            username=admin_username,
            full_name=admin_full_name,
            password_hash=hash_password(password),
            role=Role.ADMIN.value,
            language="zh-CN" if locale.startswith("zh") else "en",
        )
        session.add(admin)
        session.flush()
        from crm_core.jobs.schedules import add_default_schedules

        add_default_schedules(session, tenant.id)
        return NewTenant(tenant.id, admin.id, password, generated)


def add_default_pipeline(session: Session, tenant_id: int, *, locale: str = "en") -> Pipeline:
    """The default pipeline: Lead 10% → Qualified 25% → Proposal 50% → Negotiation 75% → Won/Lost."""
    zh = locale.startswith("zh")
    pipeline = Pipeline(tenant_id=tenant_id, name="默认销售流程" if zh else "Default pipeline", is_default=True)
    session.add(pipeline)
    session.flush()
    for position, (name, probability, kind) in enumerate(DEFAULT_STAGES_EN):
        session.add(
            PipelineStage(
                tenant_id=tenant_id,
                pipeline_id=pipeline.id,
                name=DEFAULT_STAGES_ZH[position] if zh else name,
                position=position,
                probability=probability,
                kind=kind.value,
            )
        )
    session.flush()
    return pipeline


@dataclass
class UserInput:
    """The fields of the user form."""

    username: str
    full_name: str
    role: str
    email: str = ""
    team_id: int | None = None
    password: str = ""
    language: str = "en"


def _validate_user(form: UserInput, *, new: bool) -> dict[str, tuple[str, dict[str, object]]]:
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    if new and (problem := username_problem(form.username)) is not None:
        errors["username"] = (problem, {})
    if not form.full_name.strip():
        errors["full_name"] = ("validation.required", {})
    if form.role not in {role.value for role in Role}:
        errors["role"] = ("validation.choice", {})
    if form.email and not is_valid_email(form.email):
        errors["email"] = ("validation.email", {})
    if new or form.password:
        for problem in password_problems(form.password):
            errors["password"] = (problem, {})
    return errors


def create_user(db: Database, actor: Actor, form: UserInput) -> int:
    """An admin adds a user to their tenant."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may add users")
    form.username = form.username.strip().lower()
    errors = _validate_user(form, new=True)
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        # usernames are unique across tenants, so look beyond this tenant's scope
        with db.system_session("username check") as check:
            taken = check.scalar(select(func.count()).select_from(User).where(User.username == form.username))
        if taken:
            raise ValidationFailed({"username": ("user.username_taken", {"username": form.username})})
        if form.team_id is not None and session.get(Team, form.team_id) is None:
            raise ValidationFailed({"team_id": ("validation.choice", {})})
        user = User(
            username=form.username,
            full_name=form.full_name.strip(),
            email=form.email.strip() or None,
            role=form.role,
            team_id=form.team_id,
            password_hash=hash_password(form.password),
            language=form.language,
        )
        session.add(user)
        session.flush()
        return user.id


def update_user(
    db: Database, actor: Actor, user_id: int, form: UserInput, *, expected_version: int, is_active: bool = True
) -> None:
    """An admin changes a user's name, role, team, email, password or active flag, on the version the form showed."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may change users")
    errors = _validate_user(form, new=False)
    if errors:
        raise ValidationFailed(errors)
    if user_id == actor.user_id and (form.role != Role.ADMIN.value or not is_active):
        raise ValidationFailed({"role": ("user.cannot_demote_self", {})})
    translate_stale(db, actor, "user", user_id, lambda: _save_user(db, actor, user_id, form, expected_version,
                                                                    is_active))


def _save_user(db: Database, actor: Actor, user_id: int, form: UserInput, expected_version: int,
               is_active: bool) -> None:
    with db.transaction(actor) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user")
        check_version(session, user, "user", expected_version)
        if form.team_id is not None and session.get(Team, form.team_id) is None:  # scoped: this tenant's teams
            raise ValidationFailed({"team_id": ("validation.choice", {})})
        # a new password, another role or a deactivation ends the user's open sessions at their next click
        ends_sessions = bool(form.password) or user.role != form.role or (user.is_active and not is_active)
        user.full_name = form.full_name.strip()
        user.email = form.email.strip() or None
        user.role = form.role
        user.team_id = form.team_id
        user.is_active = is_active
        if form.password:
            user.password_hash = hash_password(form.password)
        if ends_sessions:
            user.sessions_valid_after = utcnow()


def unlock_user(db: Database, actor: Actor, user_id: int) -> None:
    """An admin lifts a lockout caused by failed logins."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may unlock users")
    with db.transaction(actor) as session:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("user")
        user.locked_until = None
        user.failed_login_count = 0


def create_team(db: Database, actor: Actor, *, name: str, region: str | None, manager_id: int | None) -> int:
    """An admin creates a sales team."""
    if not name.strip():
        raise ValidationFailed({"name": ("validation.required", {})})
    with db.transaction(actor) as session:
        if session.scalar(select(func.count()).select_from(Team).where(Team.name == name.strip())):
            raise ValidationFailed({"name": ("team.name_taken", {"name": name.strip()})})
        team = Team(name=name.strip(), region=(region or "").strip() or None, manager_id=manager_id)
        session.add(team)
        session.flush()
        return team.id
