"""Version 1 of the API: ``/api/v1/…``. Only the status endpoint so far; later issues add resources."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from crm_core import __version__, schema
from crm_core.db import Database

router = APIRouter(prefix="/v1")


class Status(BaseModel):
    """What is running: the application's version and the database's Alembic revision."""

    version: str
    schema_revision: str | None


def database(request: Request) -> Database:
    """The host's database, handed to the API when it was created (see ``create_api``)."""
    provider = request.app.state.database
    result = provider()
    assert isinstance(result, Database)
    return result


@router.get("/status", response_model=Status)
def status(db: Annotated[Database, Depends(database)]) -> Status:
    """The running version and the schema revision the database is at (None when it has none)."""
    return Status(version=__version__, schema_revision=schema.current_revision(db.engine))
