"""The notifications and access-request endpoints: my bell only, and a request that reveals nothing."""

from __future__ import annotations

from crm_core.services.tasks import TaskInput, create_task
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def test_my_notifications_are_listed_in_my_language_and_marked_read(api: Api, world: World) -> None:
    create_task(api.db, world.manager, TaskInput(title="Call back *now*", assignee_id=world.rep.user_id))
    headers = api.headers(world.rep, **{"Accept-Language": "zh-CN"})
    answer = api.client.get("/api/v1/notifications", headers=headers)
    assert answer.status_code == 200
    [item] = answer.json()["data"]
    assert item["kind"] == "task_assigned" and item["message"].startswith("Mia Manager 给你分配了任务：Call back *now*")
    assert item["read_at"] is None
    other = api.client.post(f"/api/v1/notifications/{item['id']}/read", headers=api.headers(world.rep_same_team))
    assert other.status_code == 404
    assert api.client.post(f"/api/v1/notifications/{item['id']}/read", headers=headers).status_code == 204
    unread = api.client.get("/api/v1/notifications?unread=true", headers=headers).json()
    assert unread["data"] == [] and unread["has_more"] is False


def test_an_access_request_by_api_reveals_nothing_and_the_owner_decides(api: Api, world: World) -> None:
    name = unique("Pier Traders ")
    create_random_customer(api.db, world.rep, name=name, email="desk@pier.example")
    asker = api.headers(world.rep_other_team)
    refused = api.client.post("/api/v1/customers", headers=asker, json={"name": name})
    assert refused.status_code == 409 and "existing_id" not in refused.json()
    created = api.client.post("/api/v1/access-requests", headers=asker, json={"name": name, "reason": "Old contact"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["customer_name"] is None and body["status"] == "pending" and "customer_id" not in body
    assert api.client.post("/api/v1/access-requests", headers=asker,
                           json={"name": unique("Nobody ")}).status_code == 404
    mate = api.client.post(f"/api/v1/access-requests/{body['id']}/decision", headers=api.headers(world.rep_same_team),
                           json={"decision": "approve"})
    assert mate.status_code == 404
    decided = api.client.post(f"/api/v1/access-requests/{body['id']}/decision", headers=api.headers(world.rep),
                              json={"decision": "approve"})
    assert decided.status_code == 200 and decided.json()["status"] == "approved"
    mine = api.client.get("/api/v1/customers", headers=asker).json()["data"]
    assert [row["name"] for row in mine] == [name]  # the requester owned none before
