"""Email-to-case rules, pure: which tenant a message is for, which case it continues, whether it
was written by a machine, and its text (decision 0031).

- *Tenant*: the recipient's local part ``support+<tenant-slug>`` (any domain): :func:`tenant_slug`.
- *Case*: a tag ``[#CASE-<id>]`` in the subject (:func:`case_tag`, :func:`tagged_subject`), else
  one of the ids in In-Reply-To/References that we stored (:func:`thread_ids`).
- *Machine mail* is never turned into a case (:func:`automatic_reason`): ``Auto-Submitted`` other
  than ``no``, ``Precedence: bulk/junk/list``, ``X-Autoreply``/``X-Autorespond``, a
  ``List-Id``, a mailer-daemon/postmaster sender or an empty return path, our own Message-IDs.
- *Queue*: a tenant's route names a receiving address (``billing@acme.example``) or a mailbox at any
  domain (``billing@``, plus-tag ignored); the To/Cc addresses the customer wrote to are tried before
  the envelope's recipients (:func:`route_key`, :func:`routed_team`).
- *Text*: text/plain preferred; an HTML-only message is turned into text (:func:`html_to_text`),
  never stored as HTML.
- *IMAP mailbox* (decision 0052): read over TLS (implicit, or STARTTLS); in clear only from a server on
  this machine (:func:`imap_security_problem`), so a password never crosses a network unencrypted.
"""

from __future__ import annotations

import ipaddress
import re
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from html.parser import HTMLParser

from crm_core.rules.contact_details import normalise_email
from crm_core.rules.fields import strip_hidden

INBOUND_LOCAL_PART = "support"
MAX_MESSAGE_BYTES = 1_000_000  # SMTP SIZE limit of the listener; larger mail gets 552
OUR_MESSAGE_ID_DOMAIN = "kestrel-crm.invalid"  # the right-hand side of the Message-IDs we send

_TAG = re.compile(r"\[#CASE-(\d{1,12})\]", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,240}>")
_MACHINE_SENDERS = ("mailer-daemon", "postmaster", "noreply", "no-reply")
_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list"})


IMAP_SECURITY = ("tls", "starttls", "none")
"""How a mailbox is reached: TLS from the first byte (port 993), STARTTLS (143), or in clear (this machine)."""


def is_loopback_host(host: str) -> bool:
    """Is ``host`` this machine (``localhost``, 127.0.0.0/8, ``::1``)? Names are not resolved."""
    name = host.strip().lower().rstrip(".")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def imap_security_problem(host: str, security: str) -> str | None:
    """Why ``security`` is refused for a mailbox at ``host`` (a catalog key), or None."""
    if security not in IMAP_SECURITY:
        return "validation.choice"
    if security == "none" and not is_loopback_host(host):
        return "mail.inbox.tls_required"
    return None


def tenant_slug(address: str) -> str | None:
    """The tenant slug of an inbound address ``support+<slug>@…``; None for any other address."""
    address = normalise_email(parseaddr(address)[1]) or ""
    local, at, _domain = address.rpartition("@")
    if not at:
        return None
    base, plus, slug = local.partition("+")
    if base != INBOUND_LOCAL_PART or not plus or not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,63}", slug):
        return None
    return slug


def route_key(address: str) -> str | None:
    """The stored form of a route's address: ``local@domain`` or ``local@`` (any domain), normalised;
    None when it is neither (no ``@``, spaces, several ``@``)."""
    cleaned = normalise_email(address) or ""
    local, at, domain = cleaned.partition("@")
    if not at or not local or "@" in domain or not re.fullmatch(r"[^\s<>\"(),;:]+", local + domain):
        return None
    if domain and not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
        return None
    return f"{local}@{domain}"


def routed_team(addresses: list[str], routes: dict[str, int]) -> int | None:
    """The team of the first of ``addresses`` (in order) that a route names: the exact address first, then its
    mailbox at any domain (``support+acme@x`` is mailbox ``support``); None when no route matches."""
    for address in addresses:
        cleaned = normalise_email(parseaddr(address)[1]) or ""
        local, at, domain = cleaned.rpartition("@")
        if not at or not local:
            continue
        for key in (f"{local}@{domain}", f"{local.partition('+')[0]}@{domain}", f"{local}@",
                    f"{local.partition('+')[0]}@"):
            if key in routes:
                return routes[key]
    return None


