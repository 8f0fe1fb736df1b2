"""``/v1/users``: the Users page over HTTP, for admins only. No delete: a user is deactivated.

Reads call the user list's rows (:mod:`crm_core.queries.user_pages`, keyset by id); writes
call ``create_user`` and ``update_user`` (:mod:`crm_core.services.tenants`), whose password
rules are :func:`crm_core.services.auth.password_problems`. Deactivating a user stops their
API tokens at once: every request authenticates against the user's ``is_active``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from crm_api.concurrency import etag, expected_version
from crm_api.dependencies import Caller, Db, Writer
from crm_api.paging import COUNT_CAP, DEFAULT_LIMIT, MAX_LIMIT, Keyset, ListPage
from crm_api.problems import ApiProblem
from crm_api.routing import ApiRoute
from crm_api.schemas import NOT_NULL, Moment, RecordId, errors_for
from crm_core.errors import NotFound
from crm_core.queries.user_pages import get_user_row, list_user_page
from crm_core.queries.users import UserRow
from crm_core.services.api_tokens import TokenCaller
from crm_core.services.tenants import UserInput, create_user, update_user

router = APIRouter(prefix="/v1/users", tags=["users"], route_class=ApiRoute)

Role = Literal["admin", "manager", "rep", "analyst"]
Language = Literal["en", "zh-CN"]

EXAMPLE: dict[str, Any] = {
    "id": 7, "username": "rita", "full_name": "Rita Rep", "email": "rita@kestrel.example", "role": "rep",
    "team_id": 1, "team_name": "East", "is_active": True, "locked_until": None,
    "last_login_at": "2026-12-04T08:01:00Z", "version": 3,
}


class UserOut(BaseModel):
    """A user as the Users page shows them (never a password or its hash)."""

    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    id: int
    username: str
    full_name: str
    email: str | None
    role: str = Field(description="`admin`, `manager`, `rep` or `analyst`.")
    team_id: int | None
    team_name: str | None
    is_active: bool = Field(description="False: the user can neither sign in nor use their API tokens.")
    locked_until: Moment | None = Field(description="Set while failed logins keep the account locked.")
    last_login_at: Moment | None
    version: int = Field(description="Send it back in `If-Match` (or the PATCH body) to change the user.")


class UserCreate(BaseModel):
    """A new user of the caller's tenant. The password: at least 10 characters with a letter and a digit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "username": "rita", "full_name": "Rita Rep", "role": "rep", "team_id": 1, "email": "rita@kestrel.example",
        "password": "Kestrel-2026-rita", "language": "zh-CN"}]})

    username: str = Field(max_length=64)
    full_name: str = Field(max_length=120)
    role: Role
    email: str | None = Field(default=None, max_length=254)
    team_id: RecordId | None = None
    password: str = Field(max_length=200, json_schema_extra={"writeOnly": True})
    language: Language = "en"


class UserPatch(BaseModel):
    """The fields to change. `is_active: false` deactivates the user (their tokens stop at once); an admin cannot
    demote or deactivate themselves."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"role": "manager", "team_id": 2, "version": 3}, {"is_active": False, "version": 4}]})

    full_name: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=120)
    email: str | None = Field(default=None, max_length=254)
    role: Annotated[Role | None, NOT_NULL] = Field(default=None)
    team_id: RecordId | None = None
    is_active: Annotated[bool | None, NOT_NULL] = Field(default=None)
    password: Annotated[str | None, NOT_NULL] = Field(default=None, max_length=200,
                                                      json_schema_extra={"writeOnly": True})
    version: Annotated[RecordId | None, NOT_NULL] = Field(
        default=None, description="The version edited; or send it as If-Match.")


class UserQuery(BaseModel):
    """The Users page's filters."""

    model_config = ConfigDict(extra="forbid")  # a misspelt filter is a 422, never silently ignored

    role: Role | None = None
    team_id: RecordId | None = None
    active_only: bool = False
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    after: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="`next_cursor` of the previous page.")
    include_total: bool = Field(default=False, description="Count the matches too (up to 1,000).")


def user_out(row: UserRow) -> UserOut:
    """The API form of a user row."""
    return UserOut(id=row.id, username=row.username, full_name=row.full_name, email=row.email, role=row.role,
                   team_id=row.team_id, team_name=row.team_name, is_active=row.is_active,
                   locked_until=row.locked_until, last_login_at=row.last_login_at, version=row.version)


