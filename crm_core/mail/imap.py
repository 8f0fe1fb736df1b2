"""Email-to-case from a mailbox: the ``mail_fetch`` job reads a tenant's support mailbox by IMAP (the
standard library's ``imaplib``) and files each new message as the SMTP listener does
(:func:`crm_core.mail.inbound.receive_message`, with the mailbox's tenant).

New means a UID above the last one filed in the folder's UIDVALIDITY (``mail_inboxes.last_uid``): the
job never depends on flags a person reading the mailbox may change, and a folder whose UIDVALIDITY
changed is read again from the start (a Message-ID filed once is not filed twice). Each message is read
with ``BODY.PEEK[]``; one filed (or dropped as a machine's) is then flagged ``\\Seen``, one refused (an
unknown sender, malformed, over the size limit: read from ``RFC822.SIZE`` before the body) is logged with
its reason and left unseen for a person — nobody can be answered with an SMTP error here. A failure to
file (the database) stops the run before that message, which the next run tries again. At most
:data:`BATCH` messages a run; the tenant's every-minute schedule reads the rest. The connection is TLS
(implicit or STARTTLS, certificates verified) or in clear to this machine only
(:func:`crm_core.rules.mail.imap_security_problem`). Decision 0052.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from crm_core.db import Database
from crm_core.errors import MailFetchFailed
from crm_core.jobs.context import JobContext, job_kind
from crm_core.mail.credentials import SecretKeyProblem, decrypt_secret
from crm_core.mail.inbound import MailRefused, receive_message
from crm_core.models import Role, utcnow
from crm_core.models.jobs import JobSchedule
from crm_core.models.mail import MailInbox
from crm_core.rules.contact_details import is_valid_email, normalise_email
from crm_core.rules.mail import MAX_MESSAGE_BYTES

LOG = logging.getLogger("kestrel.mail")
KIND = "mail_fetch"
SCHEDULE = ("*", "*", "*")  # every minute, UTC, while the mailbox is enabled
BATCH = 200
TIMEOUT_SECONDS = 30
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class Mailbox:
    """How to reach a tenant's mailbox, the password decrypted."""

    host: str
    port: int
    security: str
    username: str
    password: str
    folder: str


@dataclass(frozen=True)
class FetchResult:
    """What one run did: messages filed (new cases and answers), dropped (machine mail), duplicates, refused."""

    filed: int = 0
    dropped: int = 0
    duplicates: int = 0
    refused: int = 0
    last_uid: int = 0

    def as_dict(self) -> dict[str, int]:
        """The job's result."""
        return {"filed": self.filed, "dropped": self.dropped, "duplicates": self.duplicates, "refused": self.refused,
                "last_uid": self.last_uid}


def connect(mailbox: Mailbox) -> imaplib.IMAP4:
    """A logged-in connection to ``mailbox`` (TLS verified against the system's certificate authorities)."""
    context = ssl.create_default_context()
    client: imaplib.IMAP4
    if mailbox.security == "tls":
        client = imaplib.IMAP4_SSL(mailbox.host, mailbox.port, ssl_context=context, timeout=TIMEOUT_SECONDS)
    else:
        client = imaplib.IMAP4(mailbox.host, mailbox.port, timeout=TIMEOUT_SECONDS)
        if mailbox.security == "starttls":
            client.starttls(ssl_context=context)
    try:
        client.login(mailbox.username, mailbox.password)
    except BaseException:
        client.shutdown()
        raise
    return client


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _checked(answer: tuple[str, list[Any]], what: str) -> list[Any]:
    kind, data = answer
    if kind != "OK":
        raise imaplib.IMAP4.error(f"{what}: {kind} {data!r}"[:300])
    return data


def _message_bytes(data: list[Any]) -> bytes | None:
    for part in data:
        if isinstance(part, tuple) and len(part) == 2 and isinstance(part[1], bytes):
            return part[1]
    return None


def _record(db: Database, inbox_id: int, **values: Any) -> None:
    """The job's own columns of the mailbox row, without moving its version (an open form stays current)."""
    with db.system_transaction("mail: inbox state") as session:
        session.execute(update(MailInbox).where(MailInbox.id == inbox_id).values(**values)
                        .execution_options(synchronize_session=False))