def receiving_addresses(message: EmailMessage, recipients: list[str]) -> list[str]:
    """Where the message was sent, in routing order: the To and Cc addresses, then the envelope's recipients."""
    written = [address for _name, address in getaddresses(
        [str(value) for name in ("To", "Cc") for value in message.get_all(name, [])]) if address]
    return written + list(recipients)


def case_tag(subject: str) -> int | None:
    """The case id of a ``[#CASE-<id>]`` tag in ``subject`` (the first one), or None."""
    found = _TAG.search(subject or "")
    return int(found.group(1)) if found else None


def tagged_subject(case_id: int, subject: str) -> str:
    """``subject`` with the case's tag (added once), for a reply that threads back."""
    if case_tag(subject) == case_id:
        return subject
    return f"[#CASE-{case_id}] {subject}".strip()


def thread_ids(in_reply_to: str | None, references: str | None) -> list[str]:
    """The Message-IDs a message answers, the closest first (In-Reply-To, then References last to first)."""
    ids = _MESSAGE_ID.findall(in_reply_to or "")
    ids += reversed(_MESSAGE_ID.findall(references or ""))
    seen: list[str] = []
    for message_id in ids:
        if message_id not in seen:
            seen.append(message_id)
    return seen


def is_our_message_id(message_id: str | None) -> bool:
    """Was ``message_id`` made by us (an outbound reply coming back in a loop)?"""
    return bool(message_id) and (message_id or "").strip().lower().endswith(f"@{OUR_MESSAGE_ID_DOMAIN}>")


def automatic_reason(message: EmailMessage, envelope_from: str | None = None) -> str | None:
    """Why ``message`` was written by a machine (an auto-reply, a bounce, a list, our own), or None."""
    auto_submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    if auto_submitted and auto_submitted != "no":
        return "auto-submitted"
    if str(message.get("Precedence", "")).strip().lower() in _BULK_PRECEDENCE:
        return "precedence"
    if message.get("X-Autoreply") is not None or message.get("X-Autorespond") is not None:
        return "autoreply-header"
    if message.get("List-Id") is not None:
        return "mailing-list"
    if envelope_from is not None and envelope_from.strip() in ("", "<>"):
        return "empty-return-path"
    sender = normalise_email(parseaddr(str(message.get("From", "")))[1]) or ""
    if sender.partition("@")[0] in _MACHINE_SENDERS:
        return "machine-sender"
    if is_our_message_id(str(message.get("Message-ID", ""))):
        return "our-own-message"
    return None


def sender_address(message: EmailMessage) -> str | None:
    """The normalised address of the From header (one address), or None when missing or malformed."""
    addresses = getaddresses([str(message.get("From", ""))])
    if len(addresses) != 1:
        return None
    address = normalise_email(addresses[0][1])
    if not address or address.count("@") != 1 or not all(address.partition("@")[::2]):
        return None
    return address


class _TextOfHtml(HTMLParser):
    """Collects the readable text of an HTML body: tags dropped, scripts and styles skipped, blocks on new lines."""

    _BLOCKS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre"})
    _SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED and self._skipping:
            self._skipping -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """The text a reader sees in ``markup`` (no tags, entities decoded by the parser, blank lines collapsed)."""
    parser = _TextOfHtml()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def body_text(message: EmailMessage) -> str:
    """The message's text: its text/plain part, else its HTML part as text; '' when it has neither.

    Hidden characters (NUL, controls, direction overrides) are dropped: a stranger's mail cannot be sent
    back to be fixed, and PostgreSQL stores no NUL."""
    part = message.get_body(preferencelist=("plain",))
    if part is not None:
        return strip_hidden(str(part.get_content()).replace("\r\n", "\n")).strip()
    part = message.get_body(preferencelist=("html",))
    if part is not None:
        return strip_hidden(html_to_text(str(part.get_content())))
    return ""
