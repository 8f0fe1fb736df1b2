"""users.sessions_valid_after keeps microseconds on MariaDB/MySQL (DATETIME(6))

A plain DATETIME drops the fraction: a password change at 10:00:00.7 was stored as 10:00:00,
so a session that started at 10:00:00.3 outlived it. PostgreSQL and SQLite keep microseconds
already; nothing changes there.

Revision ID: 0019
Revises: 0018
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.alter_column("users", "sessions_valid_after", existing_type=sa.DateTime(),
                        type_=mysql.DATETIME(fsp=6), existing_nullable=True)


def downgrade() -> None:
    if op.get_bind().dialect.name == "mysql":
        op.alter_column("users", "sessions_valid_after", existing_type=mysql.DATETIME(fsp=6),
                        type_=sa.DateTime(), existing_nullable=True)
