"""Pure rules of the notification centre: @mentions, DingTalk's signature (a known answer), robot answers."""

from __future__ import annotations

import pytest

from crm_core.rules.notifications import (
    MENTIONS_MAX,
    dingtalk_signed_url,
    mention_handle,
    parse_mentions,
    robot_accepted,
    robot_body,
)


@pytest.mark.parametrize(("text", "handles"), [
    ("Ask @rita about it", ["rita"]),
    ("@Rita and @MiaManager, then @rita again", ["rita", "miamanager"]),
    ("请 @张三 跟进", ["张三"]),
    ("mail buyer@harbour.example, not a mention", []),
    ("end of sentence @tom.", ["tom"]),
    ("dotted @li.wei-2 handle", ["li.wei-2"]),
    ("@@double and a lone @ sign", []),
    ("", []),
])
def test_parse_mentions(text: str, handles: list[str]) -> None:
    assert parse_mentions(text) == handles


def test_at_most_so_many_mentions_per_note() -> None:
    text = " ".join(f"@user{number}" for number in range(MENTIONS_MAX + 5))
    assert len(parse_mentions(text)) == MENTIONS_MAX


@pytest.mark.parametrize(("name", "handle"), [("Mia Manager", "miamanager"), ("张 三", "张三"), ("rita", "rita")])
def test_mention_handle_is_the_name_without_spaces_in_lower_case(name: str, handle: str) -> None:
    assert mention_handle(name) == handle


def test_dingtalk_signature_known_answer() -> None:
    # computed independently: printf '1700000000000\nSEC123' | openssl dgst -sha256 -hmac SEC123 -binary | base64
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=T", "SEC123", 1700000000000)
    assert url == ("https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1700000000000"
                   "&sign=lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ%3D")


def test_dingtalk_signature_starts_the_query_when_the_url_has_none() -> None:
    assert dingtalk_signed_url("https://h.example/send", "s", 1).startswith("https://h.example/send?timestamp=1&sign=")


@pytest.mark.parametrize(("status", "body", "accepted"), [
    (200, '{"errcode":0,"errmsg":"ok"}', True),
    (200, '{"errcode":310000,"errmsg":"sign not match"}', False),
    (200, "not json", False),
    (500, '{"errcode":0}', False),
    (None, "", False),
])
def test_robot_accepted(status: int | None, body: str, accepted: bool) -> None:
    assert robot_accepted(status, body) is accepted


def test_robot_body_is_a_text_message_with_the_text_as_written() -> None:
    assert robot_body("<b>@Rita</b> 你好") == '{"msgtype": "text", "text": {"content": "<b>@Rita</b> 你好"}}'
