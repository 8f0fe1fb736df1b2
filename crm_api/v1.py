"""Version 1 of the API: ``/api/v1/…``. The status endpoint lives here; resources have a module each."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from crm_api.dependencies import Db
from crm_core import __version__, schema

router = APIRouter(prefix="/v1")


class Status(BaseModel):
    """What is running: the application's version and the database's Alembic revision."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"version": "0.9.0", "schema_revision": "0013"}]})

    version: str
    schema_revision: str | None


@router.get("/status", response_model=Status, tags=["status"])
def status(db: Db) -> Status:
    """The running version and the schema revision the database is at (None when it has none). No token needed."""
    return Status(version=__version__, schema_revision=schema.current_revision(db.engine))
