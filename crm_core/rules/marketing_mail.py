"""Marketing email, pure (decision 0048): the message a queued row becomes (headers, footer, tracked links,
the HTML twin that carries the open pixel), the signature of click links, and the reading of a delivery
status notification (RFC 3464) that says one of our messages bounced.

- **Links.** ``/m/u/<token>`` unsubscribe (GET a page, POST RFC 8058's one click), ``/m/p/<token>`` the
  preference page, ``/m/o/<token>.gif`` the open pixel, ``/m/c/<token>?u=<url>&s=<sig>`` the click
  redirect: ``sig`` is an HMAC-SHA256 of the token and the URL under the host's link key, so the
  redirect only leads where our own email pointed (no open redirect).
- **Body.** The template's text as rendered when queued, then a footer with the sender's identity, postal
  address and the way out (Advertising Law art. 43, CAN-SPAM). Without tracking the email is one
  text/plain part. With tracking it is multipart/alternative: the same text with its links rewritten,
  and an HTML part that is that text escaped (links clickable, line breaks kept) plus the 1x1 pixel —
  a plain-text email cannot carry a pixel, and the HTML part adds nothing the text does not say.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import HeaderParser
from email.utils import format_datetime, formataddr
from html import escape
from urllib.parse import quote

UNSUBSCRIBE_PATH = "/m/u/"
PREFERENCES_PATH = "/m/p/"
OPEN_PATH = "/m/o/"
CLICK_PATH = "/m/c/"
MARKETING_ID_PREFIX = "<mkt-"

# a link runs over printable ASCII: in Chinese text it ends at the first Chinese character or full-width sign
_LINK = re.compile(r"https?://[!#-&(-;=?-~]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}。，；：！？"


@dataclass(frozen=True)
class Links:
    """The person's links of one message (``base`` is the host's public address, no trailing slash)."""

    base: str
    token: str

    @property
    def unsubscribe(self) -> str:
        return f"{self.base}{UNSUBSCRIBE_PATH}{self.token}"

    @property
    def preferences(self) -> str:
        return f"{self.base}{PREFERENCES_PATH}{self.token}"

    @property
    def pixel(self) -> str:
        return f"{self.base}{OPEN_PATH}{self.token}.gif"

    def click(self, url: str, key: str) -> str:
        return f"{self.base}{CLICK_PATH}{self.token}?u={quote(url, safe='')}&s={click_signature(key, self.token, url)}"


def click_signature(key: str, token: str, url: str) -> str:
    """The signature of a click link: HMAC-SHA256(key, token NUL url), hex, 32 characters."""
    digest = hmac.new(key.encode(), f"{token}\0{url}".encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def signature_matches(key: str, token: str, url: str, signature: str) -> bool:
    """Does ``signature`` sign ``url`` for ``token`` (compared in constant time)?"""
    return hmac.compare_digest(click_signature(key, token, url), signature or "")


def preference_form_key(key: str, token: str) -> str:
    """The hidden value the preference form carries: bound to the message's token and the host's key."""
    return hmac.new(key.encode(), f"preferences\0{token}".encode(), hashlib.sha256).hexdigest()[:32]


def _split_link(found: str) -> tuple[str, str]:
    """A link found in text and the punctuation after it that belongs to the sentence."""
    url = found.rstrip(_TRAILING)
    return url, found[len(url):]


def track_links(text: str, links: Links, key: str) -> str:
    """``text`` with every http(s) link but the person's own (unsubscribe, preferences) made a click link."""
    own = (f"{links.base}{UNSUBSCRIBE_PATH}", f"{links.base}{PREFERENCES_PATH}")

    def replace(match: re.Match[str]) -> str:
        url, tail = _split_link(match.group(0))
        if not url or url.startswith(own):
            return match.group(0)
        return links.click(url, key) + tail

    return _LINK.sub(replace, text)


def text_as_html(text: str, pixel: str | None, language: str) -> str:
    """The HTML twin of a text email: escaped, links clickable, line breaks kept, the pixel at the end."""
    parts: list[str] = []
    last = 0
    for match in _LINK.finditer(text):
        url, tail = _split_link(match.group(0))
        parts.append(escape(text[last:match.start()]))
        parts.append(f'<a href="{escape(url, quote=True)}">{escape(url)}</a>{escape(tail)}')
        last = match.end()
    parts.append(escape(text[last:]))
    body = "".join(parts).replace("\r\n", "\n").replace("\n", "<br>\n")
    image = f'<img src="{escape(pixel, quote=True)}" width="1" height="1" alt="">' if pixel else ""
    lang = "zh-CN" if language == "zh-CN" else "en"
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"></head>'
            f'<body><div style="white-space:normal;font-family:sans-serif">{body}</div>{image}</body></html>')


@dataclass(frozen=True)
class Outgoing:
    """What one queued row becomes: everything the email needs besides the row's own fields."""

    to_address: str
    from_address: str
    sender_name: str
    subject: str
    body: str  # the rendered body, footer included
    message_id: str
    language: str
    links: Links
    tracking: bool
    reply_to: str | None = None


