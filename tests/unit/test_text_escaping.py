"""The one rendering rule: data escaped for Streamlit's Markdown and for plotly's HTML subset."""

from __future__ import annotations

import re

import pytest

from crm_ui.text import WORD_JOINER, chart_text, plain, plain_format, plain_join, plain_line, plain_params

HOSTILE = "Acme ![x](http://tracker.example/p.png) [Click](http://phish.example) :red[RED] **BOLD** <img src=x>"

# Each pair: something Markdown (or a Streamlit directive) would act on, and must not after escaping.
ACTIVE_SYNTAX = [
    ("![x](http://tracker.example/p.png)", "!["),
    ("[Click](http://phish.example)", "]("),
    (":red[RED]", ":red["),
    (":material/home:", ":material/"),
    ("**BOLD**", "**"),
    ("_it_", "_it"),
    ("~~gone~~", "~~"),
    ("`code`", "`code"),
    ("# Heading", "# "),
    ("> quote", "> "),
    ("| a | b |", "| a"),
    ("$x^2$", "$x"),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("&lt;b&gt;", "&lt;"),
    ("1. item", "1. "),
    ("- item", "- "),
]


def unescaped(text: str) -> str:
    """``text`` without its backslash escapes and word joiners: what a Markdown renderer shows."""
    return re.sub(r"\\(.)", r"\1", text).replace(WORD_JOINER, "")


@pytest.mark.parametrize(("value", "syntax"), ACTIVE_SYNTAX)
def test_plain_leaves_no_markdown_syntax_active(value: str, syntax: str) -> None:
    escaped = plain(value)
    assert syntax in value
    # every punctuation character is preceded by a backslash: CommonMark shows it literally
    assert re.search(r"[!-/:-@\[-`{-~]", re.sub(r"\\.", "", escaped)) is None


@pytest.mark.parametrize("value", [HOSTILE, "张三科技有限公司", "O'Brien & Sons", "a\\b", "plain words 42"])
def test_plain_shows_the_value_as_written(value: str) -> None:
    assert unescaped(plain(value)) == value


@pytest.mark.parametrize("tell_tale", ["](http", "![", ":red[", "**BOLD**", "<img"])
def test_plain_breaks_every_tell_tale_of_the_hostile_value(tell_tale: str) -> None:
    assert tell_tale in HOSTILE
    assert re.search(r"(?<!\\)" + re.escape(tell_tale), plain(HOSTILE)) is None


# GitHub's autolink patterns, as remark-gfm applies them to text after escapes are resolved.
AUTOLINKS = re.compile(r"(?i)(?:https?|ftp|mailto|xmpp):|www\.|[-.\w+]+@[-\w]+(?:\.[-\w]+)+")


@pytest.mark.parametrize("value", ["http://phish.example/login", "see www.phish.example", "mail ceo@phish.example",
                                   "HTTPS://x.example", "mailto:a@b.example"])
def test_plain_leaves_nothing_to_autolink(value: str) -> None:
    assert AUTOLINKS.search(value)
    assert AUTOLINKS.search(re.sub(r"\\(.)", r"\1", plain(value))) is None
    assert unescaped(plain(value)) == value


@pytest.mark.parametrize("number", ["42", "-12", "3.5", "1,234.50", "999999999999.99", "40%", "+7"])
def test_plain_leaves_a_number_as_written(number: str) -> None:
    assert plain(number) == number


@pytest.mark.parametrize("almost", ["1.", "1. item", "- 5", "1.5.", "5*", "1e5)"])
def test_plain_escapes_what_only_looks_like_a_number(almost: str) -> None:
    assert plain(almost) != almost


def test_plain_leaves_letters_digits_and_chinese_alone() -> None:
    assert plain("张三 Acme 42") == "张三 Acme 42"


def test_plain_line_keeps_a_label_on_one_line() -> None:
    assert plain_line("Acme\n\n# Heading\r\n- item") == "Acme \\# Heading \\- item"


def test_plain_params_escapes_every_parameter() -> None:
    assert plain_params({"name": "**B**", "count": 3}) == {"name": "\\*\\*B\\*\\*", "count": "3"}


def test_plain_format_escapes_what_the_format_function_returns() -> None:
    names = {1: "[Click](http://phish.example)"}
    assert "](" not in plain_format(names.__getitem__)(1)
    assert plain_format(str)(":red[x]") == "\\:red\\[x\\]"


def test_plain_join_escapes_values_but_not_the_separator() -> None:
    assert plain_join(["**a**", "b"]) == "\\*\\*a\\*\\* · b"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<a href='http://phish.example'>x</a>", "&lt;a href=&#x27;http://phish.example&#x27;&gt;x&lt;/a&gt;"),
        ("<b>bold</b>", "&lt;b&gt;bold&lt;/b&gt;"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
        ("张三", "张三"),
    ],
)
def test_chart_text_escapes_the_html_plotly_renders(value: str, expected: str) -> None:
    assert chart_text(value) == expected
