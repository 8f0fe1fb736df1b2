"""/api/v1/deals: the deal form, the board's moves, won and lost over HTTP, on every database."""

from __future__ import annotations

from typing import Any

from crm_core.access import Actor
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def listed_ids(api: Api, headers: dict[str, str], query: str = "", limit: int = 100) -> list[int]:
    """Every id the list gives, following the cursors."""
    found: list[int] = []
    cursor = None
    while True:
        suffix = f"&after={cursor}" if cursor else ""
        answer = api.client.get(f"/api/v1/deals?limit={limit}{query}{suffix}", headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        found += [row["id"] for row in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


def new_deal(api: Api, actor: Actor, **fields: Any) -> dict[str, Any]:
    """A deal of ``actor`` on a new customer of theirs, created through the API."""
    customer_id = create_random_customer(api.db, actor)
    answer = api.client.post("/api/v1/deals", json={"customer_id": customer_id, "name": unique("Deal "), **fields},
                             headers=api.headers(actor))
    assert answer.status_code == 201, answer.text
    body: dict[str, Any] = answer.json()
    return body


def stages(api: Api, actor: Actor) -> dict[str, list[int]]:
    """The default pipeline's stage ids by kind, in order."""
    from crm_core.queries.deals import get_pipeline

    with api.db.session(actor) as session:
        pipeline = get_pipeline(session)
        assert pipeline is not None
        found: dict[str, list[int]] = {"open": [], "won": [], "lost": []}
        for stage in pipeline.stages:
            found[stage.kind].append(stage.id)
    return found


def test_a_token_of_tenant_b_never_reads_or_writes_tenant_a(api: Api, world: World) -> None:
    deal = new_deal(api, world.admin)
    other = api.headers(world.other_admin, **{"If-Match": '"1"'})
    assert deal["id"] not in listed_ids(api, other)
    path = f"/api/v1/deals/{deal['id']}"
    assert api.client.get(path, headers=other).status_code == 404
    assert api.client.patch(path, json={"name": "Stolen"}, headers=other).status_code == 404
    assert api.client.delete(path, headers=other).status_code == 404
    assert api.client.post(f"{path}/won", json={}, headers=other).status_code == 404
    stolen = api.client.post("/api/v1/deals", json={"customer_id": deal["customer_id"], "name": "Spy"},
                             headers=other)
    assert stolen.status_code == 404


def test_a_rep_sees_and_moves_only_their_own_deals(api: Api, world: World) -> None:
    own = new_deal(api, world.rep)
    far = new_deal(api, world.rep_other_team)
    rep = api.headers(world.rep, **{"If-Match": '"1"'})
    seen = set(listed_ids(api, rep))
    assert own["id"] in seen and far["id"] not in seen
    assert api.client.get(f"/api/v1/deals/{far['id']}", headers=rep).status_code == 404
    assert api.client.post(f"/api/v1/deals/{far['id']}/won", json={}, headers=rep).status_code == 404
    assert {own["id"], far["id"]} <= set(listed_ids(api, api.headers(world.analyst)))


def test_an_analyst_and_a_read_scope_token_write_nothing(api: Api, world: World) -> None:
    deal = new_deal(api, world.rep)
    path = f"/api/v1/deals/{deal['id']}"
    for headers in (api.headers(world.analyst, **{"If-Match": '"1"'}),
                    api.headers(world.rep, scope="read", **{"If-Match": '"1"'})):
        assert api.client.get(path, headers=headers).status_code == 200
        assert api.client.patch(path, json={"name": "x"}, headers=headers).status_code == 403
        assert api.client.post(f"{path}/won", json={}, headers=headers).status_code == 403
        assert api.client.delete(path, headers=headers).status_code == 403
        created = api.client.post("/api/v1/deals", json={"customer_id": deal["customer_id"], "name": "x"},
                                  headers=headers)
        assert created.status_code == 403
    assert api.client.get(path, headers=api.headers(world.rep)).json()["version"] == 1


def test_create_get_patch_archive_and_restore(api: Api, world: World) -> None:
    deal = new_deal(api, world.rep, amount="1,200.50", expected_close_date="2027-06-30")
    assert deal["owner_id"] == world.rep.user_id and deal["amount"] == "1200.50" and deal["version"] == 1
    assert deal["stage_kind"] == "open" and [m["from_stage"] for m in deal["stage_history"]] == [None]
    path = f"/api/v1/deals/{deal['id']}"
    headers = api.headers(world.rep)
    got = api.client.get(path, headers=headers)
    assert got.json() == deal and got.headers["etag"] == '"1"'
    patched = api.client.patch(path, json={"amount": 3000, "probability": 70},
                               headers={**headers, "If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["amount"], patched.json()["probability"], patched.json()["name"]) == (
        "3000.00", 70, deal["name"])
    assert patched.json()["weighted_amount"] == "2100.00" and patched.headers["etag"] == '"2"'
    archived = api.client.delete(path, headers={**headers, "If-Match": '"2"'})
    assert archived.status_code == 200 and archived.json()["archived_at"] is not None
    assert deal["id"] not in listed_ids(api, headers)
    assert deal["id"] in listed_ids(api, headers, "&include_archived=true")
    listed = api.client.get(f"/api/v1/deals?include_archived=true&customer_id={deal['customer_id']}", headers=headers)
    assert listed.json()["data"][0]["archived_at"] == archived.json()["archived_at"]
    restored = api.client.post(f"{path}/restore", headers={**headers, "If-Match": archived.headers["etag"]})
    assert restored.status_code == 200 and restored.json()["archived_at"] is None


def test_moves_follow_the_transition_table_and_lost_needs_a_reason(api: Api, world: World) -> None:
    kinds = stages(api, world.rep)
    deal = new_deal(api, world.rep)
    path = f"/api/v1/deals/{deal['id']}"
    headers = api.headers(world.rep)
    moved = api.client.post(f"{path}/stage", json={"stage_id": kinds["open"][1]},
                            headers={**headers, "If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.json()["stage_id"] == kinds["open"][1] and len(moved.json()["stage_history"]) == 2
    version = moved.headers["etag"]
    blank = api.client.post(f"{path}/lost", json={"lost_reason": " "},
                            headers={**headers, "If-Match": version, "Accept-Language": "zh-CN"})
    assert blank.status_code == 422
    assert [e["field"] for e in blank.json()["errors"]] == ["lost_reason"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in blank.json()["errors"][0]["message"])
    won = api.client.post(f"{path}/won", json={"won_reason": "试点说服了财务总监"},
                          headers={**headers, "If-Match": version})
    assert won.status_code == 200 and won.json()["stage_kind"] == "won" and won.json()["closed_at"]
    assert won.json()["won_reason"] == "试点说服了财务总监"
    refused = api.client.post(f"{path}/stage", json={"stage_id": kinds["lost"][0], "lost_reason": "Price"},
                              headers={**headers, "If-Match": won.headers["etag"], "Accept-Language": "zh-CN"})
    assert (refused.status_code, refused.json()["code"]) == (422, "deal.transition_refused")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.json()["detail"])
    english = api.client.post(f"{path}/lost", json={"lost_reason": "Price"},
                              headers={**headers, "If-Match": won.headers["etag"]})
    assert (english.status_code, english.json()["code"]) == (422, "deal.transition_refused")
    current = api.client.get(path, headers=headers).json()
    assert (current["stage_kind"], current["version"]) == ("won", 3)
    reopened = api.client.post(f"{path}/stage", json={"stage_id": kinds["open"][0]},
                               headers={**headers, "If-Match": '"3"'})
    lost = api.client.post(f"{path}/lost", json={"lost_reason": "Chose a cheaper supplier"},
                           headers={**headers, "If-Match": reopened.headers["etag"]})
    assert lost.status_code == 200
    assert (lost.json()["stage_kind"], lost.json()["lost_reason"]) == ("lost", "Chose a cheaper supplier")


def test_a_stale_write_is_412_with_who_changed_it_and_nothing_is_written(api: Api, world: World) -> None:
    deal = new_deal(api, world.rep)
    path = f"/api/v1/deals/{deal['id']}"
    assert api.client.patch(path, json={"amount": 5}, headers=api.headers(world.manager, **{"If-Match": '"1"'}))\
        .status_code == 200
    headers = api.headers(world.rep, **{"If-Match": '"1"'})
    for answer in (api.client.patch(path, json={"amount": 9}, headers=headers),
                   api.client.post(f"{path}/won", json={}, headers=headers),
                   api.client.delete(path, headers=headers)):
        assert answer.status_code == 412
        assert (answer.json()["code"], answer.json()["changed_by"]) == ("stale_record", world.manager.full_name)
    current = api.client.get(path, headers=headers).json()
    assert (current["version"], current["amount"], current["stage_kind"]) == (2, "5.00", "open")


def test_field_errors_are_422_in_the_callers_language(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    body = {"customer_id": customer_id, "name": " ", "amount": "lots"}
    english = api.client.post("/api/v1/deals", json=body, headers=api.headers(world.rep))
    chinese = api.client.post("/api/v1/deals", json=body,
                              headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert english.status_code == chinese.status_code == 422
    assert [e["field"] for e in english.json()["errors"]] == ["amount", "name"]
    assert chinese.json()["detail"].startswith("请修改")
    shape = api.client.post("/api/v1/deals", json={"customer_id": customer_id, "name": "x", "probability": 101},
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert shape.status_code == 422 and shape.json()["errors"][0]["field"] == "probability"


def test_the_list_pages_by_cursor_with_filters_and_search(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep)
    marker = unique("Cursor")
    made = []
    for number in range(5):
        answer = api.client.post("/api/v1/deals", json={"customer_id": customer_id, "name": f"{marker} {number}"},
                                 headers=headers)
        made.append(answer.json()["id"])
    query = f"&search={marker}&customer_id={customer_id}"
    first = api.client.get(f"/api/v1/deals?limit=2&include_total=true{query}", headers=headers).json()
    assert first["total"] == 5 and first["has_more"] and len(first["data"]) == 2
    # a deal added after the first page does not shift the next ones
    api.client.post("/api/v1/deals", json={"customer_id": customer_id, "name": f"{marker} late"}, headers=headers)
    rest = listed_ids(api, headers, query + f"&after={first['next_cursor']}", limit=2)
    assert [row["id"] for row in first["data"]] + rest == sorted(made, reverse=True)
    other_filter = api.client.get(f"/api/v1/deals?limit=2&after={first['next_cursor']}", headers=headers)
    assert (other_filter.status_code, other_filter.json()["code"]) == (400, "invalid_cursor")
    ascending = listed_ids(api, headers, query + "&sort=updated_at&order=asc", limit=2)
    assert len(ascending) == 6 and ascending[:5] == sorted(made)


def test_the_same_idempotency_key_and_body_replays_the_first_deal(api: Api, world: World) -> None:
    customer_id = create_random_customer(api.db, world.rep)
    headers = api.headers(world.rep, **{"Idempotency-Key": unique("deal-form-")})
    body = {"customer_id": customer_id, "name": unique("Idem deal ")}
    first = api.client.post("/api/v1/deals", json=body, headers=headers)
    again = api.client.post("/api/v1/deals", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = api.client.post("/api/v1/deals", json={**body, "name": "Other"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (422, "idempotency_key_reused")
    assert listed_ids(api, headers, f"&customer_id={customer_id}") == [first.json()["id"]]


def test_a_deal_shows_its_product_lines_in_order_and_is_worth_their_sum(api: Api, world: World) -> None:
    from crm_core.services.deal_lines import DealLineInput, set_deal_lines
    from crm_core.services.products import ProductInput, create_product

    deal = new_deal(api, world.admin, amount="10")
    scanner = create_product(api.db, world.admin, ProductInput(sku=unique("SCN"), name="Scanner", unit_price="1200"))
    licence = create_product(api.db, world.admin, ProductInput(sku="", name=unique("Licence"), unit_price="33.33"))
    set_deal_lines(api.db, world.admin, deal["id"], [DealLineInput(product_id=scanner, quantity=2),
                                                     DealLineInput(product_id=licence, quantity="1.5")],
                   expected_version=deal["version"])
    answer = api.client.get(f"/api/v1/deals/{deal['id']}", headers=api.headers(world.admin))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(line["position"], line["product_id"], line["quantity"], line["unit_price"], line["line_total"])
            for line in body["lines"]] == [(1, scanner, "2.00", "1200.00", "2400.00"),
                                           (2, licence, "1.50", "33.33", "50.00")]
    assert (body["amount"], body["version"]) == ("2450.00", deal["version"] + 1)
    listed = api.client.get(f"/api/v1/deals?customer_id={deal['customer_id']}", headers=api.headers(world.admin))
    assert [len(row["lines"]) for row in listed.json()["data"]] == [2]
    # a deal without lines shows an empty list and keeps its typed amount
    plain = new_deal(api, world.admin, amount="10")
    assert (plain["lines"], plain["amount"]) == ([], "10.00")


def test_a_deals_lines_are_set_over_the_api_under_its_version(api: Api, world: World) -> None:
    from crm_core.services.products import ProductInput, create_product

    deal = new_deal(api, world.rep, amount="10")
    scanner = create_product(api.db, world.admin, ProductInput(sku=unique("SCN"), name="Scanner", unit_price="1200"))
    path = f"/api/v1/deals/{deal['id']}/lines"
    lines = [{"product_id": scanner, "quantity": "2"}, {"product_id": scanner, "quantity": "1", "unit_price": "880"}]
    assert api.client.put(path, json={"lines": lines}, headers=api.headers(world.rep)).status_code == 428
    answer = api.client.put(path, json={"lines": lines},
                            headers=api.headers(world.rep, **{"If-Match": f'"{deal["version"]}"'}))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [(line["quantity"], line["line_total"]) for line in body["lines"]] == [("2.00", "2400.00"),
                                                                                  ("1.00", "880.00")]
    assert body["amount"] == "3280.00" and answer.headers["ETag"] == f'"{body["version"]}"'
    # the version it was read at is stale now: 412, nothing written
    stale = api.client.put(path, json={"lines": []},
                           headers=api.headers(world.rep, **{"If-Match": f'"{deal["version"]}"'}))
    assert stale.status_code == 412
    # a wrong line is named, in the caller's language, and nothing changes
    wrong = api.client.put(path, json={"lines": [{"product_id": scanner}, {"product_id": 999999}]},
                           headers=api.headers(world.rep, **{"If-Match": f'"{body["version"]}"',
                                                             "Accept-Language": "zh-CN"}))
    assert wrong.status_code == 422, wrong.text
    assert [error["field"] for error in wrong.json()["errors"]] == ["line2.product"]  # as the orders API names it
    kept = api.client.get(f"/api/v1/deals/{deal['id']}", headers=api.headers(world.rep)).json()
    assert (kept["version"], len(kept["lines"]), kept["amount"]) == (body["version"], 2, "3280.00")
    # an empty list removes the lines and keeps the amount
    cleared = api.client.put(path, json={"lines": []},
                             headers=api.headers(world.rep, **{"If-Match": f'"{body["version"]}"'}))
    assert (cleared.json()["lines"], cleared.json()["amount"]) == ([], "3280.00")
    # who may not edit the deal may not set its lines
    for outsider, code in ((world.rep_other_team, 404), (world.other_admin, 404), (world.analyst, 403)):
        refused = api.client.put(path, json={"lines": lines}, headers=api.headers(
            outsider, **{"If-Match": f'"{cleared.json()["version"]}"'}))
        assert refused.status_code == code, (outsider.username, refused.text)
