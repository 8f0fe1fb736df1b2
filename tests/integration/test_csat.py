"""CSAT on every database: the signed rating link of a resolved case (valid, tampered, expired,
cross-tenant, reopened, a second click), its audit, and the host's /csat route."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.models import AuditEvent, Case, utcnow
from crm_core.models.service import CaseRating
from crm_core.services import csat
from crm_core.services.cases import CaseInput, create_case, transition_case
from server import csat_endpoint
from tests.factories import World, build_world, create_random_customer

KEY = "csat-test-key-0123456789abcdef0123"


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture(autouse=True)
def csat_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_CSAT_KEY", KEY)


def resolved_case(db: Database, world: World) -> Case:
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer"))
    transition_case(db, world.rep, case_id, "resolved", expected_version=1)
    with db.session(world.rep) as session:
        case = session.get(Case, case_id)
        assert case is not None
        session.expunge(case)
        return case


def rating(db: Database, world: World, case_id: int) -> CaseRating | None:
    with db.session(world.admin) as session:
        row = session.scalar(select(CaseRating).where(CaseRating.case_id == case_id))
        if row is not None:
            session.expunge(row)
        return row


def token_of(link: str) -> str:
    return link.rsplit("/", 1)[1]


def test_a_click_records_the_rating_and_a_second_click_updates_it(db: Database, world: World) -> None:
    case = resolved_case(db, world)
    link = csat.csat_link(case, "https://crm.example/", language="zh-CN")
    assert link.startswith("https://crm.example/csat/")
    token = token_of(link)
    first = csat.rate_case(db, token, "bad")
    assert (first.score, first.updated, first.language) == ("bad", False, "zh-CN")
    second = csat.rate_case(db, token, "good", "  Quick and kind  ")
    assert (second.score, second.updated) == ("good", True)
    stored = rating(db, world, case.id)
    assert stored is not None and (stored.score, stored.comment) == ("good", "Quick and kind")
    csat.rate_case(db, token, "good")  # the one-click step again keeps the comment
    again = rating(db, world, case.id)
    assert again is not None and again.comment == "Quick and kind"
    with db.session(world.admin) as session:
        audits = session.execute(select(AuditEvent.action, AuditEvent.changes).where(
            AuditEvent.entity == "case_rating", AuditEvent.entity_id == stored.id).order_by(AuditEvent.id)).all()
    assert [action for action, _ in audits] == ["create", "update", "update"]
    assert audits[0][1]["_source"] == ["", "csat link"]


def test_a_tampered_or_foreign_token_is_refused(db: Database, world: World) -> None:
    case = resolved_case(db, world)
    token = token_of(csat.csat_link(case, "https://crm.example"))
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with pytest.raises(csat.CsatLinkRefused) as bad_signature:
        csat.rate_case(db, tampered, "good")
    assert bad_signature.value.reason == "invalid"
    with pytest.raises(csat.CsatLinkRefused):  # signed with another deployment's key
        csat.rate_case(db, token_of(csat.csat_link(case, "x", key="another-key-0123456789abcdef")), "good")
    # a token correctly signed, naming the case under the other tenant: no such case there
    other_tenant = world.other_admin.tenant_id
    forged = URLSafeTimedSerializer(KEY, salt=csat.SALT).dumps(
        {"t": other_tenant, "c": case.id, "r": case.resolved_at.isoformat() if case.resolved_at else "", "l": "en"})
    with pytest.raises(csat.CsatLinkRefused) as cross_tenant:
        csat.rate_case(db, forged, "good")
    assert cross_tenant.value.reason == "invalid"
    assert rating(db, world, case.id) is None


def test_a_link_expires_after_fourteen_days(db: Database, world: World) -> None:
    case = resolved_case(db, world)
    made = utcnow()
    token = token_of(csat.csat_link(case, "https://crm.example", language="zh-CN", now=made))
    assert csat.rate_case(db, token, "good", now=made + dt.timedelta(days=13, hours=23)).score == "good"
    with pytest.raises(csat.CsatLinkRefused) as expired:
        csat.rate_case(db, token, "bad", now=made + dt.timedelta(days=14, minutes=1))
    assert (expired.value.reason, expired.value.language) == ("expired", "zh-CN")
    stored = rating(db, world, case.id)
    assert stored is not None and stored.score == "good"


def test_a_reopened_case_voids_its_link_and_bad_input_is_refused(db: Database, world: World) -> None:
    case = resolved_case(db, world)
    token = token_of(csat.csat_link(case, "https://crm.example"))
    with pytest.raises(ValidationFailed) as score:
        csat.rate_case(db, token, "meh")
    assert score.value.errors["score"][0] == "validation.choice"
    with pytest.raises(ValidationFailed) as long_comment:
        csat.rate_case(db, token, "good", "x" * 1001)
    assert long_comment.value.errors["comment"] == ("imports.rule.too_long", {"field": "comment", "max": 1000})
    for hidden in ("a\x00b", "ok\u202egnp.exe"):  # PostgreSQL stores no NUL; a direction override hides text
        with pytest.raises(ValidationFailed) as refused:
            csat.rate_case(db, token, "good", hidden)
        assert refused.value.errors["comment"] == ("imports.rule.hidden_characters", {"field": "comment"})
    transition_case(db, world.rep, case.id, "open", expected_version=case.version)
    with pytest.raises(csat.CsatLinkRefused) as reopened:
        csat.rate_case(db, token, "good")
    assert reopened.value.reason == "reopened"
    with db.session(world.rep) as session:
        open_case = session.get(Case, case.id)
        assert open_case is not None
        with pytest.raises(ValueError):
            csat.csat_link(open_case, "https://crm.example")
    assert rating(db, world, case.id) is None


def test_ratings_follow_the_cases_access_rule(db: Database, world: World) -> None:
    case = resolved_case(db, world)
    csat.rate_case(db, token_of(csat.csat_link(case, "https://crm.example")), "good")
    assert rating(db, world, case.id) is not None
    for outsider in (world.rep_other_team, world.other_admin):
        with db.session(outsider) as session:
            assert session.scalar(select(CaseRating).where(CaseRating.case_id == case.id)) is None


@pytest.fixture
def host(db: Database) -> Iterator[TestClient]:
    app = Starlette(routes=[Route("/csat/{token}", csat_endpoint(lambda: db), methods=["GET", "POST"])])
    with TestClient(app) as client:
        yield client


def test_the_host_page_records_a_click_and_a_comment_escaped(db: Database, world: World, host: TestClient) -> None:
    case = resolved_case(db, world)
    path = "/csat/" + token_of(csat.csat_link(case, "https://crm.example", language="zh-CN"))
    choices = host.get(path)
    assert choices.status_code == 200 and 'lang="zh-CN"' in choices.text and "满意" in choices.text
    assert rating(db, world, case.id) is None  # opening the page without a choice records nothing
    clicked = host.get(path + "?score=good")
    assert clicked.status_code == 200 and "谢谢" in clicked.text and clicked.headers["cache-control"] == "no-store"
    sent = host.post(path, data={"score": "good", "comment": "<script>alert(1)</script>"})
    assert sent.status_code == 200 and "<script>" not in sent.text
    stored = rating(db, world, case.id)
    assert stored is not None and stored.comment == "<script>alert(1)</script>"  # kept as typed, never rendered
    assert host.get(path[:-3] + "xyz?score=good").status_code == 404
    assert host.get(path + "?score=meh").status_code == 400
    assert host.post(path, data={"score": "bad", "comment": "x" * 1001}).status_code == 400
