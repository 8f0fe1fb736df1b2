"""Backup → restore → verify on every database (issue 16): the drill proves a backup restores whole."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm_core.backup import (
    BackupRefused,
    list_backups,
    prune_backups,
    read_backup,
    restore_backup,
    scratch_database,
    take_backup,
    verify_backup,
)
from crm_core.cli import main
from crm_core.db import Database, make_engine
from crm_core.models import Customer
from tests.conftest import live_database
from tests.factories import build_world, create_random_customer


@pytest.fixture(scope="module", params=["sqlite", "postgresql", "mysql"])
def live_db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    with live_database(request.param, tmp_path_factory, "backup") as db:
        world = build_world(db)
        create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn")
        create_random_customer(db, world.rep_other_team, name="Acme Trading")
        yield db


def url_of(db: Database) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def customers(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(select(func.count()).select_from(Customer)).scalar_one())
    finally:
        engine.dispose()


def test_a_backup_restores_whole_and_the_drill_says_so(live_db: Database, tmp_path: Path) -> None:
    made = take_backup(url_of(live_db), tmp_path / "backups")
    assert made.path.stat().st_mode & 0o777 == 0o600 and made.size > 0
    assert (tmp_path / "backups").stat().st_mode & 0o777 == 0o700
    assert read_backup(made.path).dialect == made.dialect
    drill = verify_backup(made, url_of(live_db))
    assert drill.success, drill.failures
    assert drill.data_loss_window < dt.timedelta(minutes=5)

    # a restore into an empty database gives the same rows; into one with data, only when asked
    with scratch_database(url_of(live_db)) as scratch:
        restore_backup(made, scratch)
        assert customers(scratch) == customers(url_of(live_db))
        with pytest.raises(BackupRefused) as refused:
            restore_backup(made, scratch)
        assert refused.value.message_key == "backup.target_not_empty"


def test_the_drill_shows_what_was_written_after_the_backup(live_db: Database, tmp_path: Path) -> None:
    made = take_backup(url_of(live_db), tmp_path)
    with live_db.system_session("test") as session:
        rep = session.scalars(select(Customer.owner_id).limit(1)).one()
    from crm_core.models import User
    from crm_core.services.auth import load_actor

    with live_db.system_session("test") as session:
        username = session.scalars(select(User.username).where(User.id == rep)).one()
    actor = load_actor(live_db, username)
    assert actor is not None
    create_random_customer(live_db, actor, name="Written after the backup")
    drill = verify_backup(made, url_of(live_db))
    assert not drill.success
    assert any("customers" in failure for failure in drill.failures), drill.failures


def test_old_backups_are_pruned_and_foreign_files_refused(tmp_path: Path) -> None:
    for day in range(1, 5):
        (tmp_path / f"kestrel-sqlite-2026120{day}T020000Z.sqlite3").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("not a backup")
    removed = prune_backups(tmp_path, keep=2)
    assert sorted(path.name for path in removed) == ["kestrel-sqlite-20261201T020000Z.sqlite3",
                                                     "kestrel-sqlite-20261202T020000Z.sqlite3"]
    assert [b.path.name for b in list_backups(tmp_path)] == ["kestrel-sqlite-20261204T020000Z.sqlite3",
                                                             "kestrel-sqlite-20261203T020000Z.sqlite3"]
    with pytest.raises(BackupRefused):
        read_backup(tmp_path / "notes.txt")
    with pytest.raises(BackupRefused):
        prune_backups(tmp_path, keep=0)


def test_the_cli_creates_verifies_and_refuses_plainly(live_db: Database, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    folder = str(tmp_path / "cli")
    code = main(["--database-url", url_of(live_db), "backup", "create", "--dir", folder, "--verify", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["verified"] is True and printed["restore_seconds"] >= 0
    code = main(["--database-url", url_of(live_db), "backup", "restore", "--dir", folder])
    captured = capsys.readouterr()
    assert code == 1 and "holds data" in captured.err and "Traceback" not in captured.err
    code = main(["--database-url", url_of(live_db), "backup", "verify", str(tmp_path / "nope.sqlite3")])
    assert code == 1 and "not a Kestrel backup" in capsys.readouterr().err
