"""A case's merge and files over the API, on every database: POST /v1/cases/{id}/merge under If-Match with
problem+json refusals, and /v1/cases/{id}/attachments (multipart upload, list, download as an attachment)."""

from __future__ import annotations

from urllib.parse import quote

from sqlalchemy import select

from crm_core.models import AuditEvent, Case
from crm_core.services.cases import CaseInput, add_case_reply, create_case
from tests.api.conftest import Api
from tests.factories import World, create_random_customer

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def version(api: Api, case_id: int) -> int:
    with api.db.system_session("test") as session:
        return int(session.execute(select(Case.version).where(Case.id == case_id)).scalar_one())


def two_cases(api: Api, world: World) -> tuple[int, int]:
    customer_id = create_random_customer(api.db, world.rep)
    return tuple(create_case(api.db, world.rep, CaseInput(customer_id=customer_id, subject=subject,  # type: ignore[return-value]
                                                          assignee_id=world.rep.user_id)) for subject in ("A", "B"))


def merge(api: Api, actor: object, survivor: int, merged: int, *, if_match: str | None = None,
          language: str = "en"):  # type: ignore[no-untyped-def]
    headers = api.headers(actor, **{"If-Match": if_match or f'"{version(api, survivor)}"',  # type: ignore[arg-type]
                                    "Accept-Language": language})
    return api.client.post(f"/api/v1/cases/{survivor}/merge", json={"merged_id": merged,
                                                                     "merged_version": version(api, merged)},
                           headers=headers)


def test_a_case_is_merged_over_the_api_and_the_duplicate_names_its_survivor(api: Api, world: World) -> None:
    survivor, duplicate = two_cases(api, world)
    add_case_reply(api.db, world.rep, duplicate, "Try pairing mode")
    answer = merge(api, world.rep, survivor, duplicate)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["merged_id"], body["survivor"]["id"], body["moved"]) == (
        duplicate, survivor, {"case_events.case_id": 1})
    assert answer.headers["ETag"] == f'"{body["survivor"]["version"]}"'
    old = api.client.get(f"/api/v1/cases/{duplicate}", headers=api.headers(world.rep))
    assert old.status_code == 200
    assert (old.json()["status"], old.json()["merged_into_id"]) == ("closed", survivor)
    assert api.client.get(f"/api/v1/cases/{survivor}", headers=api.headers(world.rep)).json()["merged_into_id"] is None


def test_merge_refusals_are_problems_in_the_callers_language(api: Api, world: World) -> None:
    survivor, duplicate = two_cases(api, world)
    merge(api, world.rep, survivor, duplicate)
    again = merge(api, world.rep, survivor, duplicate, language="zh-CN")
    assert again.status_code == 409 and again.json()["code"] == "merge.error.already_merged"
    assert again.json()["detail"] == "该记录已合并到另一条记录。"
    third = create_case(api.db, world.rep, CaseInput(customer_id=create_random_customer(api.db, world.rep),
                                                     subject="C"))
    other = merge(api, world.rep, survivor, third)
    assert other.status_code == 409 and other.json()["code"] == "case_merge.error.other_customer"
    with api.db.system_session("test") as session:
        customer_id = session.execute(select(Case.customer_id).where(Case.id == survivor)).scalar_one()
    fourth = create_case(api.db, world.rep, CaseInput(customer_id=customer_id, subject="D"))
    stale = merge(api, world.rep, survivor, fourth, if_match='"999"')
    assert stale.status_code == 412
    missing = api.client.post(f"/api/v1/cases/{survivor}/merge", json={"merged_id": third, "merged_version": 1},
                              headers=api.headers(world.rep))
    assert missing.status_code == 428
    hidden = merge(api, world.rep_other_team, *two_cases(api, world))
    assert hidden.status_code == 404
    read_only = api.client.post(f"/api/v1/cases/{survivor}/merge", json={"merged_id": third, "merged_version": 1},
                                headers=api.headers(world.rep, "read", **{"If-Match": '"1"'}))
    assert read_only.status_code == 403