def footer(language: str, *, sender_name: str, sender_address: str, postal_address: str, links: Links,
           texts: dict[str, str]) -> str:
    """The footer every marketing email carries: who sends it, from where, and the way out. ``texts`` are the
    translated labels (``sent_by``, ``unsubscribe``, ``preferences``) in ``language``."""
    identity = " · ".join(part for part in (sender_name.strip(), sender_address.strip()) if part)
    lines = ["", "-- ", texts["sent_by"].format(sender=identity)]
    if postal_address.strip():
        lines.append(" ".join(postal_address.split()))
    lines.append(texts["unsubscribe"].format(link=links.unsubscribe))
    lines.append(texts["preferences"].format(link=links.preferences))
    return "\n".join(lines)


def _header(value: str) -> str:
    """A header value as it goes on the wire: ASCII as is, anything else RFC 2047-encoded (UTF-8)."""
    return value if value.isascii() else Header(value, "utf-8").encode()


def build_message(outgoing: Outgoing, *, link_key: str, now: dt.datetime) -> Message:
    """The email of one marketing message: RFC 8058 headers, our fixed Message-ID; text only, or text and its
    HTML twin with tracked links and the pixel when tracking is on. Built with the compat32 MIME classes: the
    sender makes hundreds a second, and the header registry of ``policy.default`` costs ten times more."""
    text = outgoing.body
    if outgoing.tracking:
        text = track_links(text, outgoing.links, link_key)
    plain = MIMEText(text, "plain", "utf-8")
    email: Message
    if outgoing.tracking:
        email = MIMEMultipart("alternative")
        email.attach(plain)
        email.attach(MIMEText(text_as_html(text, outgoing.links.pixel, outgoing.language), "html", "utf-8"))
    else:
        email = plain
    email["From"] = formataddr((outgoing.sender_name, outgoing.from_address)) if outgoing.sender_name \
        else outgoing.from_address
    email["To"] = outgoing.to_address
    email["Subject"] = _header(outgoing.subject)
    email["Message-ID"] = outgoing.message_id
    email["Date"] = format_datetime(now.replace(tzinfo=dt.UTC))
    if outgoing.reply_to:
        email["Reply-To"] = outgoing.reply_to
    email["List-Unsubscribe"] = f"<{outgoing.links.unsubscribe}>"
    email["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return email


def is_marketing_message_id(message_id: str) -> bool:
    return message_id.strip().lower().startswith(MARKETING_ID_PREFIX)


@dataclass(frozen=True)
class Bounce:
    """A delivery status notification about one of our messages: its Message-ID, the recipient, the
    status (``5.1.1``) and whether it is permanent (a 5.x.x status)."""

    message_id: str
    recipient: str
    status: str
    permanent: bool


def is_delivery_report(message: Message) -> bool:
    """Is ``message`` a DSN (multipart/report; report-type=delivery-status)?"""
    return (message.get_content_type() == "multipart/report"
            and str(message.get_param("report-type", "", header="content-type")).lower() == "delivery-status")


_STATUS = re.compile(r"^[245]\.\d{1,3}\.\d{1,3}$")
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,240}>")


def _fields(part: Message) -> list[Message]:
    """The field groups of a message/delivery-status part (per-message, then one per recipient)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    return [HeaderParser().parsestr(block + "\n") for block in re.split(r"\r?\n\r?\n", text.strip()) if block]


def _original_message_id(part: Message) -> str | None:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        value = str(inner.get("Message-ID", "")) if isinstance(inner, Message) else ""
    else:  # text/rfc822-headers
        raw = part.get_payload(decode=True)
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(part.get_payload())
        value = str(HeaderParser().parsestr(text).get("Message-ID", ""))
    found = _MESSAGE_ID.search(value)
    return found.group(0) if found else None


def read_bounce(message: Message) -> Bounce | None:
    """The failed delivery a DSN reports (None: not a DSN, not a failure, or no original Message-ID)."""
    if not is_delivery_report(message):
        return None
    status = recipient = ""
    message_id: str | None = None
    failed = False
    for part in message.walk():
        kind = part.get_content_type()
        if kind in ("message/delivery-status", "message/global-delivery-status"):
            for group in _fields(part):
                action = str(group.get("Action", "")).strip().lower()
                if action == "failed":
                    failed = True
                    code = str(group.get("Status", "")).strip().split(" ")[0]
                    status = code if _STATUS.match(code) else status or "5.0.0"
                    recipient = str(group.get("Final-Recipient", "") or group.get("Original-Recipient", ""))
                    recipient = recipient.partition(";")[2].strip() or recipient.strip()
                    break
        elif kind in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers") and message_id is None:
            message_id = _original_message_id(part)
    if not failed or message_id is None:
        return None
    return Bounce(message_id=message_id, recipient=recipient.lower(), status=status or "5.0.0",
                  permanent=(status or "5").startswith("5"))
