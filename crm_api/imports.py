"""``/v1/imports``: submit an uploaded file as an import job, follow it, fetch its rejected rows.

The upload is kept with :func:`crm_core.jobs.uploads.store_upload` and handed to the queue's
``import`` job (:func:`crm_core.jobs.service.submit_job`) — the same job the import wizard
and the CLI start, with the same roles (admins and managers), options, dry run and results.
The answer is 202 with the job; ``GET /v1/imports/{id}`` shows its progress and, once
finished, its result (the CLI's ``--json``); ``/rejected-rows`` gives the refused rows as CSV
with a reason column (an import's quarantine in the caller's language; a dry run's file in
the language of whoever submitted it).

The upload is ``multipart/form-data`` (any other body is 415), at most
:data:`MAX_UPLOAD_BYTES`. ``Idempotency-Key`` works as on every POST; a retry must send the
same bytes (the multipart boundary included).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Coroutine
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Header, Path, Request, Response, UploadFile, status
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field

from crm_api.dependencies import Caller, Db, Writer
from crm_api.problems import ApiProblem, request_language
from crm_api.routing import IDEMPOTENCY_HEADER, ApiRoute, idempotent
from crm_api.schemas import Moment, errors_for
from crm_core.errors import ImportNotAllowed, NotFound, ValidationFailed
from crm_core.i18n import t
from crm_core.importing.mapping import ImportOptions
from crm_core.importing.presets import check_preset
from crm_core.importing.runner import check_fallback_owner, quarantined_rows_csv
from crm_core.jobs.service import submit_job
from crm_core.jobs.uploads import resolve_upload, store_upload
from crm_core.queries.jobs import JobView, get_job

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
"""The largest file one request may upload (the pages' upload limit is Streamlit's own)."""

Entity = Literal["customers", "contacts", "products", "opportunities", "orders", "activities", "tasks"]

EXAMPLE: dict[str, Any] = {
    "id": 88, "status": "succeeded", "dry_run": False, "entity": "customers", "file_name": "expo-leads.csv",
    "requested_by": "mia", "created_at": "2026-12-05T01:00:00Z", "started_at": "2026-12-05T01:00:01Z",
    "finished_at": "2026-12-05T01:00:09Z", "done": 12000, "total": 12000,
    "result": {"status": "partial", "rows_read": 12000, "created": 11980, "updated": 0, "skipped": 0,
               "rejected": 20, "run_id": 31, "rejected_rows_run_id": 31},
    "error": None, "error_detail": None,
}


class UploadRoute(ApiRoute):
    """A route whose body is a multipart upload: other media types are 415; ``Idempotency-Key`` as on every POST."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = APIRoute.get_route_handler(self)

        async def route(request: Request) -> Response:
            media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if media != "multipart/form-data":
                raise ApiProblem(415, "unsupported_media_type", "api.error.unsupported_media_type")
            key = request.headers.get(IDEMPOTENCY_HEADER)
            return await (handler(request) if key is None else idempotent(request, key, handler))

        return route


router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=ApiRoute)
upload_router = APIRouter(prefix="/v1/imports", tags=["imports"], route_class=UploadRoute)


