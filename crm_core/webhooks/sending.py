"""Sign and POST one webhook: Standard Webhooks headers, to an address vetted at send time.

The host is resolved here, every resolved address is judged (private, loopback and
link-local targets are refused unless the tenant allows them), and the connection goes to
the vetted address itself with the original host name in ``Host`` and TLS SNI — so a DNS
answer that changes between the check and the connect (rebinding) cannot redirect the POST.
Redirects are not followed: a 3xx is a failed attempt.
"""

from __future__ import annotations

import datetime as dt
import http.client
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from standardwebhooks.webhooks import Webhook

from crm_core.rules.webhooks import is_private_address

TIMEOUT_SECONDS = 10.0
RESPONSE_KEEP = 2000  # characters of the response body kept in the delivery log
REQUEST_KEEP = 4000  # characters of the request body kept in the delivery log
USER_AGENT = "Kestrel-Webhooks/1"


class TargetRefused(Exception):
    """The target resolves to an address webhooks may not reach (or does not resolve)."""


@dataclass(frozen=True)
class Answer:
    """What one attempt got: the status (None when no answer), the body (truncated), latency, error."""

    status_code: int | None
    body: str
    latency_ms: int
    error: str | None = None


def signature_headers(
    webhook_id: str, body: str, at: dt.datetime, secrets: list[str]
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` (one ``v1,…`` per secret, space-separated)."""
    signatures = " ".join(Webhook(secret).sign(webhook_id, at, body) for secret in secrets)
    timestamp = str(int(at.replace(tzinfo=dt.UTC).timestamp()))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": signatures,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def vetted_addresses(host: str, port: int, *, allow_private: bool) -> list[str]:
    """Every address ``host`` resolves to, all of them acceptable; else :class:`TargetRefused`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        raise TargetRefused(f"cannot resolve {host}: {error}") from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise TargetRefused(f"{host} has no address")
    if not allow_private:
        refused = [address for address in addresses if is_private_address(address)]
        if refused:
            raise TargetRefused(f"{host} resolves to a private address ({refused[0]})")
    return addresses


def post(url: str, body: str, headers: dict[str, str], *, allow_private: bool,
         timeout: float = TIMEOUT_SECONDS) -> Answer:
    """POST ``body`` to ``url`` at a vetted address; never raises for network trouble (the answer says)."""
    started = time.perf_counter()

    def elapsed() -> int:
        return int((time.perf_counter() - started) * 1000)

    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        address = vetted_addresses(host, port, allow_private=allow_private)[0]
    except TargetRefused as refused:
        return Answer(None, "", elapsed(), f"refused: {refused}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        raw = socket.create_connection((address, port), timeout=timeout)
        if parts.scheme == "https":
            raw = ssl.create_default_context().wrap_socket(raw, server_hostname=host)
        connection.sock = raw
        connection.request("POST", path, body=body.encode("utf-8"), headers=headers)
        response = connection.getresponse()
        content = response.read(RESPONSE_KEEP * 4).decode("utf-8", errors="replace")[:RESPONSE_KEEP]
        return Answer(response.status, content, elapsed())
    except (OSError, http.client.HTTPException) as error:
        return Answer(None, "", elapsed(), f"{type(error).__name__}: {error}"[:500])
    finally:
        connection.close()
