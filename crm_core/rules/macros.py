"""Case macros (canned replies) and their variables, pure.

A macro's text names variables in braces: ``{customer_name}``, ``{contact_name}``,
``{case_number}``, ``{agent_name}``. Rendering is one pass of plain substitution over that fixed
set: a value is inserted as text and never read again, so a value that itself looks like
``{agent_name}``, Markdown or HTML stays as it is; no attribute, index or format spec is ever
evaluated (unlike ``str.format``). The result is plain text, shown and sent as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

VARIABLES = ("customer_name", "contact_name", "case_number", "agent_name")
LANGUAGES = ("en", "zh-CN")
_PLACEHOLDER = re.compile(r"\{([^{}\s]{1,64})\}")


def unknown_variables(body: str) -> list[str]:
    """The placeholders in ``body`` that are not variables (a macro with any is refused)."""
    return sorted({name for name in _PLACEHOLDER.findall(body or "") if name not in VARIABLES})


def render_macro(body: str, values: Mapping[str, str]) -> str:
    """``body`` with each known variable replaced by its value (missing values become empty)."""
    return _PLACEHOLDER.sub(lambda found: str(values.get(found.group(1), "")) if found.group(1) in VARIABLES
                            else found.group(0), body or "")
