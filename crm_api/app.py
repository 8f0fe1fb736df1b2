"""The FastAPI application behind ``/api``: routers, problem handlers, the database it uses."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from crm_api import problems, v1
from crm_core import __version__
from crm_core.db import Database


def create_api(database: Callable[[], Database]) -> FastAPI:
    """The API app; ``database`` returns the process's :class:`Database` when a route first needs it."""
    api = FastAPI(title="Kestrel CRM API", version=__version__)
    api.state.database = database
    problems.install_problem_handlers(api)
    api.include_router(v1.router)
    return api
