"""Email-to-case header rules and macro rendering, as tables."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from crm_core.rules.macros import render_macro, unknown_variables
from crm_core.rules.mail import (
    automatic_reason,
    body_text,
    case_tag,
    html_to_text,
    imap_security_problem,
    is_our_message_id,
    sender_address,
    tagged_subject,
    tenant_slug,
    thread_ids,
)


def parsed(raw: str) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(raw.encode())
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(("address", "slug"), [
    ("support+acme@mail.example.com", "acme"),
    ("Support Desk <SUPPORT+Acme-2@Example.com>", "acme-2"),
    ("support@example.com", None),
    ("sales+acme@example.com", None),
    ("support+@example.com", None),
    ("support+a b@example.com", None),
    ("support+acme", None),
])
def test_the_inbound_address_names_the_tenant(address: str, slug: str | None) -> None:
    assert tenant_slug(address) == slug


@pytest.mark.parametrize(("subject", "case_id"), [
    ("Re: [#CASE-123] Printer", 123),
    ("[#case-7] x [#CASE-8]", 7),
    ("Case 123", None),
    ("[#CASE-] x", None),
    ("", None),
])
def test_the_case_tag_is_read_from_the_subject(subject: str, case_id: int | None) -> None:
    assert case_tag(subject) == case_id


def test_a_subject_is_tagged_once() -> None:
    assert tagged_subject(5, "Re: Printer") == "[#CASE-5] Re: Printer"
    assert tagged_subject(5, "Re: [#CASE-5] Printer") == "Re: [#CASE-5] Printer"


def test_thread_ids_put_in_reply_to_first_then_references_newest_first() -> None:
    assert thread_ids("<c@x>", "<a@x> <b@x>\r\n <c@x>") == ["<c@x>", "<b@x>", "<a@x>"]
    assert thread_ids(None, None) == []


@pytest.mark.parametrize(("headers", "envelope_from", "reason"), [
    ("Auto-Submitted: auto-replied\n", None, "auto-submitted"),
    ("Auto-Submitted: auto-generated\n", None, "auto-submitted"),
    ("Auto-Submitted: no\n", None, None),
    ("Precedence: bulk\n", None, "precedence"),
    ("Precedence: JUNK\n", None, "precedence"),
    ("Precedence: list\n", None, "precedence"),
    ("Precedence: first-class\n", None, None),
    ("X-Autoreply: yes\n", None, "autoreply-header"),
    ("X-Autorespond: yes\n", None, "autoreply-header"),
    ("List-Id: <news.example.com>\n", None, "mailing-list"),
    ("", "<>", "empty-return-path"),
    ("", "", "empty-return-path"),
    ("Message-ID: <case-1.ab@kestrel-crm.invalid>\n", None, "our-own-message"),
    ("Message-ID: <abc@example.com>\n", "li@example.com", None),
])
def test_machine_mail_is_recognised(headers: str, envelope_from: str | None, reason: str | None) -> None:
    message = parsed(f"From: li@example.com\n{headers}Subject: hi\n\nbody\n")
    assert automatic_reason(message, envelope_from) == reason


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@example.com", "postmaster@example.com", "no-reply@example.com"])
def test_mail_from_a_mailer_daemon_is_automatic(sender: str) -> None:
    assert automatic_reason(parsed(f"From: {sender}\nSubject: x\n\nbody\n")) == "machine-sender"


def test_our_message_ids_are_recognised() -> None:
    assert is_our_message_id("<case-1.abc@kestrel-crm.invalid>")
    assert not is_our_message_id("<case-1.abc@kestrel-crm.invalid.example.com>")
    assert not is_our_message_id(None)


@pytest.mark.parametrize(("header", "address"), [
    ("Li Lei <Li.Lei@Example.COM>", "li.lei@example.com"),
    ("li@example.com, wang@example.com", None),
    ("not an address", None),
    ("@example.com", None),
])
def test_the_sender_is_one_normalised_address(header: str, address: str | None) -> None:
    assert sender_address(parsed(f"From: {header}\nSubject: x\n\nbody\n")) == address


def test_html_becomes_text_without_scripts() -> None:
    markup = "<html><head><style>p{}</style></head><body><p>Hi &amp; <i>bye</i></p><script>x()</script>" \
             "<div>&lt;b&gt;</div></body></html>"
    assert html_to_text(markup) == "Hi & bye\n\n<b>"


def test_plain_text_is_preferred_over_html() -> None:
    message = EmailMessage()
    message["From"] = "li@example.com"
    message.set_content("plain words")
    message.add_alternative("<p>html words</p>", subtype="html")
    assert body_text(message) == "plain words"


VALUES = {"customer_name": "Acme", "contact_name": "Li Lei", "case_number": "42", "agent_name": "Rita"}


@pytest.mark.parametrize(("body", "values", "rendered"), [
    ("Dear {contact_name}, case {case_number}.", VALUES, "Dear Li Lei, case 42."),
    ("{customer_name}/{agent_name}", VALUES, "Acme/Rita"),
    ("尊敬的{contact_name}，工单 {case_number}", VALUES, "尊敬的Li Lei，工单 42"),
    ("Hi {contact_name}", {**VALUES, "contact_name": "{agent_name}"}, "Hi {agent_name}"),
    ("Hi {contact_name}", {**VALUES, "contact_name": "<script>x</script> **b**"}, "Hi <script>x</script> **b**"),
    ("{contact_name.__class__} {0} {case_number!r}", VALUES, "{contact_name.__class__} {0} {case_number!r}"),
    ("no variables", VALUES, "no variables"),
    ("Hi {contact_name}", {}, "Hi "),
])
def test_macros_render_as_plain_substitution(body: str, values: dict[str, str], rendered: str) -> None:
    assert render_macro(body, values) == rendered


def test_unknown_variables_are_named() -> None:
    assert unknown_variables("{contact_name} {customer} {0}") == ["0", "customer"]
    assert unknown_variables("{case_number}") == []


def test_hidden_characters_of_a_strangers_mail_are_dropped_not_stored() -> None:
    """A mail cannot be refused back to be fixed: NUL (PostgreSQL stores none), controls and direction
    overrides leave its text; line breaks and tabs stay."""
    email = EmailMessage()
    email["From"] = "li.lei@example.test"
    email.set_content("Printer\x00 broken\x07\n\tsee\u202e attached")
    assert body_text(email) == "Printer broken\n\tsee attached"


@pytest.mark.parametrize(("host", "security", "problem"), [
    ("imap.example.test", "tls", None),
    ("imap.example.test", "starttls", None),
    ("imap.example.test", "none", "mail.inbox.tls_required"),  # a password never crosses a network in clear
    ("10.0.0.5", "none", "mail.inbox.tls_required"),
    ("localhost", "none", None),
    ("127.0.0.1", "none", None),
    ("127.8.9.10", "none", None),
    ("::1", "none", None),
    ("[::1]", "none", None),
    ("localhost.example.test", "none", "mail.inbox.tls_required"),  # not resolved: a name is this machine or not
    ("imap.example.test", "ssl", "validation.choice"),
])
def test_a_mailbox_is_read_over_tls_unless_it_is_on_this_machine(host: str, security: str,
                                                                 problem: str | None) -> None:
    assert imap_security_problem(host, security) == problem
