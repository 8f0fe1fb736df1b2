"""``automation run`` and ``pool return``: a job per tenant, one line each, totals summed (--json)."""

from __future__ import annotations

import json

import pytest

from crm_core.cli import main
from crm_core.db import Database
from tests.factories import build_world, create_random_customer


@pytest.mark.parametrize(("command", "totals"), [(["automation", "run"], {"fired"}),
                                                 (["pool", "return"], {"returned", "reminded"})])
def test_each_tenant_gets_a_job_and_the_totals_add_up(sqlite_db: Database, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, command: list[str],
                                                     totals: set[str]) -> None:
    monkeypatch.setenv("CRM_JOBS_INLINE", "1")
    world = build_world(sqlite_db)
    create_random_customer(sqlite_db, world.rep)
    code = main(["--database-url", str(sqlite_db.engine.url), *command, "--inline", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0 and printed["status"] == "ok"
    assert len(printed["tenants"]) == 2  # build_world makes two tenants
    assert all(tenant["job_id"] for tenant in printed["tenants"])
    for total in totals:
        assert printed[total] == sum(tenant[total] for tenant in printed["tenants"])
    code = main(["--database-url", str(sqlite_db.engine.url), *command, "--inline"])
    lines = capsys.readouterr().out
    assert code == 0 and "tenant 1" in lines.lower() and "Traceback" not in lines
