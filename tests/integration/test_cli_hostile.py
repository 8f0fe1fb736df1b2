"""Issue 19: the hostile corpus (tests/hostile.py) as the CLI's arguments — ids, names, usernames, file paths
(traversal, NUL), dates — run in-process through ``crm_core.cli.main``.

Whatever the value, the command ends with an exit code and, when it refuses, one line on stderr in the
user's language: never a traceback, never the incident message of an unexpected error.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crm_core.cli import main
from crm_core.db import Database
from tests.factories import World, build_world
from tests.hostile import CORPUS, Hostile, sample

VALUES = sample(3) + [item for item in CORPUS if item.family == "path"]

COMMANDS: dict[str, list[str]] = {
    # {} is the hostile value
    "import-revert": ["import-revert", "{}"],
    "import file": ["import", "customers", "{}"],
    "import entity": ["import", "{}", "customers.csv"],
    "import --mapping": ["import", "customers", "customers.csv", "--mapping", "{}"],
    "jobs show": ["jobs", "show", "{}"],
    "jobs cancel": ["jobs", "cancel", "{}"],
    "user unlock": ["user", "unlock", "{}"],
    "report funnel --owner": ["report", "funnel", "--owner", "{}"],
    "report funnel --team": ["report", "funnel", "--team", "{}"],
    "report funnel --product": ["report", "funnel", "--product", "{}"],
    "report funnel --pipeline": ["report", "funnel", "--pipeline", "{}"],
    "report funnel --since": ["report", "funnel", "--since", "{}"],
    "report dashboard --as": ["report", "dashboard", "--as", "{}"],
    "lifecycle refresh --as-of": ["lifecycle", "refresh", "--as-of", "{}"],
    "lifecycle refresh --tenant": ["lifecycle", "refresh", "--tenant", "{}"],
    "score apply --as-of": ["score", "apply", "--as-of", "{}"],
    "check --tenant": ["check", "--suite", "{}"],
}


@pytest.fixture(scope="module")
def cli_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Database, World]]:
    from crm_core.db import make_engine
    from crm_core.schema import upgrade_to_head

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('cli-hostile') / 'crm.db'}")
    upgrade_to_head(engine)
    db = Database(engine)
    yield db, build_world(db)
    engine.dispose()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_hostile_arguments_end_in_an_exit_code_and_one_line_never_a_traceback(
    cli_world: tuple[Database, World], command: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    db, _world = cli_world
    monkeypatch.setenv("CRM_LANG", "en")
    monkeypatch.setenv("CRM_LOG_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # a relative path argument names nothing of the repository
    started = time.monotonic()
    failures = []
    runs = 0
    for item in VALUES:
        argv = ["--database-url", str(db.engine.url), *[item.value if part == "{}" else part
                                                         for part in COMMANDS[command]]]
        runs += 1
        failures += check_run(argv, item, capsys)
    print(f"\n{command}: {runs} CLI runs in {time.monotonic() - started:.1f}s")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:60])


def check_run(argv: list[str], item: Hostile, capsys: pytest.CaptureFixture[str]) -> list[str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse: a usage line and the error line, exit 2
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException as error:  # noqa: BLE001 - what the corpus looks for
        return [f"{item!r}: raised {type(error).__name__}: {str(error)[:200]}"]
    out, err = capsys.readouterr()
    failures = []
    if "Traceback" in err or "Traceback" in out:
        failures.append(f"{item!r}: traceback on the terminal: {err[-300:]!r}")
    if "Something went wrong" in err:
        failures.append(f"{item!r}: an unexpected error (incident): {err.strip()[:200]!r}")
    if code not in (0, 1, 2):
        failures.append(f"{item!r}: exit code {code!r}")
    if code == 1 and len(err.strip().splitlines()) != 1:
        failures.append(f"{item!r}: {len(err.strip().splitlines())} lines on stderr: {err.strip()[:300]!r}")
    return failures


def test_a_file_name_too_long_for_the_file_system_is_refused_in_one_line(
    cli_world: tuple[Database, World], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    db, _world = cli_world
    monkeypatch.setenv("CRM_LANG", "en")
    monkeypatch.setenv("CRM_LOG_DIR", str(tmp_path))
    item = Hostile("long", "long-001", "a" * 256)
    assert check_run(["--database-url", str(db.engine.url), "import", "customers", item.value], item, capsys) == []
