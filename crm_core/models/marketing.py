"""Tables of marketing automation (issue 14): the consent ledger and do-not-contact list, email
templates, a campaign's sequence of steps, the outbox of marketing email and the touches
(events) that results and attribution are computed from.

A campaign's members (``campaign_members``, one row per customer and campaign) carry where each
one is in the campaign's sequence: its step, when it runs next, its state and how many times it
entered (``cycle``; re-entry is off unless the campaign allows it). A message is written to the
outbox once per member, step and cycle (a unique key): retries and a killed worker cannot send
a step twice. Every send checks the ledger at the moment it leaves (decision 0046).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned, utcnow


class Channel(enum.StrEnum):
    """How a person may be contacted; the ledger records a lawful basis per channel and address."""

    EMAIL = "email"
    PHONE = "phone"
    SMS = "sms"
    WECHAT = "wechat"


ANY_CHANNEL = "all"  # a do-not-contact entry for every channel


class LawfulBasis(enum.StrEnum):
    """GDPR art. 6 / PIPL art. 13: why a message may be sent."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGITIMATE_INTEREST = "legitimate_interest"


class ConsentAction(enum.StrEnum):
    GRANT = "grant"
    WITHDRAW = "withdraw"


class ProofKind(enum.StrEnum):
    """Where a ledger entry came from: the evidence a regulator would ask for."""

    FORM = "form"  # a web form (which one, in ``proof``)
    IMPORT = "import"  # an import run (its id in ``proof``)
    MANUAL = "manual"  # entered by a user, with a note
    UNSUBSCRIBE = "unsubscribe"  # the one-click link or List-Unsubscribe-Post
    PREFERENCE_PAGE = "preference_page"  # the person's own choice on the preference page
    BOUNCE = "bounce"  # the address does not exist (a DSN)


class ConsentRecord(TenantScoped, Base):
    """One entry of the append-only consent ledger: a grant (with its lawful basis) or a withdrawal of
    contacting ``address`` over ``channel``. The latest entry per (channel, address) is what holds."""

    __tablename__ = "consent_records"
    __table_args__ = (
        Index(None, "tenant_id", "channel", "address", "recorded_at"),
        Index(None, "tenant_id", "contact_id"),
        Index(None, "tenant_id", "customer_id"),
    )

    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(254))  # normalised: email lower-cased, phone E.164, WeChat id
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    action: Mapped[str] = mapped_column(String(16))  # ConsentAction
    basis: Mapped[str | None] = mapped_column(String(24))  # LawfulBasis; None on a withdrawal
    proof_kind: Mapped[str] = mapped_column(String(24))  # ProofKind
    proof: Mapped[str] = mapped_column(String(1000), default="")  # the note, the form, the import run
    recorded_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: the person or the system


class DoNotContact(TenantScoped, Base):
    """An address nobody may contact over ``channel`` (or ``all``), whatever the ledger says."""

    __tablename__ = "do_not_contact"
    __table_args__ = (UniqueConstraint("tenant_id", "channel", "address"),)

    channel: Mapped[str] = mapped_column(String(16))  # Channel or ANY_CHANNEL
    address: Mapped[str] = mapped_column(String(254))
    reason: Mapped[str] = mapped_column(String(500), default="")
    added_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class EmailTemplate(TenantScoped, Versioned, Base):
    """A marketing email in one language; subject and body are Jinja2 (sandboxed) over the contact,
    the customer and the owner."""

    __tablename__ = "email_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8), default="en")  # en | zh-CN
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)  # plain text; links become tracked when tracking is on
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class StepKind(enum.StrEnum):
    EMAIL = "email"  # config: {"template_id": int}
    TASK = "task"  # config: {"activity_kind": "call"|"visit"|..., "title": str, "due_days": int}
    WAIT = "wait"  # config: {"days": int, "business_days": bool}
    BRANCH = "branch"  # config: {"event": "opened"|"clicked"|"replied"|"stage_changed"|"deal_created",
    #                            "within_days": int, "then_step": step id | None (next), "else_step": ...}
    GOAL = "goal"  # config: {"kind": "deal_won"} | {"kind": "lifecycle", "stage": "customer"}


