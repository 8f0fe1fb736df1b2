"""/api/v1/segments: saved segments, their members and the CSV export, on every database."""

from __future__ import annotations

import csv
import io

import pytest

from crm_core.services.segments import SegmentInput, save_segment
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, customer_named_by_sql, unique


def tagged(tag: str) -> dict[str, object]:
    """Conditions: customers tagged ``tag``."""
    return {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": tag}]}


def member_ids(api: Api, headers: dict[str, str], segment_id: int, limit: int = 100) -> list[int]:
    """Every member id, following the cursors."""
    found: list[int] = []
    cursor = None
    while True:
        suffix = f"&after={cursor}" if cursor else ""
        answer = api.client.get(f"/api/v1/segments/{segment_id}/members?limit={limit}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        found += [row["id"] for row in answer.json()["data"]]
        cursor = answer.json()["next_cursor"]
        if cursor is None:
            return found


def test_segments_and_members_follow_sharing_and_the_callers_scope(api: Api, world: World) -> None:
    tag = unique("vip")
    own = create_random_customer(api.db, world.rep, tags=tag)
    mate = create_random_customer(api.db, world.rep_same_team, tags=tag)
    far = create_random_customer(api.db, world.rep_other_team, tags=tag)
    private = save_segment(api.db, world.manager, SegmentInput(name=unique("Private "), conditions=tagged(tag)))
    shared = save_segment(api.db, world.manager, SegmentInput(name=unique("Team "), conditions=tagged(tag),
                                                              sharing="team", team_id=world.east_team_id))
    rep = api.headers(world.rep)
    listed = [row["id"] for row in api.client.get("/api/v1/segments", headers=rep).json()["data"]]
    assert shared in listed and private not in listed
    assert api.client.get(f"/api/v1/segments/{private}", headers=rep).status_code == 404
    assert api.client.get(f"/api/v1/segments/{private}/members", headers=rep).status_code == 404
    assert member_ids(api, rep, shared) == [own]  # a rep sees their own customers of the team's segment
    assert member_ids(api, api.headers(world.manager), shared) == [own, mate]
    assert member_ids(api, api.headers(world.admin), shared) == [own, mate, far]
    other = api.headers(world.other_admin)
    assert api.client.get("/api/v1/segments", headers=other).json()["data"] == []
    assert api.client.get(f"/api/v1/segments/{shared}/export", headers=other).status_code == 404
    assert far not in member_ids(api, api.headers(world.manager), shared)


def test_members_page_by_cursor_stable_under_inserts(api: Api, world: World) -> None:
    tag = unique("paged")
    made = [create_random_customer(api.db, world.rep, tags=tag) for _ in range(5)]
    segment = save_segment(api.db, world.rep, SegmentInput(name=unique("Paged "), conditions=tagged(tag)))
    headers = api.headers(world.rep, scope="read")
    first = api.client.get(f"/api/v1/segments/{segment}/members?limit=2&include_total=true", headers=headers).json()
    assert first["total"] == 5 and first["has_more"] and [row["id"] for row in first["data"]] == made[:2]
    assert first["data"][0]["tags"] == [tag]
    late = create_random_customer(api.db, world.rep, tags=tag)
    rest: list[int] = []
    cursor = first["next_cursor"]
    while cursor:
        body = api.client.get(f"/api/v1/segments/{segment}/members?limit=2&after={cursor}", headers=headers).json()
        rest += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
    assert rest == [*made[2:], late]
    other = save_segment(api.db, world.rep, SegmentInput(name=unique("Other "), conditions=tagged(tag)))
    wrong = api.client.get(f"/api/v1/segments/{other}/members?after={first['next_cursor']}", headers=headers)
    assert (wrong.status_code, wrong.json()["code"]) == (400, "invalid_cursor")


def test_the_export_is_a_csv_file_with_formulas_neutralised_in_the_callers_language(api: Api, world: World) -> None:
    tag = unique("export")
    plain_id = create_random_customer(api.db, world.rep, tags=tag, lifecycle_stage="intent")
    formula_id = customer_named_by_sql(api.db, world.rep, "=HYPERLINK(\"http://evil\")", tags=tag)
    segment = save_segment(api.db, world.rep, SegmentInput(name="大客户", conditions=tagged(tag)))
    answer = api.client.get(f"/api/v1/segments/{segment}/export",
                            headers=api.headers(world.analyst, **{"Accept-Language": "zh-CN"}))
    assert answer.status_code == 404  # a private segment of the rep
    answer = api.client.get(f"/api/v1/segments/{segment}/export",
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''segment-%E5%A4%A7%E5%AE%A2%E6%88%B7-" in answer.headers["content-disposition"]
    assert answer.content.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][-1] == "id" and any("\u4e00" <= ch <= "\u9fff" for ch in rows[0][0])
    by_id = {int(row[-1]): row for row in rows[1:]}
    assert set(by_id) == {plain_id, formula_id}
    assert by_id[formula_id][0].startswith("'=")
    assert by_id[plain_id][1] == "意向客户"


def test_bad_parameters_are_422_in_the_callers_language(api: Api, world: World) -> None:
    segment = save_segment(api.db, world.rep, SegmentInput(name=unique("Any "), conditions=tagged("x")))
    headers = api.headers(world.rep, **{"Accept-Language": "zh-CN"})
    too_many = api.client.get(f"/api/v1/segments/{segment}/members?limit=1000", headers=headers)
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["field"] == "limit"
    assert any("\u4e00" <= ch <= "\u9fff" for ch in too_many.json()["errors"][0]["message"])
    xlsx = api.client.get(f"/api/v1/segments/{segment}/export?format=xlsx", headers=headers)
    assert xlsx.status_code == 422 and xlsx.json()["errors"][0]["message"] == "请从给定选项中选择。"


def test_an_export_over_the_cap_is_refused_before_a_byte_is_written(api: Api, world: World,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_api import segments as segments_api

    tag = unique("big")
    for _ in range(3):
        create_random_customer(api.db, world.rep, tags=tag)
    segment = save_segment(api.db, world.rep, SegmentInput(name=unique("Big "), conditions=tagged(tag)))
    monkeypatch.setattr(segments_api, "EXPORT_ROW_CAP", 2)
    english = api.client.get(f"/api/v1/segments/{segment}/export", headers=api.headers(world.rep))
    chinese = api.client.get(f"/api/v1/segments/{segment}/export",
                             headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert (english.status_code, english.json()["code"]) == (422, "export_too_large")
    assert "3 customers" in english.json()["detail"] and "at most 2" in english.json()["detail"]
    assert chinese.json()["detail"].startswith("该分群包含 3 位客户")
