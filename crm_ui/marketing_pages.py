"""The pages the host serves for a marketing message's links (``/m/u/…``, ``/m/p/…``): plain HTML rendered by
Jinja2 with autoescape on (every value, translated text included, is escaped), no script, in the message's
language. The preference form posts back to its own address with a key bound to the token (decision 0048)."""

from __future__ import annotations

from typing import Any

from jinja2 import DictLoader, Environment, select_autoescape

from crm_core.i18n import t
from crm_core.marketing.tracking import Preferences

STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
         "button{display:inline-block;padding:.6rem 1.4rem;margin:.3rem 0;border:1px solid #444;"
         "border-radius:.4rem;color:#111;background:#f4f4f4;font-size:1rem}"
         "fieldset{margin:1rem 0;border:1px solid #ccc;border-radius:.4rem}")

_LAYOUT = """<!DOCTYPE html><html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">
<title>{{ title }}</title><style>{{ style }}</style></head>
<body><main><h1>{{ title }}</h1>{% block main %}{% endblock %}</main></body></html>"""

_UNSUBSCRIBE = """{% extends "layout" %}{% block main %}
<p>{{ tr("marketing_mail.page.unsubscribe_ask", address=address) }}</p>
<form method="post" action="{{ token }}">
<button type="submit">{{ tr("marketing_mail.page.unsubscribe_button") }}</button></form>
<p><a href="../p/{{ token }}">{{ tr("marketing_mail.page.preferences_link") }}</a></p>
{% endblock %}"""

_MESSAGE = """{% extends "layout" %}{% block main %}<p role="status">{{ text }}</p>
{% if token %}<p><a href="../p/{{ token }}">{{ tr("marketing_mail.page.preferences_link") }}</a></p>{% endif %}
{% endblock %}"""

_PREFERENCES = """{% extends "layout" %}{% block main %}
{% if saved %}<p role="status">{{ tr("marketing_mail.page.saved", count=changed) }}</p>{% endif %}
<p>{{ tr("marketing_mail.page.preferences_intro") }}</p>
<form method="post" action="{{ token }}"><input type="hidden" name="form_key" value="{{ form_key }}">
{% for choice in choices %}<fieldset>
<legend>{{ tr("marketing_mail.channel." + choice.channel) }}: {{ choice.address }}</legend>
<label><input type="radio" name="{{ choice.field }}" value="keep"{% if choice.subscribed %} checked{% endif %}>
{{ tr("marketing_mail.page.keep") }}</label><br>
<label><input type="radio" name="{{ choice.field }}" value="withdraw"{% if not choice.subscribed %} checked{% endif %}>
{{ tr("marketing_mail.page.withdraw") }}</label></fieldset>{% endfor %}
<button type="submit">{{ tr("marketing_mail.page.save") }}</button></form>
{% endblock %}"""

_ENVIRONMENT = Environment(
    loader=DictLoader({"layout": _LAYOUT, "unsubscribe": _UNSUBSCRIBE, "message": _MESSAGE,
                       "preferences": _PREFERENCES}),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _render(name: str, language: str, title_key: str, **values: Any) -> str:
    lang = "zh-CN" if language == "zh-CN" else "en"

    def tr(key: str, **params: Any) -> str:
        return t(key, lang, **params)

    return _ENVIRONMENT.get_template(name).render(lang=lang, style=STYLE, title=tr(title_key), tr=tr, **values)


def unsubscribe_page(token: str, language: str, address: str) -> str:
    """"Stop marketing email to <address>?" with one button (the POST is the unsubscribe)."""
    return _render("unsubscribe", language, "marketing_mail.page.unsubscribe_title", token=token, address=address)


def message_page(key: str, language: str, *, token: str = "", **params: Any) -> str:
    """A one-line page: done, already done, or the link is unknown."""
    return _render("message", language, "marketing_mail.page.title", text=t(key, language, **params), token=token)


def preferences_page(token: str, prefs: Preferences, *, saved: bool = False) -> str:
    """The person's channels with keep / withdraw for each."""
    return _render("preferences", prefs.language, "marketing_mail.page.preferences_title", token=token,
                   form_key=prefs.form_key, choices=prefs.choices, saved=saved, changed=prefs.changed)
