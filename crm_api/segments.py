"""``/v1/segments``: saved segments over HTTP — read, members, export. Segments are built on the page.

Reads call :mod:`crm_core.queries.segments` through :mod:`crm_core.queries.segment_pages`
in the token user's session: a caller lists the segments they may open (own, shared with
their team, tenant-wide) and, of a segment's members, the customers they may see.

**Export** answers a CSV file (``crm_core.exporting.to_csv``: formulas neutralised, UTF-8
with a BOM, headers in the caller's language) named as the page names it. There is no export
job kind on the queue, so the API builds the file in the request and refuses a segment of
more than :data:`EXPORT_ROW_CAP` customers (422 ``export_too_large``, counted first, before a
byte is written); the Segments page exports any size.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db
from crm_api.downloads import attachment_disposition
from crm_api.paging import COUNT_CAP, DEFAULT_LIMIT, MAX_LIMIT, Keyset, ListPage
from crm_api.problems import ApiProblem, request_language
from crm_api.routing import ApiRoute
from crm_api.schemas import Moment, errors_for
from crm_core.errors import NotFound
from crm_core.exporting import export_file_name, to_csv
from crm_core.i18n import t
from crm_core.queries.segment_pages import EXPORT_KEYS, export_rows, get_saved_segment, list_member_page
from crm_core.queries.segments import MemberRow, SegmentRow, count_segment, list_saved_segments
from crm_core.services.segments import validated_spec

router = APIRouter(prefix="/v1/segments", tags=["segments"], route_class=ApiRoute)

EXPORT_ROW_CAP = 50_000
"""The most customers one API export holds (the file is built in the request)."""

EXAMPLE: dict[str, Any] = {
    "id": 4, "name": "Zhejiang VIPs", "description": "Tagged vip, in Zhejiang",
    "conditions": {"match": "all", "conditions": [{"field": "region", "op": "eq", "value": "Zhejiang"},
                                                  {"field": "tags", "op": "contains", "value": "vip"}]},
    "owner_id": 7, "owner_name": "Rita Rep", "sharing": "team", "team_id": 1, "team_name": "East",
    "last_count": 132, "last_counted_at": "2026-12-05T01:00:00Z", "updated_at": "2026-12-04T16:02:11Z", "version": 2,
}
MEMBER_EXAMPLE: dict[str, Any] = {
    "id": 42, "name": "Hangzhou Kestrel Trading Co.", "lifecycle_stage": "customer", "owner_name": "Rita Rep",
    "team_name": "East", "industry": "Retail", "region": "Zhejiang", "email": "buyer@kestrel.example",
    "phone": "+86 138 0013 8000", "tags": ["vip"], "last_contacted_at": None, "created_at": "2026-12-01T08:30:00Z",
}


class SegmentOut(BaseModel):
    """A saved segment with its latest recorded size."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    name: str
    description: str
    conditions: dict[str, Any] = Field(description="The segment's conditions, as the builder saved them.")
    owner_id: int
    owner_name: str
    sharing: str = Field(description="`private`, `team` or `tenant`.")
    team_id: int | None
    team_name: str | None
    last_count: int | None = Field(description="Members at the last recorded count (visible to its recorder).")
    last_counted_at: Moment | None
    updated_at: Moment
    version: int


class MemberOut(BaseModel):
    """A customer of a segment, as the members grid shows them."""

    model_config = ConfigDict(json_schema_extra={"examples": [MEMBER_EXAMPLE]})

    id: int
    name: str
    lifecycle_stage: str
    owner_name: str | None
    team_name: str | None
    industry: str | None
    region: str | None
    email: str | None
    phone: str | None
    tags: list[str]
    last_contacted_at: Moment | None
    created_at: Moment


class PageQuery(BaseModel):
    """Cursor paging."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


class ExportQuery(BaseModel):
    """The export's format."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    format: Literal["csv"] = "csv"


def segment_out(row: SegmentRow) -> SegmentOut:
    """The API form of a saved segment."""
    return SegmentOut(id=row.id, name=row.name, description=row.description, conditions=row.conditions,
                      owner_id=row.owner_id, owner_name=row.owner_name, sharing=row.sharing, team_id=row.team_id,
                      team_name=row.team_name, last_count=row.last_count, last_counted_at=row.last_counted_at,
                      updated_at=row.updated_at, version=row.version)


