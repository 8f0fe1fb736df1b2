"""/api/v1/imports: an upload becomes the import job the wizard starts; status and rejected rows, every database.

Jobs are queued on an in-memory Huey and run here with :func:`execute_job` (what a worker runs).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huey import Huey, MemoryHuey
from sqlalchemy import func, select

from crm_core.access import Actor
from crm_core.jobs import queue as job_queue
from crm_core.jobs.runner import execute_job
from crm_core.models import Customer
from tests.api.conftest import Api
from tests.factories import World, unique

CLEAN = "Company Name,Email,Lifecycle Stage\nAlpha Ltd,{a}@example.com,Prospect\nBeta Ltd,{b}@example.com,Intent\n"
DIRTY = CLEAN + "Gamma Ltd,not-an-email,Prospect\n,delta@example.com,Prospect\n"


@pytest.fixture(autouse=True)
def queue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Huey]:
    """Uploads under a temporary folder; jobs on an in-memory queue made the process's for the test."""
    monkeypatch.setenv("CRM_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setattr(job_queue, "_queue", None)
    yield job_queue.use_queue(MemoryHuey(unique("kestrel-api-imports-")))


def dirty_file() -> bytes:
    return DIRTY.format(a=unique("alpha"), b=unique("beta")).encode()


def submit(api: Api, actor: Actor, body: bytes, scope: str = "read_write", **fields: Any) -> Any:
    """POST the file as ``actor``'s token."""
    form = {"entity": "customers", **{name: str(value).lower() if isinstance(value, bool) else value
                                      for name, value in fields.items()}}
    return api.client.post("/api/v1/imports", files={"file": ("people.csv", body, "text/csv")}, data=form,
                           headers=api.headers(actor, scope))


def finish(api: Api, queue: Huey, actor: Actor, job_id: int) -> dict[str, Any]:
    """Run the queued job as a worker would, and read it back through the API."""
    execute_job(api.db, job_id, queue=queue)
    answer = api.client.get(f"/api/v1/imports/{job_id}", headers=api.headers(actor))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def customers(api: Api, tenant_id: int) -> int:
    with api.db.system_session("test: customers") as session:
        return int(session.scalar(select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id))
                   or 0)


def test_an_import_runs_as_a_job_and_its_rejected_rows_come_back_as_csv(api: Api, world: World, queue: Huey) -> None:
    before = customers(api, world.manager.tenant_id)
    answer = submit(api, world.manager, dirty_file(), policy="skip-invalid")
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert (job["status"], job["entity"], job["dry_run"], job["file_name"]) == ("queued", "customers", False,
                                                                              "people.csv")
    assert answer.headers["location"].endswith(f"/api/v1/imports/{job['id']}")
    waiting = api.client.get(f"/api/v1/imports/{job['id']}/rejected-rows", headers=api.headers(world.manager))
    assert waiting.status_code == 404
    done = finish(api, queue, world.manager, job["id"])
    assert (done["status"], done["result"]["status"], done["result"]["created"], done["result"]["rejected"]) == (
        "succeeded", "partial", 2, 2)
    assert customers(api, world.manager.tenant_id) == before + 2
    rows = api.client.get(f"/api/v1/imports/{job['id']}/rejected-rows",
                          headers=api.headers(world.manager, **{"Accept-Language": "zh-CN"}))
    assert rows.status_code == 200 and rows.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(rows.content.decode("utf-8-sig"))))
    assert len(table) == 3 and any("\u4e00" <= ch <= "\u9fff" for ch in "".join(table[1]))


def test_a_dry_run_writes_nothing_and_gives_its_rejected_rows(api: Api, world: World, queue: Huey) -> None:
    before = customers(api, world.admin.tenant_id)
    job = submit(api, world.admin, dirty_file(), dry_run=True).json()
    done = finish(api, queue, world.admin, job["id"])
    assert (done["dry_run"], done["result"]["status"], done["result"]["rejected"]) == (True, "invalid", 2)
    assert "rejected_csv_path" not in done["result"]  # a server path stays on the server
    assert customers(api, world.admin.tenant_id) == before
    rows = api.client.get(f"/api/v1/imports/{job['id']}/rejected-rows", headers=api.headers(world.admin))
    table = list(csv.reader(io.StringIO(rows.content.decode("utf-8-sig"))))
    assert rows.status_code == 200 and [row[0] for row in table[1:]] == ["4", "5"]


def test_who_may_import_and_who_sees_the_job(api: Api, world: World, queue: Huey) -> None:
    for actor, scope in ((world.rep, "read_write"), (world.analyst, "read_write"), (world.manager, "read")):
        assert submit(api, actor, dirty_file(), scope=scope).status_code == 403
    job = submit(api, world.manager, dirty_file(), dry_run=True).json()
    finish(api, queue, world.manager, job["id"])
    for actor in (world.other_admin, world.rep):
        assert api.client.get(f"/api/v1/imports/{job['id']}", headers=api.headers(actor)).status_code == 404
        rows = api.client.get(f"/api/v1/imports/{job['id']}/rejected-rows", headers=api.headers(actor))
        assert rows.status_code == 404
    assert api.client.get(f"/api/v1/imports/{job['id']}", headers=api.headers(world.admin)).status_code == 200


