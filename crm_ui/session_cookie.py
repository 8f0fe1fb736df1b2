"""The login cookie, written by the server (HttpOnly) instead of by JavaScript.

streamlit-authenticator would write its cookie from the page's JavaScript, so scripts could read
it. Here the page only shows a one-pixel image whose address carries a one-time ticket; the host's
``/_kestrel/session`` route (``server.py``) redeems the ticket and answers with ``Set-Cookie:
kestrel_session=…; HttpOnly; SameSite=Lax`` (``Secure`` over HTTPS). The authenticator still reads
the cookie on a new visit (server-side, from ``st.context.cookies``) and the frame still checks it
against the user's ``sessions_valid_after``.

Tickets live in this process for 60 seconds and are good once: the image request comes from the
same browser session, which a sticky load balancer sends to the same process (issue 15). A ticket
seen in an access log is spent or expired by the time anyone reads it.
"""

from __future__ import annotations

import datetime as dt
import html
import os
import secrets
import threading
import time
from dataclasses import dataclass

import jwt

from crm_core.config import COOKIE_EXPIRY_DAYS, COOKIE_NAME, resolve_cookie_key

SET_PATH = "/_kestrel/session"
CLEAR_PATH = "/_kestrel/session/clear"
TICKET_SECONDS = 60.0
TICKET_STATE = "kestrel_cookie_ticket"  # session state: the ticket the frame shows until the browser fetched it


def configured_cookie_key() -> str:
    """The cookie-signing key from CRM_COOKIE_KEY or secrets.toml, else generated once (never a default)."""
    configured = os.environ.get("CRM_COOKIE_KEY")
    if not configured:
        try:
            import streamlit as st

            configured = st.secrets.get("cookie_key")
        except Exception:  # no or a malformed secrets.toml must not leak a trace to the login page
            configured = None
    return resolve_cookie_key(configured)


def cookie_value(username: str, key: str, now: float | None = None) -> str:
    """The signed token streamlit-authenticator reads back: the username and the expiry."""
    expires = (now or time.time()) + COOKIE_EXPIRY_DAYS * 86400
    return jwt.encode({"username": username, "exp_date": expires}, key, algorithm="HS256")


def cookie_issued_at(token: str | None, key: str) -> dt.datetime | None:
    """When a cookie was issued (naive UTC), read from its signed expiry; None if absent or forged."""
    if not token:
        return None
    try:
        claims = jwt.decode(token, key, algorithms=["HS256"])
        expires = float(claims["exp_date"])
    except (jwt.PyJWTError, KeyError, TypeError, ValueError):
        return None
    issued = expires - COOKIE_EXPIRY_DAYS * 86400
    return dt.datetime.fromtimestamp(issued, dt.UTC).replace(tzinfo=None)


@dataclass
class _Ticket:
    username: str
    expires: float
    redeemed: bool = False


class TicketBook:
    """One-time tickets: issued by a page run, redeemed by the cookie route of the same process."""

    def __init__(self) -> None:
        self._tickets: dict[str, _Ticket] = {}
        self._lock = threading.Lock()

    def issue(self, username: str) -> str:
        """A fresh ticket for ``username``, good once within :data:`TICKET_SECONDS`."""
        now = time.monotonic()
        ticket = secrets.token_urlsafe(32)
        with self._lock:
            for stale in [name for name, held in self._tickets.items() if held.expires < now]:
                del self._tickets[stale]
            self._tickets[ticket] = _Ticket(username, now + TICKET_SECONDS)
        return ticket

    def redeem(self, ticket: str) -> str | None:
        """The username the ticket was issued for, once; None when unknown, spent or expired."""
        with self._lock:
            held = self._tickets.get(ticket)
            if held is None or held.redeemed or held.expires < time.monotonic():
                return None
            held.redeemed = True
            return held.username

    def shown(self, ticket: str) -> bool:
        """Should the page still show this ticket's image? Until it expires, redeemed or not.

        Hiding it as soon as it is redeemed let a rerun that lands between the server's answer and the
        browser's reading of it remove the image mid-request; a second request for it only gets a 404.
        """
        with self._lock:
            held = self._tickets.get(ticket)
            return held is not None and held.expires >= time.monotonic()

    def refusal(self, ticket: str) -> str:
        """Why :meth:`redeem` refused ``ticket``, for the host's log (never a username)."""
        with self._lock:
            held = self._tickets.get(ticket)
            if held is None:
                return "unknown (another process, or expired long ago)"
            return "already redeemed" if held.redeemed else "expired"


TICKETS = TicketBook()


def set_cookie_header(value: str, *, secure: bool) -> str:
    """``Set-Cookie`` for the login cookie: HttpOnly, SameSite=Lax, the cookie's lifetime; Secure over HTTPS."""
    parts = [f"{COOKIE_NAME}={value}", "Path=/", f"Max-Age={int(COOKIE_EXPIRY_DAYS * 86400)}", "HttpOnly",
             "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def clear_cookie_header(*, secure: bool) -> str:
    """``Set-Cookie`` that removes the login cookie."""
    parts = [f"{COOKIE_NAME}=", "Path=/", "Max-Age=0", "HttpOnly", "SameSite=Lax"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def pixel(path: str) -> str:
    """An invisible image whose request makes the browser store (or drop) the cookie."""
    return (f'<img src="{html.escape(path)}" alt="" width="1" height="1" '
            'style="position:absolute;width:1px;height:1px;opacity:0;pointer-events:none">')


class HostCookies:
    """Stands in for extra-streamlit-components' ``CookieManager`` inside streamlit-authenticator.

    The authenticator reads its cookie from the request (``st.context.cookies``) and, with a lifetime of 0,
    never writes one; the host sets and clears the login cookie (above). Its cookie manager was a custom
    component drawn by every run whose only effect was a rerun when its frame loaded: that rerun raced the
    click on "Log in" (the click was lost) and, most likely, a link's page (a link to Jobs opened the
    Dashboard). Decision 0063.
    """

    def get(self, cookie: str) -> str | None:
        """The cookie as the browser sent it with this session's request (HttpOnly ones included)."""
        import streamlit as st

        value = st.context.cookies.get(cookie)
        return None if value is None else str(value)

    def set(self, cookie: str, val: object, **options: object) -> None:
        """Nothing: the host sets the login cookie (an HttpOnly ``Set-Cookie``, see :data:`SET_PATH`)."""

    def delete(self, cookie: str, key: str = "delete") -> None:
        """Nothing: the host clears the login cookie (:data:`CLEAR_PATH`)."""


def use_host_cookies() -> None:
    """Make streamlit-authenticator use :class:`HostCookies`; called by the frame before it builds the
    authenticator (imported here, not at module level: the host imports this module before any script run)."""
    from types import SimpleNamespace

    from streamlit_authenticator.models import cookie_model

    cookie_model.stx = SimpleNamespace(CookieManager=HostCookies)  # type: ignore[attr-defined]
