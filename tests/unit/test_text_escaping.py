"""The one rendering rule: data escaped for Streamlit's Markdown and for plotly's HTML subset."""

from __future__ import annotations

import ast
import re
from pathlib import Path

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


# --- a guard for what the hostile walk cannot reach (notices after an action, rare states) ---

ROOT = Path(__file__).resolve().parents[2]
DATA_ATTRIBUTES = {
    "name", "title", "full_name", "username", "label_en", "label_zh", "customer_name", "owner_name", "file_name",
    "order_number", "summary", "tag", "task_title", "campaign_name", "existing_name", "requested_by", "team_name",
    "lost_reason", "description", "subject", "stage_name", "author_name", "contact_name", "assignee_name",
}
"""Attributes that hold text a user, a file or an outsider wrote."""
ESCAPERS = {"plain", "plain_line", "plain_join", "plain_params", "chart_text"}
PLAIN_TEXT_FUNCTIONS = {"describe_action": "its text goes into a dataframe cell"}
"""Functions whose messages are shown as plain text, with why."""
ESCAPED_LATER = {
    "jobs.page.by": "pages/jobs.py escapes the job card's whole caption line",
    "records.next_task": "the 360 header's fact cells go through plain_line (crm_ui/customer_profile.header)",
    "records.next_deal": "the 360 header's fact cells go through plain_line (crm_ui/customer_profile.header)",
}
"""Messages escaped as a whole where they are shown, with where."""


def is_data(expression: ast.expr) -> bool:
    """Does ``expression`` read text that came from data (a record's name, a typed value, a name lookup)?"""
    if isinstance(expression, ast.Attribute):
        return expression.attr in DATA_ATTRIBUTES
    if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Attribute):
        method, owner = expression.func.attr, expression.func.value
        if method == "strip":  # what the user typed in a form
            return isinstance(owner, ast.Name) or is_data(owner)
        return method == "get" and isinstance(owner, ast.Name) and owner.id.endswith("_names")
    if isinstance(expression, ast.Subscript):
        return (isinstance(expression.value, ast.Name) and expression.value.id.endswith("_names")) \
            or is_data(expression.value)
    if isinstance(expression, ast.BoolOp):
        return any(is_data(value) for value in expression.values)
    if isinstance(expression, ast.IfExp):
        return is_data(expression.body) or is_data(expression.orelse)
    return False


def unescaped_message_parameters(source: str) -> list[str]:
    """``t(key, param=<data>)`` calls in ``source`` that no escaper encloses (outside plain-text functions)."""
    found: list[str] = []

    def visit(node: ast.AST, escaped: bool) -> None:
        if isinstance(node, ast.FunctionDef) and node.name in PLAIN_TEXT_FUNCTIONS:
            return
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Name) and node.func.id in ESCAPERS:
                escaped = True
            elif isinstance(node.func, ast.Name) and node.func.id == "t" and not escaped and not (
                node.args and isinstance(node.args[0], ast.Constant) and node.args[0].value in ESCAPED_LATER
            ):
                found.extend(f"line {node.lineno}: {ast.unparse(node)}" for keyword in node.keywords
                             if keyword.arg and is_data(keyword.value))
        for child in ast.iter_child_nodes(node):
            visit(child, escaped)

    visit(ast.parse(source), escaped=False)
    return found


UI_FILES = sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("crm_ui/*.py"), ROOT / "app.py"])


@pytest.mark.parametrize("path", UI_FILES, ids=[str(path.relative_to(ROOT)) for path in UI_FILES])
def test_no_page_puts_data_in_a_message_unescaped(path: Path) -> None:
    assert unescaped_message_parameters(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ('st.success(t("x.saved", name=customer.name))', True),
        ('STATE["n"] = t("x.saved", name=name.strip())', True),
        ('st.warning(t("x.moved", who=owner_names[owner_id]))', True),
        ('st.success(t("x.saved", name=plain(customer.name)))', False),
        ('st.caption(plain(t("x.file", name=file.name)))', False),
        ('st.success(t("x.saved", count=len(rows)))', False),
        ('def describe_action(rule):\n    return t("x.tag", tag=rule.tag)', False),
    ],
)
def test_the_message_guard_flags_data_and_only_data(source: str, flagged: bool) -> None:
    assert bool(unescaped_message_parameters(source)) is flagged


def test_ids_from_urls_are_read_strictly() -> None:
    from crm_ui.context import record_id

    assert record_id("12") == 12 and record_id(" 7 ") == 7
    for raw in ("²", "١٢", "１２", "-1", "0", "99999999999", "1e3", "1 2", "\x00", "", None, "2147483648"):
        assert record_id(raw) is None, raw
    assert record_id("2147483647") == 2147483647
