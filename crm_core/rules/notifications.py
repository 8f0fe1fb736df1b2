"""Pure rules of the notification centre: the kinds, @mentions in a note, and the group-robot messages.

Kinds (catalog key ``notifications.kind.<kind>``, its values in the notification's ``params``):

=================  ==========================================  ===============================
kind               when                                        who
=================  ==========================================  ===============================
task_assigned      a task is given to someone by someone else  the assignee
task_due           the daily sweep: an open task due today     the assignee
task_overdue       the daily sweep: an open task past due      the assignee (once per task)
pool_return        a customer returns to the pool soon         its owner
access_requested   a rep asks for a customer (撞单)            its owner and the team's manager
access_approved    the request was approved (ownership moved)  the requester
access_declined    the request was declined                    the requester
mention            ``@name`` in an activity note               each user named
sla_warning        the SLA sweep: a clock reached its warning  the case's assignee
sla_breach         the SLA sweep: a clock passed its due time  the team lead (the team's manager)
sla_escalated      a breach not handled within the policy's    the tenant's managers
                   delay
case_assigned      a case is given to someone (by someone      the assignee
                   else, or by its queue: a form, a mail)
sla_reassigned     the SLA sweep handed a breached case on     the new assignee
                   (the policy's reassign option)
=================  ==========================================  ===============================

A sweep that would tell one person about many cases of one SLA kind at once writes one notice with their
number instead (``params`` ``{"count": n}``, entity ``case_queue``, catalog key
``notifications.kind_many.<kind>``: :func:`message_key`; decision 0037).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any

KINDS: tuple[str, ...] = (
    "task_assigned", "task_due", "task_overdue", "pool_return", "access_requested", "access_approved",
    "access_declined", "mention", "sla_warning", "sla_breach", "sla_escalated", "case_assigned",
    "sla_reassigned",
)

DIGEST_KINDS: tuple[str, ...] = ("sla_warning", "sla_breach", "sla_escalated")


def message_key(kind: str, params: Mapping[str, Any]) -> str:
    """The catalog key of a notification's message: its kind's, or its kind's digest of ``count`` cases."""
    if kind in DIGEST_KINDS and "count" in params and "case" not in params:
        return f"notifications.kind_many.{kind}"
    return f"notifications.kind.{kind}"


# "@" not preceded by a word character (an email's "name@host" is no mention), then a handle:
# letters (CJK too), digits, "_", "." and "-" — a username, or a full name written without spaces
_MENTION = re.compile(r"(?<![\w@])@([\w][\w.\-]{0,63})")
MENTIONS_MAX = 20  # users told per note, at most


def mention_handle(name: str) -> str:
    """How ``name`` (a username or a full name) is written after ``@``: lower case, without spaces."""
    return "".join(name.split()).lower()


def parse_mentions(text: str) -> list[str]:
    """The handles ``@name`` in ``text``, lower case, in order of appearance, each once (at most ``MENTIONS_MAX``)."""
    handles: list[str] = []
    for match in _MENTION.finditer(text or ""):
        handle = match.group(1).rstrip(".-").lower()
        if handle and handle not in handles:
            handles.append(handle)
    return handles[:MENTIONS_MAX]


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """``url`` with DingTalk's ``timestamp`` and ``sign``: base64(HMAC-SHA256(secret, f"{timestamp}\\n{secret}")),
    URL-encoded, as DingTalk's custom-robot documentation gives it."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={sign}"


def robot_body(text: str) -> str:
    """The JSON body of a plain text message; WeCom and DingTalk group robots read the same shape."""
    return json.dumps({"msgtype": "text", "text": {"content": text}}, ensure_ascii=False)


def robot_accepted(status_code: int | None, body: str) -> bool:
    """Both robots answer 200 with ``{"errcode": 0, …}``; another errcode (a bad key, a wrong signature,
    a rate limit) is a failure although the status is 200."""
    if status_code is None or not 200 <= status_code < 300:
        return False
    try:
        answer = json.loads(body)
    except ValueError:
        return False
    return isinstance(answer, dict) and answer.get("errcode") == 0
