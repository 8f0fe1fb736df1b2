"""Marketing email templates, pure: Jinja2 in a sandbox over the contact, the customer, the owner and
the sender, with every variable required (decision 0046).

A template is plain text (no HTML is sent, so nothing is escaped); the sandbox refuses attribute
tricks (``{{ ''.__class__ }}``), and :class:`jinja2.StrictUndefined` turns a variable the data does not
have into :class:`MissingVariable`, which blocks that send with the variable's name instead of
sending "Dear ," to a customer. A syntax error is reported with its line when the template is saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError, meta
from jinja2.sandbox import SandboxedEnvironment, SecurityError

LANGUAGES = ("en", "zh-CN")
SUBJECT_LENGTH = 300
BODY_LENGTH = 20_000

# what a template may use, shown next to the editor; values come from marketing.sender.template_context
VARIABLES: dict[str, tuple[str, ...]] = {
    "contact": ("name", "title", "email"),
    "customer": ("name", "industry", "region"),
    "owner": ("name", "email"),
    "sender": ("name", "address", "postal_address"),
    "links": ("unsubscribe", "preferences"),
}



class _Group(dict[str, Any]):
    """One group of variables (``contact``, ``customer`` …), named so that a missing one is reported whole."""

    def __init__(self, name: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.group = name


class _Missing(StrictUndefined):
    """Strict, and says ``contact.title`` rather than "'dict object' has no attribute 'title'"."""

    @property
    def _undefined_message(self) -> str:
        owner = self._undefined_obj
        if isinstance(owner, _Group):
            return f"'{owner.group}.{self._undefined_name}' is undefined"
        return str(super()._undefined_message)


_ENVIRONMENT = SandboxedEnvironment(undefined=_Missing, autoescape=False, keep_trailing_newline=True)


class MissingVariable(Exception):
    """The data has no value for a variable the template uses."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class TemplateProblem(Exception):
    """The template cannot be rendered at all: a syntax error (with its line) or a refused construct."""

    def __init__(self, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.line = line


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def syntax_problem(text: str) -> TemplateProblem | None:
    """The syntax error of ``text`` (None when it parses)."""
    try:
        _ENVIRONMENT.parse(text)
    except TemplateSyntaxError as error:
        return TemplateProblem(error.message or "syntax error", error.lineno)
    return None


def unknown_variables(text: str) -> list[str]:
    """Top-level names ``text`` uses that no template may use (a typo such as ``{{ contcat.name }}``)."""
    try:
        names = meta.find_undeclared_variables(_ENVIRONMENT.parse(text))
    except TemplateSyntaxError:
        return []
    return sorted(name for name in names if name not in VARIABLES)


def render(subject: str, body: str, context: dict[str, Any]) -> Rendered:
    """Render a template's subject and body over ``context``; raises :class:`MissingVariable` when a
    value it uses is absent (None or empty counts as absent: a greeting without the name is not sent)
    and :class:`TemplateProblem` when the template is broken or tries what the sandbox refuses."""
    cleaned = {group: _Group(group, {key: value for key, value in values.items() if value not in (None, "")})
               for group, values in context.items()}
    try:
        rendered_subject = _ENVIRONMENT.from_string(subject).render(cleaned)
        rendered_body = _ENVIRONMENT.from_string(body).render(cleaned)
    except UndefinedError as error:
        raise MissingVariable(_undefined_name(str(error.message or ""))) from None
    except TemplateSyntaxError as error:
        raise TemplateProblem(error.message or "syntax error", error.lineno) from None
    except SecurityError as error:
        raise TemplateProblem(str(error)) from None
    return Rendered(" ".join(rendered_subject.split())[:SUBJECT_LENGTH], rendered_body)


def _undefined_name(message: str) -> str:
    """``'contact.title' is undefined`` → ``contact.title``."""
    return message.split("'")[1] if message.count("'") >= 2 else message
