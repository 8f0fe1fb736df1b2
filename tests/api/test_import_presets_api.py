"""/api/v1/imports with a mapping preset (issue 18): an unknown preset is 422 before anything is queued; a known one
(or ``detect``) maps another CRM's export in the job, whose dry run forecasts what the import would write."""

from __future__ import annotations

from pathlib import Path

import pytest
from huey import Huey
from sqlalchemy import func, select

from crm_core.models.jobs import Job
from tests.api.conftest import Api
from tests.api.test_imports_api import finish, queue, submit  # noqa: F401  - queue: the fixture
from tests.factories import World

HUBSPOT_COMPANIES = Path(__file__).resolve().parents[2] / "data" / "samples" / "move_in" / "hubspot_companies.csv"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_preset_maps_the_export_and_an_unknown_one_is_refused(api: Api, world: World, queue: Huey) -> None:  # noqa: F811
    body = HUBSPOT_COMPANIES.read_bytes()
    with api.db.system_session("test: jobs") as session:
        jobs_before = session.scalar(select(func.count()).select_from(Job))
    refused = submit(api, world.admin, body, preset="pipedrive", dry_run=True)
    assert (refused.status_code, refused.json()["code"]) == (422, "imports.error.unknown_preset")
    assert "hubspot" in refused.json()["detail"]
    with api.db.system_session("test: jobs") as session:
        assert session.scalar(select(func.count()).select_from(Job)) == jobs_before  # nothing queued
    for preset in ("hubspot", "detect"):
        job = submit(api, world.admin, body, preset=preset, dry_run=True).json()
        result = finish(api, queue, world.admin, job["id"])["result"]
        assert (result["status"], result["rejected"], result["would_create"], result["would_skip"]) == (
            "valid", 0, 3, 0), preset