class ImportJobOut(BaseModel):
    """An import job: where it is, and its result once finished."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    status: str = Field(description="`queued`, `running`, `succeeded`, `failed`, `cancelled` or `interrupted`.")
    dry_run: bool = Field(description="Judge the file only; nothing is written.")
    entity: str
    file_name: str | None
    requested_by: str | None
    created_at: Moment
    started_at: Moment | None
    finished_at: Moment | None
    done: int = Field(description="Rows handled so far.")
    total: int | None = Field(description="Rows in all, once known.")
    result: dict[str, Any] = Field(description="When succeeded: the import's figures (the CLI's `--json`); "
                                               "`status` is imported, partial or rejected (a dry run: valid or "
                                               "invalid, with `would_create`, `would_update`, `would_skip` and "
                                               "`quality`: the data-quality checks the rows would make fail, each "
                                               "`{suite, check, count, examples}`).")
    error: str | None = Field(description="Why the job failed: a stable catalog key.")
    error_detail: str | None = Field(description="The same in the caller's language.")


def job_out(view: JobView, language: str) -> ImportJobOut:
    """The API form of an import job."""
    result = {key: value for key, value in view.result.items() if key != "rejected_csv_path"}  # a server path
    return ImportJobOut(
        id=view.id, status=view.status.value, dry_run=bool(view.params.get("dry_run")),
        entity=str(view.params.get("entity", "")), file_name=view.params.get("file_name"),
        requested_by=view.requested_by, created_at=view.created_at, started_at=view.started_at,
        finished_at=view.finished_at, done=view.done, total=view.total, result=result, error=view.error_key,
        error_detail=t(view.error_key, language, **view.error_params) if view.error_key else None,
    )


def _import_job(db: Db, found: Caller, job_id: int) -> JobView:
    with db.session(found.actor) as session:
        view = get_job(session, job_id)
    if view.kind != "import":
        raise NotFound("job")
    return view


def _read_upload(file: UploadFile) -> bytes:
    data = file.file.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValidationFailed({"file": ("validation.too_long", {"max": MAX_UPLOAD_BYTES})})
    return data


def _mapping(raw: str | None) -> dict[str, Any] | None:
    if raw is None or not raw.strip():
        return None
    try:
        mapping = json.loads(raw)
    except ValueError:
        mapping = None
    if not isinstance(mapping, dict):
        raise ValidationFailed({"mapping": ("validation.text", {})})
    return mapping


JobId = Annotated[int, Path(ge=1, le=2**31 - 1)]


class ImportForm(BaseModel):
    """The upload and the import wizard's options, as ``multipart/form-data`` fields."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"file": "(people.csv)", "entity": "customers", "policy": "skip-invalid"},
        {"file": "(people.xlsx)", "entity": "customers", "dry_run": True}]})

    file: UploadFile = Field(description="CSV or XLSX (`.xlsx` in the file name decides).")
    entity: Entity
    dry_run: bool = Field(default=False, description="Only judge the file: nothing is written.")
    mode: Literal["create", "update", "upsert"] = "create"
    policy: Literal["all-or-nothing", "skip-invalid"] = "all-or-nothing"
    duplicates: Literal["skip", "merge", "create"] = "skip"
    customer_match: Literal["any", "name", "external_id", "email"] | None = Field(default=None, description=(
        "What the customer column (contacts, deals, orders, activities, tasks) holds: the customer's name, "
        "external ID or email, or any of the three. Omitted: the mapping's, else suggested from the header "
        "(`Account ID`, `客户编号`: external_id)."))
    fallback_owner: str | None = Field(default=None, max_length=254, description=(
        "Rows whose owner (assignee, author) matches no user go to this user (username, full name or email; "
        "an active user you may assign records to). Omitted: such rows are refused."))
    preset: str | None = Field(default=None, max_length=60, description=(
        "A mapping preset for another CRM's export, used when no `mapping` is given: `salesforce`, `hubspot`, "
        "`fxiaoke` (纷享销客/销售易, Chinese headers) or `detect` (the preset the header matches best); "
        "an unknown name is 422 `imports.error.unknown_preset`."))
    create_owners: bool = Field(default=False, description=(
        "Admins: rows whose owner (assignee, author) matches no user go to an inactive user of that name, created "
        "once per distinct name (no password, cannot log in; reported, and deleted by a revert when unused). "
        "Not with `fallback_owner`."))
    orphans: Literal["reject", "placeholder", "lead"] = Field(default="reject", description=(
        "Contacts, deals, orders, activities whose customer cell is empty: refused (`reject`), attached to a "
        "placeholder customer of their own (`placeholder`, tagged `no-account`), or made a prospect customer from "
        "the row (`lead`, tagged `imported-lead`). A customer value that finds no customer is always refused."))
    mapping: str | None = Field(default=None, max_length=100_000, description=(
        'JSON: `{"columns": {column: field}, "values": {column: {file value: stored value}}, '
        '"match_on": [field]}`; omitted: suggested from the headers, as the wizard suggests.'))
    encoding: str | None = Field(default=None, max_length=40, description="Omitted: detected.")
    delimiter: str | None = Field(default=None, max_length=1, description="Omitted: detected.")
    sheet: str | None = Field(default=None, max_length=100, description="XLSX: omitted, the first sheet.")


