"""An aiosmtpd sink for the tests of outbound mail: it keeps every message it is sent, parsed (the
``sink`` fixture of tests/conftest.py and the service-day e2e start one on a free port)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller

from tests.hosting import free_port


class Sink:
    """Keeps every message it is sent as (envelope sender, envelope recipients, parsed message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 OK"

    def wait_for(self, count: int, *, timeout: float = 60.0) -> list[EmailMessage]:
        """The first ``count`` messages, once that many have arrived (polled; fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} messages arrived in {timeout:g} s"
            time.sleep(0.1)  # poll the sink again
        return [message for _, _, message in self.messages[:count]]


@contextmanager
def running_sink() -> Iterator[tuple[Sink, int]]:
    """A sink listening on a free local port: (the sink, its port)."""
    keeper = Sink()
    port = free_port()
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield keeper, port
    finally:
        controller.stop()
