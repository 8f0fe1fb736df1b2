"""followups lifecycle: assignment rules, lifecycle history and overrides, stage automation

Revision ID: 0004
Revises: 0003
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('automation_rules',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('task_title', sa.String(length=200), nullable=False),
    sa.Column('due_in_days', sa.Integer(), nullable=False),
    sa.Column('priority', sa.String(length=8), nullable=False),
    sa.Column('assign_to', sa.String(length=8), nullable=False),
    sa.Column('tag', sa.String(length=60), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('active_since', sa.DateTime(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_automation_rules_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_automation_rules_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_rules'))
    )
    op.create_index(op.f('ix_automation_rules_tenant_id_stage'), 'automation_rules', ['tenant_id', 'stage'], unique=False)
    op.create_table('assignment_rules',
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('conditions', sa.JSON(), nullable=False),
    sa.Column('team_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('follow_up_due_days', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('last_assigned_user_id', sa.Integer(), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['last_assigned_user_id'], ['users.id'], name=op.f('fk_assignment_rules_last_assigned_user_id_users')),
    sa.ForeignKeyConstraint(['team_id'], ['teams.id'], name=op.f('fk_assignment_rules_team_id_teams')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_assignment_rules_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_assignment_rules'))
    )
    op.create_index(op.f('ix_assignment_rules_tenant_id_position'), 'assignment_rules', ['tenant_id', 'position'], unique=False)
    op.create_table('lifecycle_overrides',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=16), nullable=False),
    sa.Column('rule_stage', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('set_by_id', sa.Integer(), nullable=True),
    sa.Column('set_at', sa.DateTime(), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_lifecycle_overrides_customer_id_customers')),
    sa.ForeignKeyConstraint(['set_by_id'], ['users.id'], name=op.f('fk_lifecycle_overrides_set_by_id_users')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_lifecycle_overrides_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lifecycle_overrides')),
    sa.UniqueConstraint('tenant_id', 'customer_id', name=op.f('uq_lifecycle_overrides_tenant_id_customer_id'))
    )
    op.create_table('lifecycle_transitions',
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(), nullable=False),
    sa.Column('from_stage', sa.String(length=16), nullable=True),
    sa.Column('to_stage', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('refresh_key', sa.String(length=32), nullable=True),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_lifecycle_transitions_actor_id_users')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_lifecycle_transitions_customer_id_customers')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_lifecycle_transitions_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_lifecycle_transitions'))
    )
    op.create_index(op.f('ix_lifecycle_transitions_tenant_id_customer_id_occurred_at'), 'lifecycle_transitions', ['tenant_id', 'customer_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_lifecycle_transitions_tenant_id_occurred_at'), 'lifecycle_transitions', ['tenant_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_lifecycle_transitions_tenant_id_refresh_key'), 'lifecycle_transitions', ['tenant_id', 'refresh_key'], unique=False)
    op.create_table('automation_firings',
    sa.Column('rule_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('marker', sa.DateTime(), nullable=False),
    sa.Column('fired_at', sa.DateTime(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('tenant_id', sa.Integer(), nullable=False),
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_automation_firings_customer_id_customers')),
    sa.ForeignKeyConstraint(['rule_id'], ['automation_rules.id'], name=op.f('fk_automation_firings_rule_id_automation_rules')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_automation_firings_task_id_tasks')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_automation_firings_tenant_id_tenants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_automation_firings')),
    sa.UniqueConstraint('tenant_id', 'rule_id', 'customer_id', 'subject_id', 'marker', name='uq_automation_firings_occurrence')
    )
    op.create_index(op.f('ix_automation_firings_tenant_id_fired_at'), 'automation_firings', ['tenant_id', 'fired_at'], unique=False)


def downgrade() -> None:
    op.drop_table("automation_firings")
    op.drop_table("lifecycle_transitions")
    op.drop_table("lifecycle_overrides")
    op.drop_table("assignment_rules")
    op.drop_table("automation_rules")
