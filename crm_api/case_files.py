"""A case's merge and files over HTTP, beside ``/v1/cases``.

``POST /v1/cases/{id}/merge`` merges the case named in the body into the path's case (the one that
lives on), as ``/v1/customers/{id}/merge`` does for customers: ``If-Match`` carries the survivor's
version (428 without it), the body the duplicate's id and the version the client saw; 409
``merge.error.*``/``case_merge.error.*`` when it cannot be merged. A merged case stays readable (closed,
``merged_into_id`` naming the survivor) rather than answering 308: its own timeline says what happened.

``/v1/cases/{id}/attachments``: ``GET`` lists the files, ``POST`` (multipart, one or more ``files``)
keeps them (422 naming the first refused file: type read from the bytes, size, count), and
``GET …/attachments/{attachment_id}`` downloads one with ``Content-Disposition: attachment`` and
``X-Content-Type-Options: nosniff``. Whoever sees the case may list and download; every download is audited.
``DELETE …/attachments/{attachment_id}`` removes one (204): its uploader while the case is not closed, or a
manager or admin (403 otherwise); audited, with a ``file_removed`` row on the case's timeline.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Header, Path, Response, UploadFile, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.cases import CaseOut, read_case
from crm_api.concurrency import expected_version
from crm_api.dependencies import Caller, Db, Writer
from crm_api.downloads import attachment_disposition
from crm_api.imports import UploadRoute
from crm_api.routing import ApiRoute
from crm_api.schemas import Moment, RecordId, errors_for
from crm_core.config import attachment_max_bytes
from crm_core.errors import NotFound
from crm_core.queries.case_files import AttachmentRow, case_attachments
from crm_core.queries.cases import get_case
from crm_core.rules.attachments import MAX_FILES
from crm_core.services.case_attachments import NewFile, attach_files, download_attachment, remove_attachment
from crm_core.services.case_merging import merge_cases
from crm_core.services.merging import Versions

router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=ApiRoute)
upload_router = APIRouter(prefix="/v1/cases", tags=["cases"], route_class=UploadRoute)

CaseId = Annotated[int, Path(ge=1, le=2**31 - 1)]
AttachmentId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` of the case that lives on (its ETag).')]


class CaseMergeBody(BaseModel):
    """The duplicate case to merge into the path's case, and the version of it the client saw."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"merged_id": 13, "merged_version": 2}]})

    merged_id: RecordId
    merged_version: RecordId = Field(description="The duplicate's version (its ETag) the client saw.")


class CaseMergeOut(BaseModel):
    """The case that lives on after the merge, and the rows that now belong to it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "merge_id": 8, "merged_id": 13, "survivor": {"id": 12, "version": 5},
        "moved": {"case_events.case_id": 3, "case_messages.case_id": 2, "case_attachments.case_id": 1}}]})

    merge_id: int
    merged_id: int
    survivor: CaseOut
    moved: dict[str, int] = Field(description="Rows moved to the survivor, by `table.column`.")


class AttachmentOut(BaseModel):
    """A file kept on a case."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 4, "case_id": 12, "event_id": 31, "file_name": "scanner-error.png", "size": 48213,
        "content_type": "image/png", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "source": "upload", "uploaded_by": "Rita Rep", "created_at": "2026-12-04T09:30:00Z"}]})

    id: int
    case_id: int
    event_id: int | None = Field(description="The reply, note, email or attachment row of the timeline it came with.")
    file_name: str = Field(description="The name it was given, without folders or unsafe characters.")
    size: int = Field(description="In bytes.")
    content_type: str = Field(description="Read from the bytes, not taken from the uploader.")
    sha256: str
    source: str = Field(description="`upload` (a user) or `mail` (the customer's email).")
    uploaded_by: str | None
    created_at: Moment


