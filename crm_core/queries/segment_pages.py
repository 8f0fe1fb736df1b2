"""Saved segments for the API: one segment, its members paged by keyset, and the export's rows.

A segment's members are the members grid's rows (``segments._member_statement`` and
``segments._member_row``: one definition of who is in a segment and what a row holds), read
past the previous page's last id, so a customer joining meanwhile never shifts a page. The
session's scope applies: a rep sees the members of a shared segment that they may see.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core.models import Customer
from crm_core.queries import segments as segment_queries
from crm_core.queries.segments import MemberRow, SegmentRow, count_segment, iter_segment_members, list_saved_segments
from crm_core.rules.segments import SegmentSpec

EXPORT_KEYS = ("field.name", "field.lifecycle_stage", "field.owner", "segments.field.team", "field.industry",
               "field.region", "field.email", "field.phone", "field.tags", "field.last_contacted_at",
               "segments.field.created_at")
"""Catalog keys of the export's column headers (the Segments page's export), then ``id``."""


@dataclass(frozen=True)
class MemberPage:
    """One keyset page of a segment's members."""

    items: list[MemberRow]
    has_next: bool
    next_position: int | None
    total: int | None = None
    total_capped: bool = False


def get_saved_segment(session: Session, segment_id: int) -> SegmentRow | None:
    """One saved segment the session may open (with its latest recorded size), or None."""
    return next((row for row in list_saved_segments(session) if row.id == segment_id), None)


def list_member_page(session: Session, spec: SegmentSpec, *, per_page: int = 50, after: int | None = None,
                     count_cap: int | None = None, today: dt.date | None = None) -> MemberPage:
    """The segment's visible members by id past ``after``; ``count_cap`` adds a count (exact up to the cap)."""
    per_page = max(1, min(per_page, 500))
    catalog = segment_queries.field_catalog(session)
    context = segment_queries.compile_context(session, today=today)
    statement: Any = segment_queries._member_statement(spec, catalog, context)  # noqa: SLF001 - the grid's rows
    if after is not None:
        statement = statement.where(Customer.id > after)
    rows = session.execute(statement.order_by(Customer.id).limit(per_page + 1)).all()
    items = [segment_queries._member_row(row) for row in rows[:per_page]]  # noqa: SLF001
    has_next = len(rows) > per_page
    total, capped = None, False
    if count_cap is not None:
        total = count_segment(session, spec, today=today)
        capped, total = total > count_cap, min(total, count_cap)
    return MemberPage(items=items, has_next=has_next, next_position=items[-1].id if has_next else None,
                      total=total, total_capped=capped)


def export_rows(session: Session, spec: SegmentSpec, stage_label: Any) -> Iterator[list[Any]]:
    """The export's rows (see EXPORT_KEYS), streamed in chunks; ``stage_label`` names a lifecycle stage."""
    for member in iter_segment_members(session, spec):
        yield [member.name, stage_label(member.lifecycle_stage), member.owner_name, member.team_name,
               member.industry, member.region, member.email, member.phone, member.tags, member.last_contacted_at,
               member.created_at, member.id]
