"""No traceback ever reaches the terminal: the CLI names a database that is not initialised or does not
answer, and files anything unexpected under an incident reference, with the trace in a log file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crm_core import reports_cli
from crm_core.cli import main
from crm_core.db import Database


def test_a_database_without_the_schema_is_named_with_the_command_that_fixes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_LANG", "en")
    assert main(["--database-url", f"sqlite:///{tmp_path / 'empty.db'}", "report", "dashboard"]) == 1
    err = capsys.readouterr().err
    assert "run `python -m crm_core init` first" in err and "Traceback" not in err


def test_an_unreachable_database_is_said_in_chinese_without_its_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_LANG", "zh-CN")
    url = "postgresql+psycopg://kestrel:s3cret-pw@127.0.0.1:1/nowhere"
    assert main(["--database-url", url, "report", "dashboard"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("数据库无响应") and "s3cret-pw" not in err and "Traceback" not in err


def test_an_unexpected_error_is_logged_under_a_reference_and_the_terminal_gets_a_message(
    sqlite_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: Any) -> int:
        raise RuntimeError("a bug in a command")

    monkeypatch.setattr(reports_cli, "cmd_report_dashboard", broken)
    monkeypatch.setenv("CRM_LOG_DIR", str(tmp_path / "logs"))
    monkeypatch.setenv("CRM_LANG", "en")
    assert main(["--database-url", str(sqlite_db.engine.url), "report", "dashboard"]) == 1
    err = capsys.readouterr().err
    assert "Something went wrong" in err and "Traceback" not in err and "a bug in a command" not in err
    logged = (tmp_path / "logs" / "cli-incidents.log").read_text(encoding="utf-8")
    reference = err.split("reference ")[1].split()[0]
    assert f"incident {reference}" in logged and "RuntimeError: a bug in a command" in logged