def member_out(row: MemberRow) -> MemberOut:
    """The API form of a member row."""
    return MemberOut(id=row.id, name=row.name, lifecycle_stage=row.lifecycle_stage, owner_name=row.owner_name,
                     team_name=row.team_name, industry=row.industry, region=row.region, email=row.email,
                     phone=row.phone, tags=[tag.strip() for tag in row.tags.split(",") if tag.strip()],
                     last_contacted_at=row.last_contacted_at, created_at=row.created_at)


def _id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an id")
    return value


SegmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=ListPage[SegmentOut], responses=errors_for(400, 422), summary="List saved segments")
def list_segments_endpoint(query: Annotated[PageQuery, Query()], db: Db, found: Caller) -> ListPage[SegmentOut]:
    """The saved segments the caller may open, by id."""
    keyset = Keyset.of("segments", "id", False, {})
    after = (keyset.position(query.after, _id) or (0, 0))[1]
    with db.session(found.actor) as session:
        # a tenant keeps tens of segments: the list query reads them all, with their latest sizes
        rows = sorted((row for row in list_saved_segments(session) if row.id > after), key=lambda row: row.id)
    page = rows[:query.limit]
    has_more = len(rows) > query.limit
    cursor = keyset.cursor((page[-1].id, page[-1].id) if has_more else None)
    total = None
    if query.include_total:
        with db.session(found.actor) as session:
            total = len(list_saved_segments(session))
    return ListPage[SegmentOut](data=[segment_out(row) for row in page], next_cursor=cursor, has_more=has_more,
                                total=min(total, COUNT_CAP) if total is not None else None,
                                total_capped=total is not None and total > COUNT_CAP)


def _segment(db: Db, found: Caller, segment_id: int) -> SegmentRow:
    with db.session(found.actor) as session:
        row = get_saved_segment(session, segment_id)
    if row is None:
        raise NotFound("segment")
    return row


@router.get("/{segment_id}", response_model=SegmentOut, responses=errors_for(404, 422), summary="Get a segment")
def get_segment_endpoint(segment_id: SegmentId, db: Db, found: Caller) -> SegmentOut:
    """One saved segment the caller may open."""
    return segment_out(_segment(db, found, segment_id))


@router.get("/{segment_id}/members", response_model=ListPage[MemberOut], responses=errors_for(400, 404, 422),
            summary="List a segment's members")
def list_members_endpoint(segment_id: SegmentId, query: Annotated[PageQuery, Query()], db: Db,
                          found: Caller) -> ListPage[MemberOut]:
    """The customers the segment holds now that the caller may see, by id."""
    segment = _segment(db, found, segment_id)
    keyset = Keyset.of("segment_members", "id", False, {"segment": segment_id})
    position = keyset.position(query.after, _id)
    after = position[1] if position else None
    with db.session(found.actor) as session:
        spec = validated_spec(session, segment.conditions)
        page = list_member_page(session, spec, per_page=query.limit, after=after,
                                count_cap=COUNT_CAP if query.include_total else None)
    cursor = keyset.cursor(None if page.next_position is None else (page.next_position, page.next_position))
    return ListPage[MemberOut](data=[member_out(row) for row in page.items], next_cursor=cursor,
                               has_more=page.has_next, total=page.total, total_capped=page.total_capped)


@router.get("/{segment_id}/export", responses={
    200: {"description": "The members as CSV (UTF-8 with a BOM; formulas neutralised).",
          "content": {"text/csv": {"schema": {"type": "string"}, "example": "\ufeffName,Lifecycle stage,…,id\n"}}},
    **errors_for(404, 422)}, response_class=Response, summary="Export a segment's members (CSV)")
def export_segment_endpoint(segment_id: SegmentId, query: Annotated[ExportQuery, Query()], request: Request,
                            db: Db, found: Caller) -> Response:
    """The members the caller may see as a CSV file, column headers in the caller's language; a segment of more
    than 50,000 customers is refused (422 `export_too_large`): export it from the Segments page."""
    segment = _segment(db, found, segment_id)
    language = request_language(request)
    with db.session(found.actor) as session:
        spec = validated_spec(session, segment.conditions)
        count = count_segment(session, spec)
        if count > EXPORT_ROW_CAP:
            raise ApiProblem(422, "export_too_large", "api_resources.export_too_large", count=count,
                             cap=EXPORT_ROW_CAP)
        headers = [*(t(key, language) for key in EXPORT_KEYS), "id"]
        body = to_csv(headers, export_rows(session, spec, lambda stage: t(f"stage.{stage}", language)))
    name = export_file_name("segment", query.format, name=segment.name, day=dt.date.today())
    return Response(content=body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": attachment_disposition(name)})
