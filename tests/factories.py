"""Factories for tests: a small world of two tenants with a user of every role."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.services import auth, tenants
from crm_core.services.customers import CustomerInput, create_customer

PASSWORD = "Test-password-1"
_counter = itertools.count(1)


@dataclass
class World:
    """Two tenants; tenant A has teams east (managed by ``manager``) and west."""

    admin: Actor
    manager: Actor
    rep: Actor
    rep_same_team: Actor
    rep_other_team: Actor
    analyst: Actor
    other_admin: Actor
    east_team_id: int
    west_team_id: int


def unique(prefix: str) -> str:
    """A name no other test has used in this process."""
    return f"{prefix}{next(_counter)}"


def build_world(db: Database) -> World:
    """Create tenant A (teams, one user per role) and tenant B (an admin)."""
    suffix = unique("")
    tenant_a = tenants.create_tenant(
        db, name="Acme", slug=f"acme-{suffix}", admin_username=f"admin{suffix}", admin_password=PASSWORD
    )
    tenants.create_tenant(
        db, name="Beta", slug=f"beta-{suffix}", admin_username=f"other{suffix}", admin_password=PASSWORD
    )
    admin = auth.load_actor(db, f"admin{suffix}")
    assert admin is not None and admin.tenant_id == tenant_a.tenant_id
    manager_id = tenants.create_user(
        db, admin, tenants.UserInput(f"manager{suffix}", "Mia Manager", "manager", password=PASSWORD)
    )
    east = tenants.create_team(db, admin, name="East", region="East", manager_id=manager_id)
    west = tenants.create_team(db, admin, name="West", region="West", manager_id=None)
    for username, name, role, team in [
        (f"rep{suffix}", "Rita Rep", "rep", east),
        (f"mate{suffix}", "Tom Teammate", "rep", east),
        (f"far{suffix}", "Fay Faraway", "rep", west),
        (f"analyst{suffix}", "Ann Analyst", "analyst", None),
    ]:
        tenants.create_user(db, admin, tenants.UserInput(username, name, role, team_id=team, password=PASSWORD))

    def actor(username: str) -> Actor:
        loaded = auth.load_actor(db, username)
        assert loaded is not None
        return loaded

    return World(
        admin=admin,
        manager=actor(f"manager{suffix}"),
        rep=actor(f"rep{suffix}"),
        rep_same_team=actor(f"mate{suffix}"),
        rep_other_team=actor(f"far{suffix}"),
        analyst=actor(f"analyst{suffix}"),
        other_admin=actor(f"other{suffix}"),
        east_team_id=east,
        west_team_id=west,
    )


def create_random_customer(db: Database, actor: Actor, **fields: object) -> int:
    """A customer owned by ``actor`` unless ``owner_id`` is given."""
    values: dict[str, object] = {"name": unique("Customer "), "owner_id": actor.user_id}
    values.update(fields)
    return create_customer(db, actor, CustomerInput(**values), allow_duplicate=True)  # type: ignore[arg-type]


def add_open_deal(db: Database, actor: Actor, customer_id: int, name: str = "Deal") -> None:
    """A deal of ``actor`` in the first open stage, inserted directly (no lifecycle refresh)."""
    from sqlalchemy import select

    from crm_core.models import Opportunity, PipelineStage

    with db.transaction(actor) as session:
        stage = session.scalars(select(PipelineStage).where(PipelineStage.kind == "open")).first()
        assert stage is not None
        session.add(
            Opportunity(
                customer_id=customer_id,
                owner_id=actor.user_id,
                pipeline_id=stage.pipeline_id,
                stage_id=stage.id,
                name=name,
            )
        )


def customer_named_by_sql(db: Database, actor: Actor, name: str, **fields: Any) -> int:
    """A customer whose name the forms and imports refuse (a formula): stored by SQL, as data from
    before the field rules or from a database copied in could hold it. Exports must still defuse it."""
    from sqlalchemy import text

    customer_id = create_random_customer(db, actor, **fields)
    with db.system_session("test: a name no form accepts") as session, session.begin():
        session.execute(text("UPDATE customers SET name = :name WHERE id = :id"), {"name": name, "id": customer_id})
    return customer_id


def xlsx_workbook(sheets: list[tuple[str, list[list[Any]], str]]) -> bytes:
    """An XLSX file of (title, rows, state) sheets; a state of "hidden" hides the sheet, as Excel does."""
    import io

    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows, state in sheets:
        sheet = workbook.create_sheet(title)
        sheet.sheet_state = state
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def tenant_slug(db: Database, world: World, *, other: bool = False) -> str:
    """Tenant A's slug (B's with ``other``): the ``+slug`` of its support address."""
    from crm_core.models import Tenant

    actor = world.other_admin if other else world.admin
    with db.system_session("test") as session:
        tenant = session.get(Tenant, actor.tenant_id)
        assert tenant is not None
        return tenant.slug


def customer_with_contact(db: Database, world: World, email: str, *, other: bool = False) -> tuple[int, int]:
    """A new customer of tenant A (B with ``other``) and its contact "Li Lei" at ``email``: (customer, contact)."""
    from crm_core.services import contacts

    actor = world.other_admin if other else world.admin
    customer_id = create_random_customer(db, actor)
    contact_id = contacts.create_contact(db, actor, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                                          email=email))
    return customer_id, contact_id
