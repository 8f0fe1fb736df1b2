"""One rendering rule: a value that came from a user, a file or an outsider is shown as text.

Streamlit renders Markdown (with its own ``:red[…]`` colour, ``:icon:`` and ``$…$`` LaTeX
directives) in ``st.markdown``/``st.write``, titles, captions, alerts, toasts, and in the
labels of widgets, expanders, tabs, popovers, page links and metrics, and in radio options
and help tooltips. A customer named ``Acme ![x](http://tracker.example/p.png)`` would make
every browser that shows it fetch the image. So data goes through :func:`plain` before it
meets any of those; the catalog text around it keeps its own Markdown.

Which helper where:

- a fragment of ``st.markdown``/``st.caption``/an alert or a message parameter: :func:`plain`
  (a message parameter: ``name=plain(name)``), or :func:`plain_params` for all of an error's;
- a label, title, button, checkbox, expander or tab name, metric label, page link:
  :func:`plain_line` (one line: a line break there would start a new block);
- radio options: ``format_func=plain_format(...)``;
- several values on one line (a card's caption): :func:`plain_join`;
- plotly: :func:`chart_text`. Plotly renders a subset of HTML (``<a href>``, ``<b>``,
  ``<br>``) in hover texts, axis, tick, legend and node labels.

Not Markdown, so left alone: ``st.dataframe``/``st.data_editor`` cells and headers,
``st.text``, ``st.code``, text inputs' values, and select box / multiselect options (plain
text in the browser, checked in Chromium with Streamlit 1.67: escaping them would show the
backslashes). ``tests/pages/test_hostile_text.py`` walks every page over hostile data.
"""

from __future__ import annotations

import html
import re
import string
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

V = TypeVar("V")

# CommonMark lets a backslash escape every ASCII punctuation character; escaping all of them
# also breaks Streamlit's directives (``:red[``, ``:material/…:``, ``$``) and raw HTML (``<``).
_MARKDOWN_SPECIALS = str.maketrans({char: "\\" + char for char in string.punctuation})
# A number (-12, 3.5, 1,234.50, 40%) can start no Markdown construct: left as written, so that
# messages keep their figures readable in the page source (a list needs "1. " or "- ").
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)*%?")


# GitHub's autolinks (http://…, www.…, name@host) are found in the text *after* escapes are
# resolved, so a backslash cannot stop them: an invisible word joiner after the scheme, the
# "www" or the "@" does (the text reads and copies the same, bar that zero-width character).
_AUTOLINK_TRIGGERS = re.compile(r"(?i)(?:https?|ftp|mailto|xmpp)(?=:)|www(?=\.)|@")
WORD_JOINER = "\u2060"


def plain(text: object) -> str:
    """``text`` escaped so that Streamlit's Markdown shows it as written: no links, images, emphasis, colour, HTML."""
    value = str(text)
    if _NUMBER.fullmatch(value):
        return value
    value = _AUTOLINK_TRIGGERS.sub(lambda trigger: trigger.group(0) + WORD_JOINER, value)
    return value.translate(_MARKDOWN_SPECIALS)


def plain_line(text: object) -> str:
    """:func:`plain` on one line: for labels, titles and tab names, where a line break would start a new block."""
    return plain(" ".join(str(text).split()))


def plain_params(params: Mapping[str, Any]) -> dict[str, str]:
    """The parameters of a translated message, each escaped: the catalog's Markdown stays, the data's does not."""
    return {name: plain(value) for name, value in params.items()}


def plain_format(format_func: Callable[[V], object] = str) -> Callable[[V], str]:
    """A ``format_func`` for radio buttons (whose options are Markdown) that shows each option as written."""
    return lambda value: plain_line(format_func(value))


def plain_join(values: Iterable[object], separator: str = " · ") -> str:
    """Values joined into one Markdown line, each escaped (the separator is ours)."""
    return separator.join(plain_line(value) for value in values)


def chart_text(text: object) -> str:
    """A data string for a plotly label or hover text: HTML-escaped, as plotly renders ``<a>``, ``<b>`` and ``<br>``."""
    return html.escape(str(text), quote=True)


def css_string(text: object) -> str:
    """A text as a quoted CSS string (a stylesheet's ``content:``): backslashes and quotes escaped,
    line breaks as ``\\A``."""
    escaped = str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ")
    return f'"{escaped}"'
