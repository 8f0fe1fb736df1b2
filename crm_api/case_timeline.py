"""A case's timeline and replies over HTTP, beside ``/v1/cases``.

``GET /v1/cases/{id}/timeline`` pages the case's history newest first (status and priority changes,
assignments, public replies, internal notes, the customer's emails, files), by the same keyset cursor
as every list. ``POST /v1/cases/{id}/replies`` adds a public reply (emailed to the case's contact, meets
the response clocks, opens a new case) or, with ``internal``, a note only colleagues see: the service
the case page calls, so the same refusals (422: empty, too long, hidden characters; a closed case).
Files go to ``/v1/cases/{id}/attachments``; a reply sent here carries none.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import DEFAULT_LIMIT, MAX_LIMIT, Keyset, ListPage, parse_datetime
from crm_api.routing import ApiRoute
from crm_api.schemas import Moment, errors_for
from crm_core.errors import NotFound
from crm_core.queries.cases import TimelineEntry, case_timeline, case_timeline_entry, get_case
from crm_core.services.cases import REPLY_LENGTH, add_case_reply

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=ApiRoute)

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class TimelineEntryOut(BaseModel):
    """One row of a case's history."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 31, "at": "2026-12-04T09:30:00Z", "kind": "reply", "from_value": None, "to_value": None,
        "body": "您好，扫描枪的固件已更新，请重新配对。", "author": "Rita Rep"}]})

    id: int
    at: Moment
    kind: str = Field(description="`opened`, `status`, `priority`, `assignee`, `reply` (public), `note` (internal), "
                                  "`inbound` (the customer's email), `merged`, `merged_from`, `attachment`, "
                                  "`file_refused`, `file_removed`.")
    from_value: str | None = Field(description="For a change: the value before.")
    to_value: str | None = Field(description="For a change: the value after.")
    body: str | None = Field(description="A reply's, note's or email's text, as typed (plain text); a file's name.")
    author: str | None = Field(description="Who did it; null for the customer's email and the system.")


class TimelineQuery(BaseModel):
    """A page of the timeline."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")


class ReplyCreate(BaseModel):
    """A reply to the customer, or an internal note."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"body": "您好，扫描枪的固件已更新，请重新配对。", "internal": False},
        {"body": "Customer on the old firmware; asked the warehouse for a spare.", "internal": True}]})

    body: str = Field(min_length=1, max_length=REPLY_LENGTH, description="Plain text, shown as typed.")
    internal: bool = Field(default=False, description="A note for colleagues: not emailed, does not meet the "
                                                      "response clocks.")


def _out(entry: TimelineEntry) -> TimelineEntryOut:
    return TimelineEntryOut(id=entry.id, at=entry.at, kind=entry.kind, from_value=entry.from_value,
                            to_value=entry.to_value, body=entry.body, author=entry.actor_name)


@router.get("/{case_id}/timeline", response_model=ListPage[TimelineEntryOut], responses=errors_for(400, 404, 422),
            summary="The history of a case")
def case_timeline_endpoint(case_id: CaseId, query: Annotated[TimelineQuery, Query()], db: Db,
                           found: Caller) -> ListPage[TimelineEntryOut]:
    """A page of the case's history, newest first; rows added meanwhile never shift the next page."""
    keyset = Keyset.of("case_timeline", "at", True, {"case_id": case_id})
    before = keyset.position(query.after, parse_datetime)
    with db.session(found.actor) as session:
        if get_case(session, case_id) is None:
            raise NotFound("case")
        rows = case_timeline(session, case_id, limit=query.limit + 1, before=before)
    page, has_more = rows[:query.limit], len(rows) > query.limit
    return ListPage[TimelineEntryOut](
        data=[_out(row) for row in page], has_more=has_more,
        next_cursor=keyset.cursor((page[-1].at, page[-1].id)) if has_more else None)


@router.post("/{case_id}/replies", response_model=TimelineEntryOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 404, 409, 415, 422), summary="Reply to the customer, or add a note")
def add_reply_endpoint(
    case_id: CaseId, body: ReplyCreate, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer, "
                    "so a retried reply is not emailed twice.")] = None,
) -> TimelineEntryOut:
    """A public reply is emailed to the case's contact (with the case number in its subject) and stops the
    response clock; a note is for colleagues only. 422 on a closed case."""
    event_id = add_case_reply(db, found.actor, case_id, body.body, internal=body.internal)
    with db.session(found.actor) as session:
        entry = case_timeline_entry(session, case_id, event_id)
    if entry is None:  # written under the caller's rules a moment ago: only a concurrent erasure removes it
        raise NotFound("case")
    return _out(entry)
