"""The inbound SMTP listener (aiosmtpd): each message it receives is filed by
:func:`crm_core.mail.inbound.receive_message`, in a worker thread (the database calls block).

The SMTP reply says what became of it: 250 (filed, or a machine's mail dropped), 550/552 with
the reason for a refusal; every refusal and drop is logged with its reason. The ``SIZE`` limit
(:data:`crm_core.rules.mail.MAX_MESSAGE_BYTES`) is announced in EHLO and enforced by aiosmtpd.
"""

from __future__ import annotations

import asyncio
import logging

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from crm_core.db import Database
from crm_core.mail.inbound import MailRefused, receive_message
from crm_core.rules.mail import MAX_MESSAGE_BYTES, tenant_slug

LOG = logging.getLogger("kestrel.mail")


class CaseMailHandler:
    """aiosmtpd handler: accepts recipients of the form support+<tenant>@…, files each message."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        """Refuse a recipient that names no tenant before the data is sent."""
        if tenant_slug(address) is None:
            LOG.info("mail-in refused recipient %r: not an inbound address", address)
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        """File the message; the reply carries the outcome."""
        raw = envelope.original_content or b""
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            outcome = await asyncio.to_thread(receive_message, self.db, raw, list(envelope.rcpt_tos),
                                              envelope_from=envelope.mail_from)
        except MailRefused as refused:
            LOG.warning("mail-in refused a message from %r: %s", envelope.mail_from, refused.reason)
            return refused.reply
        except Exception:  # a database failure: the sender's server tries again later
            LOG.exception("mail-in failed to file a message from %r", envelope.mail_from)
            return "451 4.3.0 Temporary failure, try again later"
        if outcome.action == "dropped":
            LOG.info("mail-in dropped a message from %r: %s", envelope.mail_from, outcome.reason)
            return "250 OK: not filed (automatic mail)"
        LOG.info("mail-in %s case %s from %r", outcome.action, outcome.case_id, envelope.mail_from)
        return f"250 OK: case {outcome.case_id} {outcome.action}"


def make_controller(db: Database, host: str, port: int) -> Controller:
    """A listener on ``host:port`` (not started); ``start()``/``stop()`` run it in its own thread."""
    return Controller(CaseMailHandler(db), hostname=host, port=port, data_size_limit=MAX_MESSAGE_BYTES,
                      decode_data=False)