def test_bad_input_is_a_4xx_in_the_callers_language(api: Api, world: World) -> None:
    chinese = api.headers(world.manager, **{"Accept-Language": "zh-CN"})
    unknown = api.client.post("/api/v1/imports", files={"file": ("x.csv", b"a\n1\n", "text/csv")},
                              data={"entity": "planets"}, headers=chinese)
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "entity"
    assert unknown.json()["errors"][0]["message"] == "请从给定选项中选择。"
    no_file = api.client.post("/api/v1/imports", data={"entity": "customers"}, headers=chinese)
    assert (no_file.status_code, no_file.json()["code"]) == (415, "unsupported_media_type")  # a form, no file
    json_body = api.client.post("/api/v1/imports", json={"entity": "customers"}, headers=chinese)
    assert (json_body.status_code, json_body.json()["code"]) == (415, "unsupported_media_type")
    bad_mapping = api.client.post("/api/v1/imports", files={"file": ("x.csv", b"a\n1\n", "text/csv")},
                                  data={"entity": "customers", "mapping": "[1, 2"}, headers=chinese)
    assert bad_mapping.status_code == 422 and bad_mapping.json()["errors"][0]["field"] == "mapping"


def test_a_retried_upload_with_the_same_key_and_bytes_queues_one_job(api: Api, world: World) -> None:
    csv_bytes = dirty_file()
    body = (b'--kestrelB\r\nContent-Disposition: form-data; name="entity"\r\n\r\ncustomers\r\n'
            b'--kestrelB\r\nContent-Disposition: form-data; name="dry_run"\r\n\r\ntrue\r\n'
            b'--kestrelB\r\nContent-Disposition: form-data; name="file"; filename="people.csv"\r\n'
            b"Content-Type: text/csv\r\n\r\n" + csv_bytes + b"\r\n--kestrelB--\r\n")
    headers = api.headers(world.admin, **{"Idempotency-Key": unique("upload-"),
                                          "Content-Type": "multipart/form-data; boundary=kestrelB"})
    first = api.client.post("/api/v1/imports", content=body, headers=headers)
    again = api.client.post("/api/v1/imports", content=body, headers=headers)
    assert first.status_code == again.status_code == 202, first.text
    assert again.json()["id"] == first.json()["id"] and again.headers["idempotent-replayed"] == "true"
    assert first.json()["dry_run"] is True


def test_tasks_name_their_customers_by_external_id_and_unknown_assignees_go_to_the_fallback_owner(
    api: Api, world: World, queue: Huey
) -> None:
    manager, external_id = world.manager, unique("ACC-")
    accounts = submit(api, manager, f"External ID,Customer name,Owner\n{external_id},Acme Co,{manager.username}\n"
                      .encode())
    assert finish(api, queue, manager, accounts.json()["id"])["result"]["created"] == 1
    tasks = f"Title,Customer,Assignee\nCall Acme,{external_id},Nobody Here\n".encode()
    # the same refusal as the wizard's and the CLI's, before anything is queued: a rep of another team
    refused = submit(api, manager, tasks, entity="tasks", fallback_owner=world.rep_other_team.username,
                     customer_match="external_id")
    assert (refused.status_code, refused.json()["code"]) == (422, "imports.error.fallback_owner")
    assert world.rep_other_team.username in refused.json()["detail"]
    bad_key = submit(api, manager, tasks, entity="tasks", customer_match="id")
    assert bad_key.status_code == 422 and bad_key.json()["errors"][0]["field"] == "customer_match"
    job = submit(api, manager, tasks, entity="tasks", fallback_owner=manager.username, customer_match="external_id")
    assert job.status_code == 202, job.text
    result = finish(api, queue, manager, job.json()["id"])["result"]
    assert (result["status"], result["created"], result["owners_fallback"]) == ("imported", 1, 1), result


def test_deals_without_an_account_get_a_placeholder_and_unknown_owners_an_inactive_user_for_an_admin_only(
    api: Api, world: World, queue: Huey
) -> None:
    admin, manager, name = world.admin, world.manager, unique("Lonely deal ")
    deals = f"Deal name,Customer,Owner\n{name},,Gone Rep\n".encode()
    refused = submit(api, manager, deals, entity="opportunities", create_owners=True)
    assert (refused.status_code, refused.json()["code"]) == (422, "imports.error.create_owners_admin")
    bad = submit(api, admin, deals, entity="opportunities", orphans="adopt")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "orphans"
    job = submit(api, admin, deals, entity="opportunities", orphans="placeholder", create_owners=True)
    assert job.status_code == 202, job.text
    result = finish(api, queue, admin, job.json()["id"])["result"]
    assert (result["created"], result["orphans_placeholder"], result["owners_created"], result["owners_inactive"]) == (
        1, 1, 1, 1), result
    with api.db.session(admin) as session:
        placeholder = session.scalars(select(Customer).where(Customer.name.startswith(name))).one()
        assert (placeholder.tags, placeholder.name) == ("no-account", f"{name} (no account)")
