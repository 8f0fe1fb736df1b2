"""Reads of the Campaigns page: campaigns with their member counts, a campaign's steps with how many
members are on each, and one page of its members (what the reader may see)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Campaign, Customer
from crm_core.models.marketing import CampaignStep, EmailTemplate, MemberState
from crm_core.models.segments import CampaignMember
from crm_core.queries.paging import Page


@dataclass(frozen=True)
class CampaignRow:
    id: int
    name: str
    status: str
    target_kind: str | None
    entry_mode: str
    version: int
    members: dict[str, int]


def list_campaigns(session: Session) -> list[CampaignRow]:
    """Every campaign of the tenant, newest first, with its members per state (one grouped query)."""
    campaigns = session.scalars(select(Campaign).order_by(Campaign.id.desc())).all()
    counts: dict[int, dict[str, int]] = {}
    for campaign_id, state, count in session.execute(
            select(CampaignMember.campaign_id, CampaignMember.state, func.count())
            .group_by(CampaignMember.campaign_id, CampaignMember.state)):
        counts.setdefault(campaign_id, {})[state] = int(count)
    return [CampaignRow(c.id, c.name, c.status, c.target_kind, c.entry_mode, c.version, counts.get(c.id, {}))
            for c in campaigns]


def step_occupancy(session: Session, campaign_id: int) -> dict[int, int]:
    """Active members per step (the live-edit effect: who an edit of that step touches)."""
    return {step_id: int(count) for step_id, count in session.execute(
        select(CampaignMember.step_id, func.count()).where(CampaignMember.campaign_id == campaign_id,
                                                          CampaignMember.state == "active")
        .group_by(CampaignMember.step_id)) if step_id is not None}


def template_choices(session: Session) -> dict[int, str]:
    return dict(session.execute(select(EmailTemplate.id, EmailTemplate.name)
                                .where(EmailTemplate.archived_at.is_(None)).order_by(EmailTemplate.name)).all())


def steps_of(session: Session, campaign_id: int) -> list[CampaignStep]:
    return list(session.scalars(select(CampaignStep).where(CampaignStep.campaign_id == campaign_id,
                                                           CampaignStep.archived_at.is_(None))
                                .order_by(CampaignStep.position, CampaignStep.id)))


def step_places(session: Session, campaign_id: int) -> dict[int, tuple[int | None, str]]:
    """Every step of the campaign, removed ones too: its number in the live sequence (None: removed) and kind."""
    rows = session.execute(select(CampaignStep.id, CampaignStep.kind, CampaignStep.archived_at)
                           .where(CampaignStep.campaign_id == campaign_id)
                           .order_by(CampaignStep.position, CampaignStep.id)).all()
    places: dict[int, tuple[int | None, str]] = {}
    number = 0
    for step_id, kind, archived_at in rows:
        if archived_at is None:
            number += 1
        places[step_id] = (number if archived_at is None else None, kind)
    return places


@dataclass(frozen=True)
class MemberRow:
    id: int
    customer: str
    state: str
    step_id: int | None
    next_run_at: dt.datetime | None
    cycle: int
    exit_reason: str | None


def list_members(session: Session, campaign_id: int, *, page: int = 1, per_page: int = 50) -> Page[MemberRow]:
    """One page of the campaign's members (those whose customer the reader sees), by id."""
    page = max(1, page)
    rows = session.execute(
        select(CampaignMember.id, Customer.name, CampaignMember.state, CampaignMember.step_id,
               CampaignMember.next_run_at, CampaignMember.cycle, CampaignMember.exit_reason)
        .join(Customer, Customer.id == CampaignMember.customer_id)
        .where(CampaignMember.campaign_id == campaign_id).order_by(CampaignMember.id)
        .limit(per_page + 1).offset((page - 1) * per_page)).all()
    return Page(items=[MemberRow(*row) for row in rows[:per_page]], page=page, per_page=per_page,
                has_next=len(rows) > per_page)


@dataclass(frozen=True)
class Membership:
    """A campaign a customer is in now (not finished), for its 360."""

    member_id: int
    campaign: str
    state: str
    next_run_at: dt.datetime | None


def customer_memberships(session: Session, customer_id: int) -> list[Membership]:
    """The customer's unfinished campaign memberships (under the reader's rule), newest first."""
    rows = session.execute(
        select(CampaignMember.id, Campaign.name, CampaignMember.state, CampaignMember.next_run_at)
        .join(Campaign, Campaign.id == CampaignMember.campaign_id)
        .where(CampaignMember.customer_id == customer_id,
               CampaignMember.state.in_([MemberState.ACTIVE.value, MemberState.PENDING.value]))
        .order_by(CampaignMember.id.desc())).all()
    return [Membership(*row) for row in rows]
