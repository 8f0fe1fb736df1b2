"""contacts carry normalised email and phone keys for their duplicate check (查重 per entity)

Revision ID: 0024
Revises: 0023

``contacts.email_normalized`` and ``contacts.phone_normalized`` (E.164), as customers have them,
each indexed with the tenant: the contact duplicate rules (entity "contact" in ``duplicate_rules``)
look a key up across the tenant. Existing rows are keyed in Python by the same rules the services
use (``crm_core.rules.contact_details``), 5,000 rows at a time.
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crm_core.rules.contact_details import normalise_email, normalise_phone

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 5000


def upgrade() -> None:
    op.add_column("contacts", sa.Column("email_normalized", sa.String(length=254), nullable=True))
    op.add_column("contacts", sa.Column("phone_normalized", sa.String(length=40), nullable=True))
    _backfill()
    op.create_index(op.f("ix_contacts_tenant_id_email_normalized"), "contacts", ["tenant_id", "email_normalized"])
    op.create_index(op.f("ix_contacts_tenant_id_phone_normalized"), "contacts", ["tenant_id", "phone_normalized"])


def _backfill() -> None:
    connection = op.get_bind()
    contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("email", sa.String),
                        sa.column("phone", sa.String), sa.column("email_normalized", sa.String),
                        sa.column("phone_normalized", sa.String))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(contacts.c.id, contacts.c.email, contacts.c.phone)
            .where(contacts.c.id > last).order_by(contacts.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        keyed = [{"b_id": row.id, "b_email": normalise_email(row.email), "b_phone": normalise_phone(row.phone)}
                 for row in rows]
        changed = [row for row in keyed if row["b_email"] is not None or row["b_phone"] is not None]
        if changed:
            connection.execute(
                sa.update(contacts).where(contacts.c.id == sa.bindparam("b_id"))
                .values(email_normalized=sa.bindparam("b_email"), phone_normalized=sa.bindparam("b_phone")),
                changed,
            )
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index(op.f("ix_contacts_tenant_id_phone_normalized"), table_name="contacts")
    op.drop_index(op.f("ix_contacts_tenant_id_email_normalized"), table_name="contacts")
    # plain DROP COLUMNs (see 0018: a batch copy fails on SQLite's full-text views)
    op.drop_column("contacts", "phone_normalized")
    op.drop_column("contacts", "email_normalized")