def fetch_inbox(db: Database, tenant_id: int, *, limit: int = BATCH) -> FetchResult | None:
    """File the new messages of the tenant's mailbox (None when it has none enabled); raises MailFetchFailed
    with the server's or the connection's words, also kept on the mailbox row for the Mail page."""
    with db.system_session("mail: inbox") as session:
        row = session.scalar(select(MailInbox).where(MailInbox.tenant_id == tenant_id, MailInbox.enabled.is_(True)))
        if row is None:
            return None
        inbox_id, known_validity, last_uid = row.id, row.uid_validity, row.last_uid
        settings = (row.host, row.port, row.security, row.username, row.password_encrypted, row.folder)
    host, port, security, username, token, folder = settings
    try:
        password = decrypt_secret(token) if token else ""
    except (SecretKeyProblem, ValueError) as error:
        problem = f"the mailbox password cannot be decrypted: {error}"
        _record(db, inbox_id, checked_at=utcnow(), last_error=problem[:500])
        raise MailFetchFailed(error=problem) from None
    mailbox = Mailbox(host, port, security, username, password, folder)
    recipients = [address] if (address := normalise_email(username)) and is_valid_email(address) else []
    counts = {"filed": 0, "dropped": 0, "duplicates": 0, "refused": 0}
    try:
        client = connect(mailbox)
        try:
            _checked(client.select(_quoted(folder)), "SELECT")
            _name, said = client.response("UIDVALIDITY")  # the untagged answer of the SELECT
            if not said or said[0] is None:
                raise imaplib.IMAP4.error("SELECT: the server named no UIDVALIDITY")
            validity = int(said[0])
            if validity != known_validity:  # another folder, or the server renumbered it: read it all again
                last_uid = 0
                _record(db, inbox_id, uid_validity=validity, last_uid=0)
            found = _checked(client.uid("SEARCH", f"UID {last_uid + 1}:*"), "SEARCH")
            # "n:*" always names the newest message, even when its UID is below n
            uids = sorted(uid for uid in map(int, (found[0] or b"").split()) if uid > last_uid)[:limit]
            for uid in uids:
                outcome = _file_one(db, client, tenant_id, uid, recipients)
                counts[outcome] += 1
                last_uid = uid
                _record(db, inbox_id, last_uid=uid)
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):  # filed is filed; the next run reconnects
                client.logout()
    except (imaplib.IMAP4.error, OSError, ssl.SSLError, ValueError) as error:
        problem = f"{type(error).__name__}: {error}"[:500]
        LOG.warning("mail fetch of tenant %s failed: %s", tenant_id, problem)
        _record(db, inbox_id, checked_at=utcnow(), last_error=problem)
        raise MailFetchFailed(error=problem) from None
    _record(db, inbox_id, checked_at=utcnow(), last_error=None)
    return FetchResult(**counts, last_uid=last_uid)


def _file_one(db: Database, client: imaplib.IMAP4, tenant_id: int, uid: int, recipients: list[str]) -> str:
    """File message ``uid``; which count it adds to (a failure to file raises, leaving it for the next run)."""
    size_answer = _checked(client.uid("FETCH", str(uid), "(RFC822.SIZE)"), "FETCH SIZE")
    size = _SIZE.search(b" ".join(part if isinstance(part, bytes) else b"" for part in size_answer))
    if size is not None and int(size.group(1)) > MAX_MESSAGE_BYTES:
        LOG.warning("mail fetch refused message %s of tenant %s: oversize: %s bytes", uid, tenant_id, size.group(1))
        return "refused"
    raw = _message_bytes(_checked(client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "FETCH"))
    if raw is None:
        raise imaplib.IMAP4.error(f"FETCH {uid}: no message in the answer")
    try:
        outcome = receive_message(db, raw, recipients, tenant_id=tenant_id)
    except MailRefused as refused:
        LOG.warning("mail fetch refused message %s of tenant %s: %s", uid, tenant_id, refused.reason)
        return "refused"
    _checked(client.uid("STORE", str(uid), "+FLAGS", "(\\Seen)"), "STORE")
    LOG.info("mail fetch %s message %s of tenant %s (case %s)", outcome.action, uid, tenant_id, outcome.case_id)
    if outcome.action == "dropped":
        return "dropped"
    return "duplicates" if outcome.action == "duplicate" else "filed"


def ensure_fetch_schedule(session: Any, tenant_id: int, *, enabled: bool) -> None:
    """Give the tenant its every-minute ``mail_fetch`` schedule while the mailbox is enabled (and pause it when it
    is not), in the admin's transaction that saved the mailbox."""
    schedule = session.scalar(select(JobSchedule).where(JobSchedule.tenant_id == tenant_id, JobSchedule.kind == KIND))
    if schedule is None:
        if enabled:
            minute, hour, day_of_week = SCHEDULE
            session.add(JobSchedule(tenant_id=tenant_id, kind=KIND, params={}, minute=minute, hour=hour,
                                    day_of_week=day_of_week, enabled=True))
    elif schedule.enabled != enabled:
        schedule.enabled = enabled


@job_kind(KIND, roles=frozenset({Role.ADMIN}))
def mail_fetch(ctx: JobContext) -> dict[str, Any]:
    """File the new messages of the tenant's IMAP mailbox; result: filed, dropped, duplicates, refused, last_uid
    (``{"enabled": false}`` when the tenant has no mailbox enabled)."""
    ctx.progress(0, None, "jobs.progress.mail_fetch")
    result = fetch_inbox(ctx.db, ctx.tenant_id)
    return {"enabled": False} if result is None else result.as_dict()