class CampaignStep(TenantScoped, Versioned, Base):
    """One step of a campaign's sequence, in ``position`` order. A step removed from a live sequence
    is archived, not deleted: members on it move on, and its messages and touches keep their step."""

    __tablename__ = "campaign_steps"
    __table_args__ = (Index(None, "tenant_id", "campaign_id", "position"),)

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # StepKind
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class MemberState(enum.StrEnum):
    """Where a campaign member is: not yet started (the campaign is a draft or paused), in the
    sequence, or finished (its last step done, its goal reached, or an exit rule)."""

    PENDING = "pending"
    ACTIVE = "active"
    COMPLETED = "completed"
    GOAL = "goal"
    EXITED = "exited"


class MessageStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"  # claimed by a sender; the SMTP transaction may be under way
    SENT = "sent"
    SKIPPED = "skipped"  # the ledger, the do-not-contact list, a cap or a missing variable stopped it
    FAILED = "failed"  # refused by the server after the last retry
    BOUNCED = "bounced"


class MarketingMessage(TenantScoped, Base):
    """The outbox: one email of one step to one member (in one cycle), rendered when queued and
    checked against the ledger again when sent. ``token`` is the secret in its unsubscribe,
    preference, open and click links."""

    __tablename__ = "marketing_messages"
    __table_args__ = (
        UniqueConstraint("tenant_id", "member_id", "step_id", "cycle"),
        UniqueConstraint("token"),
        Index(None, "tenant_id", "status", "queued_at"),
        Index(None, "tenant_id", "campaign_id", "status"),
        Index(None, "message_id"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    step_id: Mapped[int] = mapped_column(ForeignKey("campaign_steps.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("campaign_members.id"))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    template_id: Mapped[int | None] = mapped_column(ForeignKey("email_templates.id"))
    language: Mapped[str] = mapped_column(String(8), default="en")
    to_address: Mapped[str] = mapped_column(String(254), default="")
    from_address: Mapped[str] = mapped_column(String(254), default="")
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.QUEUED.value)
    reason: Mapped[str] = mapped_column(String(300), default="")  # the basis it left on, or why it did not
    consent_record_id: Mapped[int | None] = mapped_column(ForeignKey("consent_records.id"))
    token: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(200), default="")  # RFC 5322 Message-ID, fixed when queued
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    queued_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class TouchKind(enum.StrEnum):
    ENTERED = "entered"
    SENT = "sent"
    SKIPPED = "skipped"
    # no DELIVERED: the results derive "delivered" from the sends and bounces (queries.campaign_results.delivered_send)
    OPENED = "opened"
    CLICKED = "clicked"
    REPLIED = "replied"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    TASK = "task"
    GOAL = "goal"
    EXITED = "exited"
    COMPLETED = "completed"


class MarketingEvent(TenantScoped, Base):
    """A touch: something a campaign did to a member or a member did with a campaign's message.
    Results, attribution, the 360 timeline and the sequence's branches read these."""

    __tablename__ = "marketing_events"
    __table_args__ = (
        Index(None, "tenant_id", "campaign_id", "kind", "step_id"),
        Index(None, "tenant_id", "customer_id", "occurred_at"),
        Index(None, "tenant_id", "member_id", "kind"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    step_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_steps.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_members.id"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_messages.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    kind: Mapped[str] = mapped_column(String(16))  # TouchKind
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    detail: Mapped[str] = mapped_column(String(500), default="")  # the link clicked, the skip reason …


class MarketingSettings(TenantScoped, Versioned, Base):
    """A tenant's marketing settings: open/click tracking, each sender's daily cap, the sender identity
    and postal address every marketing email carries (Advertising Law art. 43, CAN-SPAM)."""

    __tablename__ = "marketing_settings"
    __table_args__ = (Index(None, "tenant_id", unique=True),)

    tracking_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    daily_cap_per_sender: Mapped[int] = mapped_column(Integer, default=2000)
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    sender_address: Mapped[str] = mapped_column(String(254), default="")  # empty: the tenant's mail from address
    postal_address: Mapped[str] = mapped_column(String(500), default="")


class CampaignDaily(TenantScoped, Base):
    """The results page's counts (decision 0051): members whose *first* touch of ``kind`` at one level fell
    on ``day``, per slice of customers (their owner and team, as :mod:`crm_core.access` looks at them).

    ``level`` is ``step`` (per campaign and step; ``step_id`` None: the campaign's own touches), ``campaign``
    (per campaign, a member of two steps once) or ``tenant`` (every campaign, a member of two campaigns
    once; ``campaign_id`` None). ``kind`` is a touch kind, ``_any`` (any touch: the members reached) or
    ``_skip`` (skipped sends per ``detail``, the reason). Counting the first touch makes the rows additive:
    a period sums its days. The rows with ``day`` None are each slice's sum over all days (every member
    once), what the page reads without a period; ``week`` rows sum a slice's days per week (``day`` the Monday),
    what a period's full weeks are read from. ``whole`` rows repeat the counts without the slice (owner
    and team None) for those who see the whole tenant: they read far fewer rows. Written only by the
    ``campaign_results_refresh`` job.
    """

    __tablename__ = "campaign_daily"
    # one campaign (all days: day NULL, or a period's days or weeks), every campaign (the same)
    __table_args__ = (Index(None, "tenant_id", "whole", "week", "campaign_id", "day"),
                      Index(None, "tenant_id", "whole", "week", "day"))

    level: Mapped[str] = mapped_column(String(8))
    day: Mapped[dt.date | None] = mapped_column(Date)  # None: all days
    campaign_id: Mapped[int | None] = mapped_column(Integer)
    step_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(String(500), default="")
    customer_owner_id: Mapped[int | None] = mapped_column(Integer)
    customer_team_id: Mapped[int | None] = mapped_column(Integer)
    members: Mapped[int] = mapped_column(Integer)
    whole: Mapped[bool] = mapped_column(Boolean, default=False)
    week: Mapped[bool] = mapped_column(Boolean, default=False)  # a week's sum, ``day`` its Monday


class CampaignInfluence(TenantScoped, Base):
    """One campaign's counting touches on one deal and the won revenue credited to it (decisions 0050, 0051).

    ``first_credit``/``last_credit``/``linear_credit`` are the rule's (:mod:`crm_core.rules.attribution`)
    for the deal as a whole, over every campaign's touches; ``deal_row`` is true on one row per deal (the
    lowest campaign id), so deals are counted once over campaigns. Seen under the deal's rule (its owner)
    and its customer's (owner and team). Written only by the ``campaign_results_refresh`` job.
    """

    __tablename__ = "campaign_influence"
    __table_args__ = (Index(None, "tenant_id", "campaign_id"), Index(None, "tenant_id", "opportunity_id"))

    opportunity_id: Mapped[int] = mapped_column(Integer)
    campaign_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    created_at_deal: Mapped[dt.datetime] = mapped_column(DateTime)
    won_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    first_at: Mapped[dt.datetime] = mapped_column(DateTime)
    last_at: Mapped[dt.datetime] = mapped_column(DateTime)
    first_credit: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    last_credit: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    linear_credit: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    deal_row: Mapped[bool] = mapped_column(Boolean)
    owner_id: Mapped[int | None] = mapped_column(Integer)  # the deal's
    customer_owner_id: Mapped[int | None] = mapped_column(Integer)
    customer_team_id: Mapped[int | None] = mapped_column(Integer)


class CampaignResultsRun(TenantScoped, Base):
    """When a tenant's ``campaign_daily`` and ``campaign_influence`` rows were last counted."""

    __tablename__ = "campaign_results_runs"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