def test_files_are_uploaded_listed_and_downloaded_as_attachments(api: Api, world: World) -> None:
    case_id, _ = two_cases(api, world)
    upload = api.client.post(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(world.rep), files=[
        ("files", ("屏幕 截图.png", PNG, "text/html")), ("files", ("notes.txt", b"pairing fails\n", "image/png"))])
    assert upload.status_code == 201, upload.text
    kept = upload.json()
    assert [(file["file_name"], file["content_type"], file["size"]) for file in kept] == [
        ("notes.txt", "text/plain", 14), ("屏幕 截图.png", "image/png", len(PNG))]  # types from the bytes
    listed = api.client.get(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(world.analyst))
    assert listed.status_code == 200 and [file["id"] for file in listed.json()] == [file["id"] for file in kept]

    png = kept[1]
    download = api.client.get(f"/api/v1/cases/{case_id}/attachments/{png['id']}", headers=api.headers(world.analyst))
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"__ __.png\"; filename*=UTF-8''{quote('屏幕 截图.png')}")
    assert download.headers["x-content-type-options"] == "nosniff"
    with api.db.system_session("test") as session:
        audited = session.scalar(select(AuditEvent.actor_id).where(
            AuditEvent.action == "download", AuditEvent.entity == "case_attachment", AuditEvent.entity_id == png["id"]))
    assert audited == world.analyst.user_id
    for stranger in (world.rep_other_team, world.other_admin):
        assert api.client.get(f"/api/v1/cases/{case_id}/attachments/{png['id']}",
                              headers=api.headers(stranger)).status_code == 404
        assert api.client.get(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(stranger)).status_code == 404


def test_a_refused_upload_is_a_422_naming_the_file_and_keeps_nothing(api: Api, world: World) -> None:
    case_id, _ = two_cases(api, world)
    refused = api.client.post(f"/api/v1/cases/{case_id}/attachments",
                              headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}),
                              files=[("files", ("ok.png", PNG, "image/png")),
                                     ("files", ("logo.svg", b"<svg onload='alert(1)'/>", "image/svg+xml"))])
    assert refused.status_code == 422
    assert "logo.svg" in refused.text and "浏览器" in refused.text
    listed = api.client.get(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(world.rep))
    assert listed.json() == []
    as_json = api.client.post(f"/api/v1/cases/{case_id}/attachments", json={"files": []},
                              headers=api.headers(world.rep))
    assert as_json.status_code == 415
    analyst = api.client.post(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(world.analyst),
                              files=[("files", ("ok.png", PNG, "image/png"))])
    assert analyst.status_code == 403


