"""The server-set login cookie: one-time tickets, the cookie's flags, the host's two routes."""

from __future__ import annotations

import logging
import time

import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from crm_ui import session_cookie
from crm_ui.session_cookie import TicketBook, cookie_issued_at, cookie_value
from server import clear_session_cookie, set_session_cookie

KEY = "unit-test-cookie-key-0123456789abcdef"


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("CRM_COOKIE_KEY", KEY)
    monkeypatch.setattr(session_cookie, "TICKETS", TicketBook())
    app = Starlette(routes=[Route(session_cookie.SET_PATH, set_session_cookie),
                            Route(session_cookie.CLEAR_PATH, clear_session_cookie)])
    return TestClient(app)


def test_a_ticket_is_good_once_and_only_for_a_minute(monkeypatch: pytest.MonkeyPatch) -> None:
    book = TicketBook()
    ticket = book.issue("rita")
    assert book.shown(ticket)
    assert book.redeem(ticket) == "rita"
    assert book.redeem(ticket) is None and book.refusal(ticket) == "already redeemed"
    # still shown until it expires: a rerun must not remove the image while the browser reads the answer
    assert book.shown(ticket)
    assert book.redeem("made-up") is None and book.refusal("made-up").startswith("unknown")
    late = book.issue("rita")
    now = time.monotonic()
    monkeypatch.setattr(session_cookie.time, "monotonic", lambda: now + session_cookie.TICKET_SECONDS + 1)
    assert book.redeem(late) is None and not book.shown(late) and not book.shown(ticket)
    assert book.refusal(late) == "expired"


def test_the_route_sets_an_httponly_lax_cookie_the_authenticator_can_read(
        host: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    ticket = session_cookie.TICKETS.issue("rita")
    answer = host.get(session_cookie.SET_PATH, params={"ticket": ticket})
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/gif"
    header = answer.headers["set-cookie"]
    assert header.startswith("kestrel_session=")
    flags = [part.strip() for part in header.split(";")]
    assert "HttpOnly" in flags and "SameSite=Lax" in flags and "Path=/" in flags
    assert "Secure" not in flags  # plain HTTP here; over HTTPS (or CRM_COOKIE_SECURE=1) it is Secure
    assert answer.headers["cache-control"] == "no-store"
    value = header.split(";")[0].split("=", 1)[1]
    issued = cookie_issued_at(value, KEY)
    assert issued is not None
    # spent: a replay from a log sets nothing, and the host's log says why (never whose ticket it was)
    with caplog.at_level(logging.INFO, logger="kestrel"):
        again = host.get(session_cookie.SET_PATH, params={"ticket": ticket})
    assert again.status_code == 404 and "set-cookie" not in again.headers
    assert "login cookie not set: the ticket is already redeemed" in caplog.text and "rita" not in caplog.text


def test_the_cookie_is_secure_over_https_and_when_told(host: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    secure = TestClient(host.app, base_url="https://crm.example")
    answer = secure.get(session_cookie.SET_PATH, params={"ticket": session_cookie.TICKETS.issue("rita")})
    assert "Secure" in answer.headers["set-cookie"]
    monkeypatch.setenv("CRM_COOKIE_SECURE", "1")
    answer = host.get(session_cookie.CLEAR_PATH)
    assert "Secure" in answer.headers["set-cookie"]


def test_clearing_drops_the_cookie(host: TestClient) -> None:
    header = host.get(session_cookie.CLEAR_PATH).headers["set-cookie"]
    assert header.startswith("kestrel_session=;") and "Max-Age=0" in header and "HttpOnly" in header


def test_a_forged_or_foreign_cookie_has_no_issue_time() -> None:
    assert cookie_issued_at(cookie_value("rita", "another-cookie-key-0123456789abcdef"), KEY) is None
    assert cookie_issued_at("not-a-token", KEY) is None
    assert cookie_issued_at(None, KEY) is None
