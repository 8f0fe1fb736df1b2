"""An aiosmtpd sink for the tests of outbound mail: it keeps every message it is sent, parsed
(the ``sink`` fixture of tests/conftest.py starts one on a free port)."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any


class Sink:
    """Keeps every message it is sent: (envelope sender, envelope recipients, the parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"
