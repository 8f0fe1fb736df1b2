"""The customer's CSAT page served by the host (``/csat/{token}``): plain, accessible HTML, no script.

Everything placed in the page is escaped (``html.escape``): translated text and the link's
own token; the customer's comment is never echoed back. The page works without JavaScript
and under the host's Content-Security-Policy (no inline script, styles inline only).
"""

from __future__ import annotations

from html import escape

from crm_core.i18n import t

STYLE = ("body{font-family:system-ui,sans-serif;max-width:34rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
         "a.choice,button{display:inline-block;padding:.6rem 1.4rem;margin:.3rem;border:1px solid #444;"
         "border-radius:.4rem;color:#111;background:#f4f4f4;text-decoration:none;font-size:1rem}"
         "textarea{width:100%;min-height:6rem}")


def _page(language: str, body: str) -> str:
    lang = "zh-CN" if language == "zh-CN" else "en"
    return ("<!DOCTYPE html>"
            f'<html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="robots" content="noindex">'
            f"<title>{escape(t('csat.title', lang))}</title><style>{STYLE}</style></head>"
            f"<body><main><h1>{escape(t('csat.title', lang))}</h1>{body}</main></body></html>")


def choice_page(token: str, language: str) -> str:
    """The two choices (what an opened link without a score shows)."""
    safe = escape(token, quote=True)
    return _page(language, (
        f"<p>{escape(t('csat.ask', language))}</p>"
        f'<p><a class="choice" href="{safe}?score=good">{escape(t("csat.good", language))}</a>'
        f'<a class="choice" href="{safe}?score=bad">{escape(t("csat.bad", language))}</a></p>'))


def thanks_page(token: str, score: str, language: str, *, updated: bool) -> str:
    """Thanks for the rating, and the optional comment form (posted to the same address)."""
    safe = escape(token, quote=True)
    note = f"<p>{escape(t('csat.updated', language))}</p>" if updated else ""
    thanks = t("csat.thanks_good" if score == "good" else "csat.thanks_bad", language)
    return _page(language, (
        f'<p role="status">{escape(thanks)}</p>{note}'
        f'<form method="post" action="{safe}">'
        f'<input type="hidden" name="score" value="{escape(score, quote=True)}">'
        f'<label for="comment">{escape(t("csat.comment_label", language))}</label>'
        '<textarea id="comment" name="comment" maxlength="1000"></textarea>'
        f'<p><button type="submit">{escape(t("csat.send", language))}</button></p></form>'))


def message_page(key: str, language: str, **params: object) -> str:
    """A one-line page: the comment was saved, or why the link cannot be used."""
    return _page(language, f'<p role="status">{escape(t(key, language, **params))}</p>')
