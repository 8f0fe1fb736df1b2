"""Marketing email, pure (decision 0048): the headers and parts of a message, tracked links, click signatures,
and reading a delivery status notification."""

from __future__ import annotations

import datetime as dt
from email import policy
from email.parser import BytesParser

from crm_core.rules.marketing_mail import (
    Links,
    Outgoing,
    build_message,
    click_signature,
    footer,
    read_bounce,
    signature_matches,
    track_links,
)

KEY = "unit-key"
LINKS = Links("https://crm.example.cn", "tok123")


BODY = "Hi <b>you</b>: https://a.example/x?y=1, and https://crm.example.cn/m/u/tok123\n"


def outgoing(tracking: bool, body: str = BODY) -> Outgoing:
    return Outgoing(to_address="li@example.cn", from_address="news@example.cn", sender_name="Acme 营销",
                    subject="春季 offer", body=body, message_id="<mkt-1@kestrel-crm.invalid>", language="zh-CN",
                    links=LINKS, tracking=tracking, reply_to="support+acme@in.example.cn")


def parsed(tracking: bool):  # type: ignore[no-untyped-def]
    raw = build_message(outgoing(tracking), link_key=KEY, now=dt.datetime(2026, 12, 1, 9)).as_bytes()
    return BytesParser(policy=policy.default).parsebytes(raw)


def test_the_headers_of_rfc_8058_and_our_message_id() -> None:
    email = parsed(False)
    assert email["List-Unsubscribe"] == "<https://crm.example.cn/m/u/tok123>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Message-ID"] == "<mkt-1@kestrel-crm.invalid>" and email["Subject"] == "春季 offer"
    assert str(email["From"]) == "Acme 营销 <news@example.cn>" and email["Reply-To"] == "support+acme@in.example.cn"
    assert email.get_content_type() == "text/plain" and "https://a.example/x?y=1," in email.get_content()


def test_tracking_rewrites_links_but_not_the_way_out_and_adds_an_escaped_html_twin_with_the_pixel() -> None:
    email = parsed(True)
    assert email.get_content_type() == "multipart/alternative"
    text = email.get_body(("plain",)).get_content()
    signature = click_signature(KEY, "tok123", "https://a.example/x?y=1")
    assert f"https://crm.example.cn/m/c/tok123?u=https%3A%2F%2Fa.example%2Fx%3Fy%3D1&s={signature}," in text
    assert "https://crm.example.cn/m/u/tok123" in text and "m/c/tok123?u=https%3A%2F%2Fcrm" not in text
    html = email.get_body(("html",)).get_content()
    assert "&lt;b&gt;you&lt;/b&gt;" in html and "<b>" not in html
    assert '<img src="https://crm.example.cn/m/o/tok123.gif" width="1" height="1" alt="">' in html


def test_a_signature_binds_the_token_the_url_and_the_key() -> None:
    signature = click_signature(KEY, "tok123", "https://a.example/")
    assert signature_matches(KEY, "tok123", "https://a.example/", signature)
    assert not signature_matches(KEY, "tok124", "https://a.example/", signature)
    assert not signature_matches(KEY, "tok123", "https://evil.example/", signature)
    assert not signature_matches("other", "tok123", "https://a.example/", signature)
    assert not signature_matches(KEY, "tok123", "https://a.example/", "")
    assert track_links("see https://a.example/（中文）", LINKS, KEY).endswith("（中文）")


def test_the_footer_names_the_sender_the_postal_address_and_the_way_out() -> None:
    texts = {"sent_by": "Sent by {sender}", "unsubscribe": "Unsubscribe: {link}", "preferences": "Choices: {link}"}
    text = footer("en", sender_name="Acme", sender_address="news@acme.cn", postal_address="1 Bund\nShanghai",
                  links=LINKS, texts=texts)
    assert text.splitlines() == ["", "-- ", "Sent by Acme · news@acme.cn", "1 Bund Shanghai",
                                 "Unsubscribe: https://crm.example.cn/m/u/tok123",
                                 "Choices: https://crm.example.cn/m/p/tok123"]


def dsn(action: str, status: str, original: str) -> bytes:
    return ("From: MAILER-DAEMON@mx.example.net\r\nTo: support+acme@in.example.cn\r\nSubject: failure\r\n"
            'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; Li@Example.cn\r\nAction: {action}\r\nStatus: {status}\r\n\r\n"
            f"--B\r\n{original}--B--\r\n").encode()


def read(raw: bytes):  # type: ignore[no-untyped-def]
    return read_bounce(BytesParser(policy=policy.default).parsebytes(raw))


def test_a_dsn_names_the_original_message_its_recipient_and_status() -> None:
    headers = "Content-Type: text/rfc822-headers\r\n\r\nMessage-ID: <mkt-9@kestrel-crm.invalid>\r\n"
    bounce = read(dsn("failed", "5.1.1 (user unknown)", headers))
    assert bounce is not None
    assert (bounce.message_id, bounce.recipient, bounce.status, bounce.permanent) == (
        "<mkt-9@kestrel-crm.invalid>", "li@example.cn", "5.1.1", True)
    whole = "Content-Type: message/rfc822\r\n\r\nMessage-ID: <mkt-8@kestrel-crm.invalid>\r\nSubject: x\r\n\r\nbody\r\n"
    soft = read(dsn("failed", "4.2.2", whole))
    assert soft is not None and (soft.message_id, soft.permanent) == ("<mkt-8@kestrel-crm.invalid>", False)
    assert read(dsn("delayed", "4.4.1", headers)) is None  # still trying: not a bounce
    assert read(b"From: a@b.cn\r\nSubject: hi\r\n\r\nplain mail\r\n") is None
