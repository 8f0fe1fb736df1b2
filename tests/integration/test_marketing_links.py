"""The host's routes of a marketing email's links on every database (decision 0048): one-click unsubscribe
(GET page, RFC 8058 POST), the preference page and its token-bound form, the open pixel, the signed click
redirect; unknown tokens and bad signatures get the 404 page, never a traceback."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, text, update
from starlette.applications import Starlette
from starlette.testclient import TestClient

from crm_core.db import Database
from crm_core.marketing.sender import send_marketing_mail
from crm_core.marketing.tracking import message_lookup
from crm_core.models import utcnow
from crm_core.models.marketing import ConsentRecord, MarketingEvent, MarketingMessage, MarketingSettings
from crm_core.services.consent import send_decision
from server import marketing_routes
from tests.factories import World
from tests.integration import test_marketing_send as sending
from tests.integration.test_marketing_send import body_of, queue_for, touches
from tests.mail_sink import Sink

world = sending.world  # the fixtures of the sender's tests: a world, the environment and its sink
mail_env = sending.mail_env


@pytest.fixture
def client(db: Database) -> TestClient:
    return TestClient(Starlette(routes=marketing_routes(lambda: db)), follow_redirects=False)


def sent_one(db: Database, world: World, address: str = "li@example.cn", **kwargs: object) -> MarketingMessage:
    [message] = queue_for(db, world, [address], **kwargs)  # type: ignore[arg-type]
    assert send_marketing_mail(db, world.admin.tenant_id).sent == 1
    return message


def test_unsubscribe_asks_on_get_and_withdraws_on_the_one_click_post(db: Database, world: World, mail_env: Sink,
                                                                     client: TestClient) -> None:
    message = sent_one(db, world, language="zh-CN")
    page = client.get(f"/m/u/{message.token}")
    assert page.status_code == 200 and 'lang="zh-CN"' in page.text and "li@example.cn" in page.text
    assert send_decision_allowed(db, world)  # a GET (a mail scanner's prefetch) changes nothing
    done = client.post(f"/m/u/{message.token}", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "退订" in done.text or "li@example.cn" in done.text
    assert not send_decision_allowed(db, world)
    assert client.post(f"/m/u/{message.token}").status_code == 200  # a second click writes nothing more
    with db.system_session("test") as session:
        proofs = session.scalars(select(ConsentRecord.proof_kind).where(ConsentRecord.action == "withdraw")).all()
    assert proofs == ["unsubscribe"] and touches(db, "unsubscribed") == ["unsubscribe link"]


def send_decision_allowed(db: Database, world: World) -> bool:
    with db.system_session("test") as session:
        return send_decision(session, world.admin.tenant_id, "email", "li@example.cn").allowed


def test_the_preference_page_withdraws_per_channel_and_refuses_a_forged_form(db: Database, world: World,
                                                                            mail_env: Sink, client: TestClient) -> None:
    message = sent_one(db, world)
    page = client.get(f"/m/p/{message.token}")
    assert page.status_code == 200 and 'name="email:li@example.cn"' in page.text
    form_key = re.search(r'name="form_key" value="([0-9a-f]+)"', page.text)
    assert form_key is not None
    forged = client.post(f"/m/p/{message.token}", data={"form_key": "0" * 32, "email:li@example.cn": "withdraw"})
    assert forged.status_code == 400 and send_decision_allowed(db, world)
    saved = client.post(f"/m/p/{message.token}", data={"form_key": form_key.group(1),
                                                       "email:li@example.cn": "withdraw"})
    assert saved.status_code == 200 and "(1 changed)" in saved.text and not send_decision_allowed(db, world)
    back = client.post(f"/m/p/{message.token}", data={"form_key": form_key.group(1), "email:li@example.cn": "keep"})
    assert back.status_code == 200 and send_decision_allowed(db, world)  # their own consent, recorded as such
    with db.system_session("test") as session:
        kinds = session.scalars(select(ConsentRecord.proof_kind).order_by(ConsentRecord.id)).all()
    assert kinds[-2:] == ["preference_page", "preference_page"]


def test_the_pixel_counts_an_open_once_a_minute_and_not_without_tracking(db: Database, world: World,
                                                                        mail_env: Sink, client: TestClient) -> None:
    message = sent_one(db, world)
    for _ in range(3):
        pixel = client.get(f"/m/o/{message.token}.gif")
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    assert len(touches(db, "opened")) == 1
    with db.system_transaction("test: tracking off") as session:
        session.execute(update(MarketingSettings).values(tracking_enabled=False))
        if session.scalar(select(MarketingSettings.id)) is None:
            session.add(MarketingSettings(tenant_id=world.admin.tenant_id, tracking_enabled=False))
    with db.system_transaction("test: a minute later") as session:
        session.execute(update(MarketingEvent).values(occurred_at=utcnow() - dt.timedelta(minutes=5)))
    assert client.get(f"/m/o/{message.token}.gif").status_code == 200 and len(touches(db, "opened")) == 1
    assert client.get("/m/o/not-a-token.gif").status_code == 404


def test_a_click_redirects_only_where_the_signature_says(db: Database, world: World, mail_env: Sink,
                                                         client: TestClient) -> None:
    sent_one(db, world)
    text = body_of(mail_env.messages[0][2], "plain")
    link = re.search(r"https://crm\.example\.cn(/m/c/\S+)", text)
    assert link is not None
    path = link.group(1).rstrip(".")
    good = client.get(path)
    assert good.status_code == 302 and good.headers["location"] == "https://shop.example.com/offer?x=1"
    assert touches(db, "clicked") == ["https://shop.example.com/offer?x=1"]
    tampered = path.replace("shop.example.com", "evil.example.com")
    assert client.get(tampered).status_code == 404
    assert client.get(path[:-4] + "0000").status_code == 404  # another signature
    assert len(touches(db, "clicked")) == 1


def test_a_link_sent_before_tokens_named_their_tenant_still_works(db: Database, world: World, mail_env: Sink,
                                                                  client: TestClient) -> None:
    """Links in mail already delivered live on: an old token (random characters, no tenant) is found by
    itself, on PostgreSQL through the partial index of such tokens (migration 0045), not a table scan."""
    message = sent_one(db, world)
    old = "Q" * 20 + "_-" + "x" * 21  # token_urlsafe(32)'s alphabet: no dot
    with db.system_transaction("test") as session:
        session.execute(update(MarketingMessage).where(MarketingMessage.id == message.id).values(token=old))
    assert client.get(f"/m/p/{old}").status_code == 200
    assert client.post(f"/m/u/{old}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert not send_decision_allowed(db, world)
    assert client.get(f"/m/u/{old[:-1]}").status_code == 404
    if db.dialect_name == "postgresql":
        lookup = message_lookup(old).compile(db.engine, compile_kwargs={"literal_binds": True})
        with db.system_session("test") as session:
            session.execute(text("SET LOCAL enable_seqscan = off"))  # a tiny table: can the index serve it?
            plan = "\n".join(row[0] for row in session.connection().exec_driver_sql(f"EXPLAIN {lookup}"))
        assert "ix_marketing_messages_legacy_token" in plan, plan


@pytest.mark.parametrize("path", ["/m/u/nope", "/m/p/nope", "/m/c/nope?u=https://x.example&s=00",
                                  "/m/u/" + "x" * 300])
def test_an_unknown_token_gets_the_404_page(client: TestClient, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404 and "not valid" in answer.text and "Traceback" not in answer.text
    assert client.post(path.split("?")[0]).status_code in (404, 405)
