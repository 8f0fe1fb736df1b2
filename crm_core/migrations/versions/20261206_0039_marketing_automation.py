"""Marketing automation (issue 14): consent ledger, do-not-contact list, email templates, campaign
sequences, the marketing outbox and its touches, per-tenant marketing settings

Revision ID: 0039
Revises: 0038

New tables, and new columns on ``campaigns`` and ``campaign_members`` (where each member is in its
campaign"s sequence). Existing members become ``pending`` in cycle 1; existing campaigns have no
target and no steps; their status takes the sequence's words (active → running, completed → stopped;
models.marketing, decision 0046).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table("marketing_settings",
    sa.Column("tracking_enabled", sa.Boolean(), nullable=False),
    sa.Column("daily_cap_per_sender", sa.Integer(), nullable=False),
    sa.Column("sender_name", sa.String(length=200), nullable=False),
    sa.Column("sender_address", sa.String(length=254), nullable=False),
    sa.Column("postal_address", sa.String(length=500), nullable=False),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_marketing_settings_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_settings"))
    )
    with op.batch_alter_table("marketing_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketing_settings_tenant_id"), ["tenant_id"], unique=True)

    op.create_table("do_not_contact",
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("address", sa.String(length=254), nullable=False),
    sa.Column("reason", sa.String(length=500), nullable=False),
    sa.Column("added_at", sa.DateTime(), nullable=False),
    sa.Column("added_by_id", sa.Integer(), nullable=True),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["added_by_id"], ["users.id"], name=op.f("fk_do_not_contact_added_by_id_users")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_do_not_contact_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_do_not_contact")),
    sa.UniqueConstraint("tenant_id", "channel", "address", name=op.f("uq_do_not_contact_tenant_id_channel_address"))
    )
    op.create_table("email_templates",
    sa.Column("name", sa.String(length=120), nullable=False),
    sa.Column("language", sa.String(length=8), nullable=False),
    sa.Column("subject", sa.String(length=300), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("archived_at", sa.DateTime(), nullable=True),
    sa.Column("created_by_id", sa.Integer(), nullable=True),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_email_templates_created_by_id_users")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_email_templates_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
    sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_email_templates_tenant_id_name"))
    )
    op.create_table("campaign_steps",
    sa.Column("campaign_id", sa.Integer(), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("config", sa.JSON(), nullable=False),
    sa.Column("archived_at", sa.DateTime(), nullable=True),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_steps_campaign_id_campaigns")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_campaign_steps_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_steps"))
    )
    with op.batch_alter_table("campaign_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaign_steps_tenant_id_campaign_id_position"), ["tenant_id", "campaign_id", "position"], unique=False)

    op.create_table("consent_records",
    sa.Column("channel", sa.String(length=16), nullable=False),
    sa.Column("address", sa.String(length=254), nullable=False),
    sa.Column("customer_id", sa.Integer(), nullable=True),
    sa.Column("contact_id", sa.Integer(), nullable=True),
    sa.Column("action", sa.String(length=16), nullable=False),
    sa.Column("basis", sa.String(length=24), nullable=True),
    sa.Column("proof_kind", sa.String(length=24), nullable=False),
    sa.Column("proof", sa.String(length=1000), nullable=False),
    sa.Column("recorded_at", sa.DateTime(), nullable=False),
    sa.Column("recorded_by_id", sa.Integer(), nullable=True),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_consent_records_contact_id_contacts")),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_consent_records_customer_id_customers")),
    sa.ForeignKeyConstraint(["recorded_by_id"], ["users.id"], name=op.f("fk_consent_records_recorded_by_id_users")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_consent_records_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_records"))
    )
    with op.batch_alter_table("consent_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_consent_records_tenant_id_channel_address_recorded_at"), ["tenant_id", "channel", "address", "recorded_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_records_tenant_id_contact_id"), ["tenant_id", "contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_consent_records_tenant_id_customer_id"), ["tenant_id", "customer_id"], unique=False)

    op.create_table("marketing_messages",
    sa.Column("campaign_id", sa.Integer(), nullable=False),
    sa.Column("step_id", sa.Integer(), nullable=False),
    sa.Column("member_id", sa.Integer(), nullable=False),
    sa.Column("cycle", sa.Integer(), nullable=False),
    sa.Column("customer_id", sa.Integer(), nullable=False),
    sa.Column("contact_id", sa.Integer(), nullable=True),
    sa.Column("template_id", sa.Integer(), nullable=True),
    sa.Column("language", sa.String(length=8), nullable=False),
    sa.Column("to_address", sa.String(length=254), nullable=False),
    sa.Column("from_address", sa.String(length=254), nullable=False),
    sa.Column("subject", sa.String(length=300), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("reason", sa.String(length=300), nullable=False),
    sa.Column("consent_record_id", sa.Integer(), nullable=True),
    sa.Column("token", sa.String(length=64), nullable=False),
    sa.Column("message_id", sa.String(length=200), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("last_error", sa.String(length=500), nullable=True),
    sa.Column("queued_at", sa.DateTime(), nullable=False),
    sa.Column("claimed_at", sa.DateTime(), nullable=True),
    sa.Column("sent_at", sa.DateTime(), nullable=True),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_marketing_messages_campaign_id_campaigns")),
    sa.ForeignKeyConstraint(["consent_record_id"], ["consent_records.id"], name=op.f("fk_marketing_messages_consent_record_id_consent_records")),
    sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_marketing_messages_contact_id_contacts")),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_marketing_messages_customer_id_customers")),
    sa.ForeignKeyConstraint(["member_id"], ["campaign_members.id"], name=op.f("fk_marketing_messages_member_id_campaign_members")),
    sa.ForeignKeyConstraint(["step_id"], ["campaign_steps.id"], name=op.f("fk_marketing_messages_step_id_campaign_steps")),
    sa.ForeignKeyConstraint(["template_id"], ["email_templates.id"], name=op.f("fk_marketing_messages_template_id_email_templates")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_marketing_messages_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_messages")),
    sa.UniqueConstraint("tenant_id", "member_id", "step_id", "cycle", name=op.f("uq_marketing_messages_tenant_id_member_id_step_id_cycle")),
    sa.UniqueConstraint("token", name=op.f("uq_marketing_messages_token"))
    )
    with op.batch_alter_table("marketing_messages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketing_messages_message_id"), ["message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_marketing_messages_tenant_id_campaign_id_status"), ["tenant_id", "campaign_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_marketing_messages_tenant_id_status_queued_at"), ["tenant_id", "status", "queued_at"], unique=False)

    op.create_table("marketing_events",
    sa.Column("campaign_id", sa.Integer(), nullable=False),
    sa.Column("step_id", sa.Integer(), nullable=True),
    sa.Column("member_id", sa.Integer(), nullable=True),
    sa.Column("message_id", sa.Integer(), nullable=True),
    sa.Column("customer_id", sa.Integer(), nullable=False),
    sa.Column("contact_id", sa.Integer(), nullable=True),
    sa.Column("cycle", sa.Integer(), nullable=False),
    sa.Column("kind", sa.String(length=16), nullable=False),
    sa.Column("occurred_at", sa.DateTime(), nullable=False),
    sa.Column("detail", sa.String(length=500), nullable=False),
    sa.Column("tenant_id", sa.Integer(), nullable=False),
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("created_at", sa.DateTime(), nullable=False),
    sa.Column("updated_at", sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], name=op.f("fk_marketing_events_campaign_id_campaigns")),
    sa.ForeignKeyConstraint(["contact_id"], ["contacts.id"], name=op.f("fk_marketing_events_contact_id_contacts")),
    sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_marketing_events_customer_id_customers")),
    sa.ForeignKeyConstraint(["member_id"], ["campaign_members.id"], name=op.f("fk_marketing_events_member_id_campaign_members")),
    sa.ForeignKeyConstraint(["message_id"], ["marketing_messages.id"], name=op.f("fk_marketing_events_message_id_marketing_messages")),
    sa.ForeignKeyConstraint(["step_id"], ["campaign_steps.id"], name=op.f("fk_marketing_events_step_id_campaign_steps")),
    sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_marketing_events_tenant_id_tenants")),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_marketing_events"))
    )
    with op.batch_alter_table("marketing_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_marketing_events_tenant_id_campaign_id_kind_step_id"), ["tenant_id", "campaign_id", "kind", "step_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_marketing_events_tenant_id_customer_id_occurred_at"), ["tenant_id", "customer_id", "occurred_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_marketing_events_tenant_id_member_id_kind"), ["tenant_id", "member_id", "kind"], unique=False)

    with op.batch_alter_table("campaign_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("contact_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="pending"))
        batch_op.add_column(sa.Column("step_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("step_entered_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("next_run_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("finished_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("exit_reason", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_campaign_members_tenant_id_campaign_id_state"), ["tenant_id", "campaign_id", "state"], unique=False)
        batch_op.create_index(batch_op.f("ix_campaign_members_tenant_id_state_next_run_at"), ["tenant_id", "state", "next_run_at"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_campaign_members_step_id_campaign_steps"), "campaign_steps", ["step_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_campaign_members_contact_id_contacts"), "contacts", ["contact_id"], ["id"])

    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("target_kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("segment_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lifecycle_stage", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("entry_mode", sa.String(length=16), nullable=False, server_default="snapshot"))
        batch_op.add_column(sa.Column("allow_reentry", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("goal", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("exit_on", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("attribution_days", sa.Integer(), nullable=False, server_default="90"))
        batch_op.add_column(sa.Column("launched_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("paused_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("stopped_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_campaigns_created_by_id_users"), "users", ["created_by_id"], ["id"])
        batch_op.create_foreign_key(batch_op.f("fk_campaigns_segment_id_segments"), "segments", ["segment_id"], ["id"])



    # one vocabulary for a campaign's status, the sequence's (services.campaigns): the former "active" runs,
    # "completed" is stopped ("planned" stays)
    campaigns = sa.table("campaigns", sa.column("status", sa.String))
    op.execute(campaigns.update().where(campaigns.c.status == "active").values(status="running"))
    op.execute(campaigns.update().where(campaigns.c.status == "completed").values(status="stopped"))


def downgrade() -> None:
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaigns_segment_id_segments"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_campaigns_created_by_id_users"), type_="foreignkey")
        batch_op.drop_column("created_by_id")
        batch_op.drop_column("stopped_at")
        batch_op.drop_column("paused_at")
        batch_op.drop_column("launched_at")
        batch_op.drop_column("attribution_days")
        batch_op.drop_column("exit_on")
        batch_op.drop_column("goal")
        batch_op.drop_column("allow_reentry")
        batch_op.drop_column("entry_mode")
        batch_op.drop_column("lifecycle_stage")
        batch_op.drop_column("segment_id")
        batch_op.drop_column("target_kind")

    with op.batch_alter_table("campaign_members", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_campaign_members_contact_id_contacts"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_campaign_members_step_id_campaign_steps"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_campaign_members_tenant_id_state_next_run_at"))
        batch_op.drop_index(batch_op.f("ix_campaign_members_tenant_id_campaign_id_state"))
        batch_op.drop_column("exit_reason")
        batch_op.drop_column("finished_at")
        batch_op.drop_column("cycle")
        batch_op.drop_column("next_run_at")
        batch_op.drop_column("step_entered_at")
        batch_op.drop_column("step_id")
        batch_op.drop_column("state")
        batch_op.drop_column("contact_id")

    campaigns = sa.table("campaigns", sa.column("status", sa.String))
    op.execute(campaigns.update().where(campaigns.c.status == "running").values(status="active"))
    op.execute(campaigns.update().where(campaigns.c.status.in_(["stopped", "paused"])).values(status="completed"))
    # the tables' indexes go with them (MariaDB refuses to drop one a foreign key uses)
    op.drop_table("marketing_events")
    op.drop_table("marketing_messages")
    op.drop_table("consent_records")
    op.drop_table("campaign_steps")
    op.drop_table("email_templates")
    op.drop_table("do_not_contact")
    op.drop_table("marketing_settings")