def _admin(found: TokenCaller) -> None:
    if not found.actor.is_admin:
        raise ApiProblem(403, "access_denied", "error.access_denied")


def read_user(db: Db, found: Caller, user_id: int, response: Response) -> UserOut:
    """The user as stored now, with its ETag; 404 outside the caller's tenant."""
    with db.session(found.actor) as session:
        row = get_user_row(session, user_id)
        if row is None:
            raise NotFound("user")
        out = user_out(row)
    response.headers["ETag"] = etag(out.version)
    return out


def _parse_id(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("not an id")
    return value


UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]
IfMatch = Annotated[str | None, Header(description='`"<version>"` from the ETag or the body.')]


@router.get("", response_model=ListPage[UserOut], responses=errors_for(400, 403, 422), summary="List users")
def list_users_endpoint(query: Annotated[UserQuery, Query()], db: Db, found: Caller) -> ListPage[UserOut]:
    """The users of the caller's tenant, by id (admins only)."""
    _admin(found)
    keyset = Keyset.of("users", "id", False, {
        "role": query.role, "team_id": query.team_id, "active_only": query.active_only})
    position = keyset.position(query.after, _parse_id)
    after = position[1] if position else None
    with db.session(found.actor) as session:
        page = list_user_page(session, active_only=query.active_only, role=query.role, team_id=query.team_id,
                              per_page=query.limit, after=after,
                              count_cap=COUNT_CAP if query.include_total else None)
    cursor = keyset.cursor(None if page.next_position is None else (page.next_position, page.next_position))
    return ListPage[UserOut](data=[user_out(row) for row in page.items], next_cursor=cursor, has_more=page.has_next,
                             total=page.total, total_capped=page.total_capped)


@router.get("/{user_id}", response_model=UserOut, responses=errors_for(403, 404, 422), summary="Get one user")
def get_user_endpoint(user_id: UserId, db: Db, found: Caller, response: Response) -> UserOut:
    """One user of the caller's tenant (admins only)."""
    _admin(found)
    return read_user(db, found, user_id, response)


@router.post("", response_model=UserOut, status_code=status.HTTP_201_CREATED,
             responses=errors_for(400, 403, 409, 415, 422), summary="Add a user")
def create_user_endpoint(
    body: UserCreate, request: Request, response: Response, db: Db, found: Writer,
    idempotency_key: Annotated[str | None, Header(
        description="Any unique string (a UUID): the same key and body within 24 h replay the first answer.")] = None,
) -> UserOut:
    """Add a user to the caller's tenant (admins only); the password rules are the Users page's."""
    _admin(found)
    form = UserInput(username=body.username, full_name=body.full_name, role=body.role, email=body.email or "",
                     team_id=body.team_id, password=body.password, language=body.language)
    user_id = create_user(db, found.actor, form)
    response.headers["Location"] = str(request.url_for("get_user_endpoint", user_id=user_id))
    return read_user(db, found, user_id, response)


@router.patch("/{user_id}", response_model=UserOut, responses=errors_for(403, 404, 412, 415, 422, 428),
              summary="Change a user's role, team, details or active flag")
def update_user_endpoint(user_id: UserId, body: UserPatch, response: Response, db: Db, found: Writer,
                         if_match: IfMatch = None) -> UserOut:
    """Save the given fields on the version named by `If-Match` (or `version`); 412 when it is stale.
    `is_active: false` stops the user's sign-in and API tokens from the next request on."""
    _admin(found)
    version = expected_version(if_match, body.version)
    with db.session(found.actor) as session:
        row = get_user_row(session, user_id)
    if row is None:
        raise NotFound("user")
    given = body.model_fields_set - {"version"}
    form = UserInput(
        username=row.username,
        full_name=body.full_name if body.full_name is not None else row.full_name,
        role=body.role if body.role is not None else row.role,
        email=(body.email or "") if "email" in given else (row.email or ""),
        team_id=body.team_id if "team_id" in given else row.team_id,
        password=body.password or "",
    )
    is_active = body.is_active if body.is_active is not None else row.is_active
    update_user(db, found.actor, user_id, form, expected_version=version, is_active=is_active)
    return read_user(db, found, user_id, response)