@upload_router.post("", response_model=ImportJobOut, status_code=status.HTTP_202_ACCEPTED,
                    responses=errors_for(400, 403, 409, 415, 422), summary="Submit a file to import (a job)")
def submit_import_endpoint(
    form: Annotated[ImportForm, Form(media_type="multipart/form-data")], request: Request, response: Response,
    db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> ImportJobOut:
    """Queue the import of the file (admins and managers, as on the Import page); 202 with the job to follow."""
    params: dict[str, Any] = {"entity": form.entity, "dry_run": form.dry_run, "mode": form.mode,
                              "policy": form.policy, "duplicates": form.duplicates, "mapping": _mapping(form.mapping),
                              "encoding": form.encoding, "delimiter": form.delimiter, "sheet": form.sheet,
                              "customer_match": form.customer_match, "fallback_owner": form.fallback_owner or None,
                              "preset": check_preset(form.preset),
                              "create_owners": form.create_owners, "orphans": form.orphans}
    # the same refusal as the wizard's and the CLI's, before anything is stored or queued
    check_fallback_owner(db, found.actor, ImportOptions(fallback_owner=form.fallback_owner or None,
                                                        create_owners=form.create_owners))
    name = FilePath(form.file.filename or "upload.csv").name
    path = store_upload(found.actor.tenant_id, name, _read_upload(form.file))
    job_id = submit_job(db, found.actor, "import", {**params, "file_path": str(path), "file_name": name})
    response.headers["Location"] = str(request.url_for("get_import_endpoint", job_id=job_id))
    return job_out(_import_job(db, found, job_id), request_language(request))


@router.get("/{job_id}", response_model=ImportJobOut, responses=errors_for(404, 422),
            summary="An import job's progress and result")
def get_import_endpoint(job_id: JobId, request: Request, db: Db, found: Caller) -> ImportJobOut:
    """The import job (the requester's own; an admin sees the tenant's)."""
    return job_out(_import_job(db, found, job_id), request_language(request))


@router.get("/{job_id}/rejected-rows", response_class=Response, responses={
    200: {"description": "The refused rows as CSV, each with its reason.",
          "content": {"text/csv": {"schema": {"type": "string"}, "example": "Row,Company Name,Email,Reason\n"}}},
    **errors_for(404, 422)}, summary="The rows an import refused (CSV)")
def rejected_rows_endpoint(job_id: JobId, request: Request, db: Db, found: Caller) -> Response:
    """The rows the finished import (or dry run) refused; 404 while it runs or when none was refused."""
    view = _import_job(db, found, job_id)
    language = request_language(request)
    run_id = view.result.get("rejected_rows_run_id")
    csv_path = view.result.get("rejected_csv_path")
    if isinstance(run_id, int):
        body = quarantined_rows_csv(db, found.actor, run_id, language)
    elif isinstance(csv_path, str):
        try:
            body = resolve_upload(view.tenant_id, csv_path).read_bytes()
        except (ImportNotAllowed, OSError) as error:  # removed with its upload after the retention
            raise NotFound("rejected rows") from error
    else:
        raise NotFound("rejected rows")
    name = f"rejected-rows-{job_id}-{dt.date.today().isoformat()}.csv"
    return Response(content=body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
