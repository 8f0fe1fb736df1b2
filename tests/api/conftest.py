"""Fixtures of the API's contract tests: the FastAPI app over the savepoint ``db``, a world, tokens.

``api`` is a TestClient of ``create_api`` bound to the test's database (every database the
``db`` fixture runs on), mounted as the host mounts it: paths start with ``/api``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette

from crm_api import create_api
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.services.api_tokens import issue_api_token
from tests.factories import World, build_world


@dataclass
class Api:
    """The client and a way to get a token for any actor."""

    client: TestClient
    db: Database

    def token(self, actor: Actor, scope: str = "read_write", expires_in_days: int | None = None) -> str:
        """A fresh token of ``actor``: its secret."""
        return issue_api_token(self.db, actor, name="test", scope=scope, expires_in_days=expires_in_days).secret

    def headers(self, actor: Actor, scope: str = "read_write", **extra: str) -> dict[str, str]:
        """Authorization for a fresh token of ``actor``, plus ``extra`` headers."""
        return {"Authorization": f"Bearer {self.token(actor, scope)}", **extra}


def build_client(db: Database, rate_limit: tuple[int, float] = (10_000, 10.0)) -> TestClient:
    """A client of the API mounted at /api, as server.py mounts it."""
    from server import api_mount  # the host's own mount (its pattern spans a %0A in the path)

    host = Starlette(routes=[api_mount(create_api(lambda: db, rate_limit=rate_limit))])
    return TestClient(host, raise_server_exceptions=False)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def api(db: Database) -> Iterator[Api]:
    with build_client(db) as client:
        yield Api(client, db)
