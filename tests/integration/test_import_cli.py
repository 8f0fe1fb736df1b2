"""``python -m crm_core import``: the JSON object, the exit codes, and the same path as the page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import text

from crm_core.cli import main
from crm_core.db import Database
from tests.factories import build_world

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
KEYS = {"status", "rows_read", "created", "updated", "skipped", "rejected", "run_id", "failures"}


def run_cli(capsys: pytest.CaptureFixture[str], db: Database, *args: str) -> tuple[int, dict]:
    code = main(["--database-url", str(db.engine.url), *args])
    out = capsys.readouterr().out.strip()
    return code, (json.loads(out) if out.startswith("{") else {})


@pytest.fixture
def admin(sqlite_db: Database) -> str:
    return build_world(sqlite_db).admin.username


def customers(db: Database) -> int:
    with db.system_session("test") as session:
        return int(session.execute(text("SELECT COUNT(*) FROM customers")).scalar_one())


def test_a_clean_file_imports_and_exits_0(capsys, sqlite_db: Database, admin: str) -> None:  # type: ignore[no-untyped-def]
    code, payload = run_cli(
        capsys, sqlite_db, "import", "customers", str(SAMPLES / "customers_clean.csv"), "--as", admin, "--json"
    )
    assert code == 0
    assert set(payload) >= KEYS
    assert (payload["status"], payload["rows_read"], payload["created"], payload["failures"]) == ("imported", 4, 4, [])
    assert customers(sqlite_db) == 4


def test_the_dirty_gbk_file_is_rejected_whole_and_exits_1(capsys, sqlite_db: Database, admin: str) -> None:  # type: ignore[no-untyped-def]
    code, payload = run_cli(
        capsys, sqlite_db, "import", "customers", str(SAMPLES / "customers_dirty_gbk.csv"), "--as", admin, "--json"
    )
    assert code == 1
    assert (payload["status"], payload["rows_read"], payload["created"]) == ("rejected", 10, 0)
    assert customers(sqlite_db) == 0
    by_column = {(f["column"], f["expectation"]): f for f in payload["failures"]}
    email = by_column[("email", "expect_column_values_to_match_regex")]
    assert (email["count"], email["examples"]) == (1, ["yuanhang@example"])
    assert set(payload["failures"][0]) >= {"expectation", "column", "count", "examples"}


def test_skip_invalid_with_a_mapping_file_imports_the_rest_and_exits_1(
    capsys,
    sqlite_db: Database,
    admin: str,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    rejected_csv = tmp_path / "rejected.csv"
    code, payload = run_cli(
        capsys,
        sqlite_db,
        "import",
        "customers",
        str(SAMPLES / "customers_dirty_gbk.csv"),
        "--mapping",
        str(SAMPLES / "customers_mapping.json"),
        "--policy",
        "skip-invalid",
        "--as",
        admin,
        "--json",
        "--rejected-csv",
        str(rejected_csv),
    )
    assert code == 1
    assert (payload["status"], payload["created"], payload["skipped"], payload["rejected"]) == ("partial", 5, 1, 4)
    assert customers(sqlite_db) == 5
    lines = rejected_csv.read_text(encoding="utf-8-sig").splitlines()
    assert len(lines) == 1 + 4 and lines[0].endswith(",Reason")


@pytest.mark.parametrize(
    "args",
    [
        ["import", "planets", "customers_clean.csv"],
        ["import", "customers", "no-such-file.csv"],
        ["import", "customers", "customers_clean.csv", "--mode", "replace"],
        ["import", "customers", "customers_clean.csv", "--policy", "sometimes"],
        ["import", "customers", "customers_clean.csv", "--mode", "update", "--mapping", "customers_mapping.json"],
    ],
)
def test_usage_errors_exit_2_and_write_nothing(capsys, sqlite_db: Database, admin: str, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    resolved = [
        str(SAMPLES / arg) if arg.endswith((".csv", ".json")) and arg != "no-such-file.csv" else arg for arg in args
    ]
    code, _ = run_cli(capsys, sqlite_db, *resolved, "--as", admin)
    assert code == 2
    assert customers(sqlite_db) == 0


def test_an_empty_file_exits_1_with_a_reason(capsys, sqlite_db: Database, admin: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"name,email\n")
    code, payload = run_cli(capsys, sqlite_db, "import", "customers", str(empty), "--as", admin, "--json")
    assert code == 1
    assert (payload["status"], payload["error"]) == ("rejected", "imports.error.no_rows")


def test_import_revert_undoes_a_run(capsys, sqlite_db: Database, admin: str) -> None:  # type: ignore[no-untyped-def]
    _, payload = run_cli(
        capsys, sqlite_db, "import", "customers", str(SAMPLES / "customers_clean.csv"), "--as", admin, "--json"
    )
    code, undone = run_cli(capsys, sqlite_db, "import-revert", str(payload["run_id"]), "--as", admin, "--json")
    assert code == 0 and undone["deleted"] == 4
    assert customers(sqlite_db) == 0
