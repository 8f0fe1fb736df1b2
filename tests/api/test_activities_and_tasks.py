"""/api/v1/activities and /api/v1/tasks: the follow-up use cases over HTTP, under the same rules."""

from __future__ import annotations

import datetime as dt

from crm_core.models import utcnow
from crm_core.services.activities import ActivityInput, log_activity
from crm_core.services.tasks import TaskInput, create_task, reschedule_task
from tests.api.conftest import Api
from tests.factories import World, create_random_customer


def test_logging_an_activity_moves_the_last_contact_and_opens_the_follow_up(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    logged = api.client.post("/api/v1/activities", headers=headers, json={
        "customer_id": customer_id, "type": "call", "summary": "Asked for a quote",
        "occurred_at": "2026-01-05T15:30:00+08:00", "next_follow_up_at": (utcnow().date() + dt.timedelta(days=3)
                                                                          ).isoformat()})
    assert logged.status_code == 201, logged.text
    assert logged.json()["occurred_at"] == "2026-01-05T07:30:00Z"  # converted to UTC
    assert logged.json()["author_id"] == world.rep.user_id
    customer = api.client.get(f"/api/v1/customers/{customer_id}", headers=headers).json()
    assert customer["last_contacted_at"] == "2026-01-05T07:30:00Z"
    tasks = api.client.get(f"/api/v1/tasks?customer_id={customer_id}", headers=headers).json()["data"]
    [follow_up] = [task for task in tasks if task["title"].startswith("Next follow-up")]
    assert (follow_up["status"], follow_up["assignee_id"]) == ("open", world.rep.user_id)
    assert api.client.get(logged.headers["location"].split("testserver")[1], headers=headers).json() == logged.json()


def test_activities_are_visible_with_their_customer_and_refused_in_the_callers_language(
        api: Api, world: World) -> None:
    far = create_random_customer(api.db, world.rep_other_team)
    activity_id = log_activity(api.db, world.rep_other_team, ActivityInput(customer_id=far, type="note", summary="x"))
    rep = api.headers(world.rep, **{"Accept-Language": "zh-CN"})
    assert api.client.get(f"/api/v1/activities/{activity_id}", headers=rep).status_code == 404
    assert activity_id not in [a["id"] for a in api.client.get("/api/v1/activities", headers=rep).json()["data"]]
    assert api.client.post("/api/v1/activities", json={"customer_id": far, "type": "call", "summary": "x"},
                           headers=rep).status_code == 404
    mine = create_random_customer(api.db, world.rep)
    future = (utcnow() + dt.timedelta(days=2)).isoformat() + "Z"
    refused = api.client.post("/api/v1/activities", headers=rep, json={
        "customer_id": mine, "type": "call", "summary": " ", "occurred_at": future})
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"summary", "occurred_at"}
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in e["message"]) for e in refused.json()["errors"])
    analyst = api.client.post("/api/v1/activities", json={"customer_id": mine, "type": "call", "summary": "x"},
                              headers=api.headers(world.analyst))
    assert analyst.status_code == 403
    assert activity_id not in [a["id"] for a in api.client.get(
        "/api/v1/activities", headers=api.headers(world.other_admin)).json()["data"]]


def test_activities_page_by_cursor(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    made = [log_activity(api.db, world.rep, ActivityInput(customer_id=customer_id, type="note", summary=str(n),
                                                          occurred_at=utcnow() - dt.timedelta(hours=n)))
            for n in range(5)]
    headers = api.headers(world.rep)
    for order in ("desc", "asc"):
        seen: list[int] = []
        cursor = None
        while True:
            page = api.client.get(f"/api/v1/activities?customer_id={customer_id}&limit=2&order={order}"
                                  + (f"&after={cursor}" if cursor else ""), headers=headers).json()
            seen += [row["id"] for row in page["data"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen == (made if order == "desc" else made[::-1])


def test_a_task_is_created_rescheduled_reassigned_completed_with_its_activity_and_reopened(
        api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    manager = api.headers(world.manager)
    due = (utcnow() + dt.timedelta(days=2)).replace(microsecond=0)
    created = api.client.post("/api/v1/tasks", headers=manager, json={
        "title": "Send the quote", "due_at": due.isoformat() + "Z", "customer_id": customer_id,
        "assignee_id": world.rep.user_id, "priority": "high"})
    assert created.status_code == 201, created.text
    task = created.json()
    path = f"/api/v1/tasks/{task['id']}"
    assert (task["assignee_id"], task["due_at"], task["version"]) == (world.rep.user_id, due.isoformat() + "Z", 1)
    later = (due + dt.timedelta(days=1)).isoformat()
    moved = api.client.post(f"{path}/reschedule", json={"due_at": later}, headers={**manager, "If-Match": '"1"'})
    assert moved.status_code == 200 and moved.json()["due_at"] == later + "Z"
    given = api.client.post(f"{path}/reassign", json={"assignee_id": world.rep_same_team.user_id},
                            headers={**manager, "If-Match": '"2"'})
    assert given.status_code == 200 and given.json()["assignee_id"] == world.rep_same_team.user_id
    stale = api.client.post(f"{path}/complete", headers={**manager, "If-Match": '"2"'})
    assert stale.status_code == 412 and stale.json()["changed_by"] == world.manager.full_name
    assert api.client.post(f"{path}/complete", headers=manager).status_code == 428
    done = api.client.post(f"{path}/complete", headers={**manager, "If-Match": '"3"'},
                           json={"activity": {"type": "call", "summary": "Quote sent"}})
    assert done.status_code == 200 and done.json()["status"] == "done"
    logged = api.client.get(f"/api/v1/activities?customer_id={customer_id}", headers=manager).json()["data"]
    assert [a["summary"] for a in logged] == ["Quote sent"]
    reopened = api.client.post(f"{path}/reopen", headers={**manager, "If-Match": done.headers["etag"]})
    assert reopened.status_code == 200 and reopened.json()["status"] == "open"


def test_task_rules_hold_over_the_api(api: Api, world: World) -> None:
    rep = api.headers(world.rep)
    # a rep assigns only to themselves
    refused = api.client.post("/api/v1/tasks", json={"title": "For a colleague",
                                                     "assignee_id": world.rep_same_team.user_id}, headers=rep)
    assert refused.status_code == 403
    own = create_task(api.db, world.rep, TaskInput(title="Mine"))
    other = create_task(api.db, world.rep_other_team, TaskInput(title="Theirs"))
    seen = [task["id"] for task in api.client.get("/api/v1/tasks?limit=100", headers=rep).json()["data"]]
    assert own in seen and other not in seen
    assert api.client.get(f"/api/v1/tasks/{other}", headers=rep).status_code == 404
    past = api.client.post(f"/api/v1/tasks/{own}/reschedule", json={"due_at": "2020-01-01T00:00:00Z"},
                           headers={**rep, "If-Match": '"1"'})
    assert past.status_code == 422 and past.json()["errors"][0]["field"] == "due_at"
    reschedule_task(api.db, world.rep, own, due_at=utcnow() + dt.timedelta(days=1))
    assert api.client.post(f"/api/v1/tasks/{own}/complete", headers={**api.headers(world.analyst),
                                                                      "If-Match": '"2"'}).status_code == 403
    assert api.client.post(f"/api/v1/tasks/{own}/complete", headers={**api.headers(world.rep, "read"),
                                                                      "If-Match": '"2"'}).status_code == 403
    assert api.client.get(f"/api/v1/tasks/{own}", headers=api.headers(world.other_admin)).status_code == 404