def test_a_file_is_removed_by_its_uploader_or_a_manager_and_refused_to_others(api: Api, world: World) -> None:
    case_id, other_case = two_cases(api, world)
    mine, managers = (api.client.post(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(who),
                                      files=[("files", (name, PNG + name.encode(), "image/png"))]).json()[0]["id"]
                      for who, name in ((world.rep, "mine.png"), (world.manager, "managers.png")))
    refused = api.client.delete(f"/api/v1/cases/{case_id}/attachments/{managers}",
                                headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert refused.status_code == 403 and refused.headers["content-type"].startswith("application/problem+json")
    assert api.client.delete(f"/api/v1/cases/{case_id}/attachments/{mine}",
                             headers=api.headers(world.analyst)).status_code == 403
    assert api.client.delete(f"/api/v1/cases/{other_case}/attachments/{mine}",  # the file through another case
                             headers=api.headers(world.rep)).status_code == 404
    assert api.client.delete(f"/api/v1/cases/{case_id}/attachments/{mine}",
                             headers=api.headers(world.other_admin)).status_code == 404
    gone = api.client.delete(f"/api/v1/cases/{case_id}/attachments/{mine}", headers=api.headers(world.rep))
    assert gone.status_code == 204 and gone.content == b""
    assert api.client.delete(f"/api/v1/cases/{case_id}/attachments/{managers}",
                             headers=api.headers(world.manager)).status_code == 204
    assert api.client.get(f"/api/v1/cases/{case_id}/attachments", headers=api.headers(world.rep)).json() == []
    gone_file = api.client.get(f"/api/v1/cases/{case_id}/attachments/{mine}", headers=api.headers(world.rep))
    assert gone_file.status_code == 404


def timeline(api: Api, actor: object, case_id: int, **params: object):  # type: ignore[no-untyped-def]
    return api.client.get(f"/api/v1/cases/{case_id}/timeline", params=params, headers=api.headers(actor))  # type: ignore[arg-type]


def test_replies_and_notes_are_added_and_the_timeline_pages_newest_first(api: Api, world: World) -> None:
    case_id, other = two_cases(api, world)
    note = api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "Old firmware; spare asked for",
                                                                     "internal": True}, headers=api.headers(world.rep))
    assert note.status_code == 201, note.text
    assert (note.json()["kind"], note.json()["author"]) == ("note", world.rep.full_name)
    reply = api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "您好，请重新配对。"},
                            headers=api.headers(world.rep))
    assert reply.status_code == 201 and reply.json()["kind"] == "reply" and reply.json()["body"] == "您好，请重新配对。"
    case = api.client.get(f"/api/v1/cases/{case_id}", headers=api.headers(world.rep)).json()
    assert case["first_responded_at"] is not None  # the reply met the first response; the note did not

    first = timeline(api, world.rep, case_id, limit=2)
    assert first.status_code == 200, first.text
    seen = [(row["kind"], row["body"]) for row in first.json()["data"]]
    assert first.json()["has_more"] is True
    add_case_reply(api.db, world.rep, case_id, "Added between the pages")  # never shifts the next page
    rest = timeline(api, world.rep, case_id, limit=100, after=first.json()["next_cursor"]).json()
    seen += [(row["kind"], row["body"]) for row in rest["data"]]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    # newest first; the case opened assigned (new → open); the reply added after the first page is not in the rest
    assert [kind for kind, _ in seen] == ["reply", "note", "assignee", "status", "opened"]
    assert ("reply", "您好，请重新配对。") in seen and ("note", "Old firmware; spare asked for") in seen
    # a cursor is only good for the timeline it came from
    foreign = timeline(api, world.rep, other, after=first.json()["next_cursor"])
    assert foreign.status_code == 400 and foreign.json()["code"] == "invalid_cursor"


def test_reply_refusals_are_problems_in_the_callers_language(api: Api, world: World) -> None:
    case_id, _ = two_cases(api, world)
    before = timeline(api, world.rep, case_id).json()["data"]
    blank = api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "   "},
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert blank.status_code == 422
    assert blank.json()["errors"] == [{"field": "body", "code": "validation.required", "message": "必填。"}]
    hidden = api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "ok\u202eevil"},
                             headers=api.headers(world.rep))
    assert hidden.status_code == 422
    assert api.client.post("/api/v1/cases/99999/replies", json={"body": "hi"},
                           headers=api.headers(world.rep)).status_code == 404
    assert api.client.get("/api/v1/cases/99999/timeline", headers=api.headers(world.rep)).status_code == 404
    reader = api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "hi"},
                             headers=api.headers(world.analyst))
    assert reader.status_code == 403 and reader.json()["code"] == "access_denied"  # an analyst only reads
    for outsider in (world.rep_other_team, world.other_admin):  # the case does not exist for them
        assert timeline(api, outsider, case_id).status_code == 404
        assert api.client.post(f"/api/v1/cases/{case_id}/replies", json={"body": "hi"},
                               headers=api.headers(outsider)).status_code == 404
    assert timeline(api, world.rep, case_id).json()["data"] == before  # the refusals wrote nothing
