"""Database files are readable by their owner only."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from crm_core.config import keep_private
from crm_core.db import make_engine


def test_a_new_sqlite_database_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask: files 0644 unless made otherwise
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'crm.db'}")
        with engine.connect() as connection:
            connection.execute(text("CREATE TABLE t (a INTEGER)"))
            connection.commit()
            modes = {path.name: path.stat().st_mode & 0o777 for path in (tmp_path / "data").iterdir()}
        engine.dispose()
    finally:
        os.umask(previous)
    assert modes["crm.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes  # crm.db-wal and -shm follow the database


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    path.write_bytes(b"")
    path.chmod(0o644)
    keep_private(path)
    assert path.stat().st_mode & 0o777 == 0o600
