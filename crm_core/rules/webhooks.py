"""Pure webhook rules: the event types, which change makes which event, the retry schedule,
when an endpoint is disabled, and which targets are acceptable.

Retry schedule (Standard Webhooks' and Svix's): the delay before each attempt, counted from
the previous failure::

    attempt   1    2    3      4       5    6    7     8
    delay     0 s  5 s  5 min  30 min  2 h  5 h  10 h  10 h

After the 8th failure the delivery has failed for good (about 27.6 hours after the first).
An endpoint that has failed without a single success for 5 days is disabled.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

RETRY_DELAYS: tuple[dt.timedelta, ...] = tuple(
    dt.timedelta(seconds=seconds) for seconds in (0, 5, 5 * 60, 30 * 60, 2 * 3600, 5 * 3600, 10 * 3600, 10 * 3600)
)
DISABLE_AFTER = dt.timedelta(days=5)
SECRET_GRACE = dt.timedelta(hours=24)  # the old secret still signs this long after a rotation
URL_MAX = 2000

EVENT_TYPES: tuple[str, ...] = (
    "customer.created", "customer.updated", "customer.archived",
    "contact.created", "contact.updated", "contact.archived", "contact.deleted",
    "deal.created", "deal.stage_changed", "deal.won", "deal.lost",
    "order.created",
    "task.completed",
    "case.created", "case.updated",
    "import.finished",
    "lifecycle.changed",
)
PING = "webhook.ping"  # the test event an admin sends by hand; no subscription needs to list it

# audit entity name -> the public object name in payloads
OBJECT_NAMES = {
    "customer": "customer", "contact": "contact", "opportunity": "deal", "order": "order",
    "task": "task", "case": "case", "import_run": "import",
}
FINISHED_IMPORT_STATUSES = frozenset({"imported", "partial", "rejected", "failed", "reverted"})
DONE_TASK_STATUSES = frozenset({"done"})


def next_attempt_at(failed_attempts: int, now: dt.datetime) -> dt.datetime | None:
    """When to try again after ``failed_attempts`` failures (None: the delivery has failed for good)."""
    if failed_attempts < 0:
        raise ValueError("failed_attempts must be >= 0")
    if failed_attempts >= len(RETRY_DELAYS):
        return None
    return now + RETRY_DELAYS[failed_attempts]


def should_disable(failing_since: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether an endpoint failing since ``failing_since`` (no success since) is disabled now."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER


def is_success(status_code: int | None) -> bool:
    """A 2xx answer is a delivery; anything else (or no answer) is a failure to retry."""
    return status_code is not None and 200 <= status_code < 300


def event_types_for(
    entity: str, action: str, changes: Mapping[str, Any], *, stage_kind: str | None = None
) -> list[str]:
    """The event types one audited change makes (``stage_kind``: the kind of a deal's new stage).

    ================  ===========================================================
    entity            events
    ================  ===========================================================
    customer          created; updated (and lifecycle.changed when the stage moved); archived
    contact           created, updated, archived, deleted
    opportunity       deal.created; deal.stage_changed on a stage move, plus deal.won or
                      deal.lost when the new stage is a won or lost one
    order             order.created
    task              task.completed when its status becomes done
    case              created, updated
    import_run        import.finished when its status becomes a final one
    ================  ===========================================================
    """
    changed = {key for key in changes if not key.startswith("_")}
    if entity == "customer":
        if action == "create":
            return ["customer.created"]
        if action == "archive":
            return ["customer.archived"]
        if action in ("update", "restore") and changed:
            events = ["customer.updated"]
            if "lifecycle_stage" in changed:
                events.append("lifecycle.changed")
            return events
    elif entity == "contact" and action in ("create", "update", "archive", "delete"):
        if action == "update" and not changed:
            return []
        suffix = {"create": "created", "update": "updated", "archive": "archived", "delete": "deleted"}[action]
        return [f"contact.{suffix}"]
    elif entity == "opportunity":
        if action == "create":
            return ["deal.created"]
        if "stage_id" in changed:
            events = ["deal.stage_changed"]
            if stage_kind in ("won", "lost"):
                events.append(f"deal.{stage_kind}")
            return events
    elif entity == "order" and action == "create":
        return ["order.created"]
    elif entity == "task" and action in ("create", "update"):
        status = changes.get("status")
        if status is not None and status[1] in DONE_TASK_STATUSES:
            return ["task.completed"]
    elif entity == "case":
        if action == "create":
            return ["case.created"]
        if action in ("update", "archive", "restore") and changed:
            return ["case.updated"]
    elif entity == "import_run":
        status = changes.get("status")
        if status is not None and status[1] in FINISHED_IMPORT_STATUSES:
            return ["import.finished"]
    return []


def wants(subscribed: Iterable[str], event_type: str) -> bool:
    """Whether a subscription to ``subscribed`` receives ``event_type`` (``contact.*`` covers contact.created …)."""
    for pattern in subscribed:
        if pattern == event_type or (pattern.endswith(".*") and event_type.startswith(pattern[:-1])):
            return True
    return False


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a webhook target (a catalog key), or None; addresses are judged when sending."""
    url = url.strip()
    if not url:
        return "webhooks.error.url_required"
    if len(url) > URL_MAX:
        return "webhooks.error.url_too_long"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "webhooks.error.url_invalid"
    if parts.scheme not in ("http", "https"):
        return "webhooks.error.url_scheme"
    if not parts.hostname or port == 0:
        return "webhooks.error.url_invalid"
    if parts.username or parts.password:
        return "webhooks.error.url_credentials"
    if any(character.isspace() for character in url):
        return "webhooks.error.url_invalid"
    return None


def is_private_address(address: str) -> bool:
    """Loopback, private (RFC 1918, ULA), link-local, unspecified, multicast or reserved: not the internet."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast
        or ip.is_reserved or not ip.is_global
    )


def valid_event_types(chosen: Iterable[str]) -> list[str]:
    """The subset of ``chosen`` that names known event types (or ``<object>.*``)."""
    objects = {name.split(".", 1)[0] for name in EVENT_TYPES}
    return [name for name in chosen if name in EVENT_TYPES or (name.endswith(".*") and name[:-2] in objects)]