class AttachmentsForm(BaseModel):
    """The files to keep on the case, as ``multipart/form-data`` fields named ``files``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"files": ["(scanner-error.png)", "(invoice.pdf)"]}]})

    files: list[UploadFile] = Field(description="One or more files (at most 10): images (PNG, JPEG, GIF, WebP), "
                                                "PDF, text/CSV, .docx, .xlsx; each within the size limit (10 MB).")


def _out(row: AttachmentRow) -> AttachmentOut:
    return AttachmentOut(id=row.id, case_id=row.case_id, event_id=row.event_id, file_name=row.file_name,
                         size=row.size, content_type=row.content_type, sha256=row.sha256, source=row.source,
                         uploaded_by=row.uploaded_by, created_at=row.created_at)


def _attachments(db: Db, found: Caller, case_id: int) -> list[AttachmentOut]:
    with db.session(found.actor) as session:
        if get_case(session, case_id) is None:
            raise NotFound("case")
        return [_out(row) for row in case_attachments(session, case_id)]


@router.post("/{case_id}/merge", response_model=CaseMergeOut, responses=errors_for(403, 404, 409, 412, 415, 422, 428),
             summary="Merge a duplicate case into this one")
def merge_case_endpoint(case_id: CaseId, body: CaseMergeBody, response: Response, db: Db, found: Writer,
                        if_match: IfMatch = None) -> CaseMergeOut:
    """Move the replies, notes, emails and files of `merged_id` (same customer) to this case and close it; its
    `merged_into_id` then names this case and the customer's answers to its emails arrive here."""
    result = merge_cases(db, found.actor, case_id, body.merged_id,
                         Versions(expected_version(if_match), body.merged_version))
    return CaseMergeOut(merge_id=result.merge_id, merged_id=body.merged_id,
                        survivor=read_case(db, found, case_id, response), moved=result.moved)


@router.get("/{case_id}/attachments", response_model=list[AttachmentOut], responses=errors_for(404, 422),
            summary="The files of a case")
def list_attachments_endpoint(case_id: CaseId, db: Db, found: Caller) -> list[AttachmentOut]:
    """The case's files, newest first (at most 200)."""
    return _attachments(db, found, case_id)


@router.get("/{case_id}/attachments/{attachment_id}", response_class=Response, responses={
    200: {"description": "The file's bytes, to be saved (`Content-Disposition: attachment`).",
          "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    **errors_for(404, 422)}, summary="Download a file of a case")
def download_attachment_endpoint(case_id: CaseId, attachment_id: AttachmentId, db: Db, found: Caller) -> Response:
    """The file as it was kept, under its own name and type; audited."""
    file = download_attachment(db, found.actor, case_id, attachment_id)
    return Response(content=file.data, media_type=file.content_type, headers={
        "Content-Disposition": attachment_disposition(file.file_name), "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store"})


@router.delete("/{case_id}/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=errors_for(403, 404, 422), summary="Remove a file from a case")
def remove_attachment_endpoint(case_id: CaseId, attachment_id: AttachmentId, db: Db, found: Writer) -> Response:
    """Take the file off the case for good (its name stays on the timeline and in the audit trail); its uploader may
    while the case is not closed, a manager or admin at any time."""
    remove_attachment(db, found.actor, case_id, attachment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@upload_router.post("/{case_id}/attachments", response_model=list[AttachmentOut],
                    status_code=status.HTTP_201_CREATED, responses=errors_for(403, 404, 409, 415, 422),
                    summary="Attach files to a case")
def upload_attachments_endpoint(
    case_id: CaseId, form: Annotated[AttachmentsForm, Form(media_type="multipart/form-data")], db: Db, found: Writer,
) -> list[AttachmentOut]:
    """Keep the files on the case, all or none (422 names the first refused file and why)."""
    limit = attachment_max_bytes()
    # one byte past the limit is enough to refuse a file; one file past the count enough to refuse the request
    new = [NewFile(upload.filename or "file", upload.file.read(limit + 1)) for upload in form.files[:MAX_FILES + 1]]
    ids = set(attach_files(db, found.actor, case_id, new))
    return [row for row in _attachments(db, found, case_id) if row.id in ids]

