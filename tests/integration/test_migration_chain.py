"""Every Alembic migration goes down as well as up (issue 16): head → base → head on every database,
and the schema that comes back is the one the models describe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

from crm_core.db import make_engine
from crm_core.models import Base
from crm_core.schema import alembic_config, current_revision, head_revision
from tests.conftest import database_url, private_database


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = database_url(request.param, tmp_path_factory.mktemp(f"chain-{request.param}"))
    with private_database(url) as private_url:
        engine = make_engine(private_url)
        yield engine
        engine.dispose()


def migrate(engine: Engine, direction: str, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        getattr(command, direction)(config, revision)


def test_the_whole_chain_goes_down_and_up_again(empty_engine: Engine) -> None:
    migrate(empty_engine, "upgrade", "head")
    migrate(empty_engine, "downgrade", "base")
    assert current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}  # nothing left behind
    migrate(empty_engine, "upgrade", "head")
    assert current_revision(empty_engine) == head_revision()
    with empty_engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    # the migrations' own search structures, per database (no model describes them): SQLite's
    # full-text tables, PostgreSQL's trigram indexes
    differences = [diff for diff in differences
                   if not (diff[0] == "remove_table" and "_fts" in diff[1].name)
                   and not (diff[0] == "remove_index" and "_trgm" in diff[1].name)]
    assert differences == [], differences
