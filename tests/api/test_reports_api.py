"""/api/v1/reports: the funnel and the dashboard are the CLI's figures for the same user, on every database."""

from __future__ import annotations

import datetime as dt
import json

from crm_core.access import Actor
from crm_core.queries.reports import ReportFilters, dashboard, funnel
from tests.api.conftest import Api
from tests.api.test_deals import new_deal
from tests.factories import World


def cli_funnel(api: Api, actor: Actor, filters: ReportFilters | None = None) -> object:
    """What `report funnel --json --as <actor>` prints, as parsed JSON."""
    with api.db.session(actor) as session:
        result = funnel(session, filters=filters)
        assert result is not None
        return json.loads(json.dumps(result.as_dict()))


def test_the_funnel_is_the_clis_for_the_same_user_and_scoped_like_the_pages(api: Api, world: World) -> None:
    for actor in (world.rep, world.rep, world.rep_other_team):
        new_deal(api, actor, amount="1000")
    rep = api.client.get("/api/v1/reports/funnel", headers=api.headers(world.rep))
    assert rep.status_code == 200, rep.text
    assert rep.json() == cli_funnel(api, world.rep)
    assert (rep.json()["total_count"], rep.json()["total_amount"]) == (2, "2000.00")
    admin = api.client.get("/api/v1/reports/funnel", headers=api.headers(world.admin, scope="read")).json()
    assert admin["total_count"] == 3
    analyst = api.client.get("/api/v1/reports/funnel", headers=api.headers(world.analyst)).json()
    assert analyst["total_count"] == 3
    other = api.client.get("/api/v1/reports/funnel", headers=api.headers(world.other_admin)).json()
    assert other["total_count"] == 0
    narrowed = api.client.get(f"/api/v1/reports/funnel?owner_id={world.rep_other_team.user_id}&since=2000-01-01",
                              headers=api.headers(world.admin)).json()
    assert narrowed == cli_funnel(api, world.admin, ReportFilters(since=dt.date(2000, 1, 1),
                                                                  owner_id=world.rep_other_team.user_id))
    assert narrowed["total_count"] == 1


def test_the_dashboard_is_the_clis_for_the_same_user(api: Api, world: World) -> None:
    new_deal(api, world.rep, amount="1000")
    today = dt.date(2026, 12, 5)
    answer = api.client.get("/api/v1/reports/dashboard?period=quarter&today=2026-12-05",
                            headers=api.headers(world.rep))
    assert answer.status_code == 200, answer.text
    with api.db.session(world.rep) as session:
        expected = json.loads(json.dumps(dashboard(session, today=today, period="quarter").as_dict()))
    body = answer.json()
    # the comparison window ends at "now" (to the second), which moved between the two calls
    assert {k: v for k, v in body.items() if k != "compared"} == {k: v for k, v in expected.items() if k != "compared"}
    assert body["open_pipeline"] == {"count": 1, "amount": "1000.00"} and body["period_start"] == "2026-10-01"
    other = api.client.get("/api/v1/reports/dashboard", headers=api.headers(world.other_admin)).json()
    assert other["open_pipeline"]["count"] == 0


def test_bad_parameters_are_422_in_the_callers_language(api: Api, world: World) -> None:
    answer = api.client.get("/api/v1/reports/dashboard?period=decade",
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"] == "period"
    assert answer.json()["errors"][0]["message"] == "请从给定选项中选择。"
    far = api.client.get("/api/v1/reports/dashboard?today=9999-12-31",
                         headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert far.status_code == 422 and far.json()["errors"][0]["code"] == "validation.date"
    bad_day = api.client.get("/api/v1/reports/funnel?since=2026-13-01", headers=api.headers(world.rep))
    assert bad_day.status_code == 422 and bad_day.json()["errors"][0]["field"] == "since"
    unknown = api.client.get("/api/v1/reports/funnel?pipeline_id=2000000000", headers=api.headers(world.rep))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "not_found")
