"""What every page shares: the database, the acting user, the language, and error display.

This is the only place (with ``app.py``) that knows both Streamlit and ``crm_core``'s
session types; pages import from here and call one query or service.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.config import load_settings
from crm_core.db import Database, open_database
from crm_core.errors import DomainError, DuplicateContact, DuplicateCustomer, StaleRecord, ValidationFailed
from crm_core.i18n import DEFAULT_LANGUAGE
from crm_core.i18n import t as translate
from crm_core.incidents import is_database_outage, log_incident
from crm_ui.text import plain, plain_line, plain_params

ACTOR_STATE = "kestrel_actor"
LANG_STATE = "kestrel_lang"
SESSION_STARTED_STATE = "kestrel_session_started"  # when this browser session logged in (naive UTC)


@st.cache_resource
def get_db() -> Database:
    """The process-wide database (engine and pool)."""
    return open_database(load_settings().database_url)


MAX_RECORD_ID = 2**31 - 1  # ids are 32-bit integers on every database


def record_id(raw: object) -> int | None:
    """An id read from the URL or a form, parsed strictly: ASCII digits 1…2³¹-1, else None ("not found").

    ``str.isdigit`` accepts "²" and "١٢" that ``int`` then refuses or reads (a superscript digit
    ended in the generic error box), and a 20-digit id overflowed PostgreSQL's integer.
    """
    text = str(raw or "").strip()
    if not (text.isascii() and text.isdecimal()) or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_RECORD_ID else None


def lang() -> str:
    """The interface language of this browser session."""
    return str(st.session_state.get(LANG_STATE, DEFAULT_LANGUAGE))


def choice_key(key: str) -> str:
    """The key of a choice box whose option labels are translated: one widget per language.

    Streamlit keeps a keyed select box across reruns, and the browser keeps showing the label
    the value was picked under: after a language switch the box would still read "this
    quarter" on a Chinese page. A key per language makes a fresh box with fresh labels;
    :func:`carry_choices` moves the picked values over when the language changes.
    """
    return f"{key}@{lang()}"


def carry_choices(old: str, new: str) -> None:
    """Give the choice boxes of language ``new`` the values picked under ``old`` (see :func:`choice_key`)."""
    suffix = f"@{old}"
    for key in [k for k in st.session_state if isinstance(k, str) and k.endswith(suffix)]:
        st.session_state[key.removesuffix(suffix) + f"@{new}"] = st.session_state[key]


def t(key: str, **params: Any) -> str:
    """Translate ``key`` into the session's language."""
    return translate(key, lang(), **params)


AFTER_LOGIN_STATE = "kestrel_after_login"  # (url path, query) of the link a logged-out user opened


def remember_address() -> None:
    """Keep the page and query of the browser's address for after the login (the first link wins)."""
    from crm_ui.navigation import page_at

    path = page_at(getattr(st.context, "url", None))
    if path is not None and AFTER_LOGIN_STATE not in st.session_state:
        st.session_state[AFTER_LOGIN_STATE] = (path, st.query_params.to_dict())


def current_actor() -> Actor:
    """The logged-in user; the frame guarantees one exists before a page runs."""
    actor = st.session_state.get(ACTOR_STATE)
    if actor is None:
        # opened without the frame (a link straight to a page file, before any login in this browser
        # session): the frame logs the user in, then comes back here (app.remember_the_address)
        remember_address()
        try:
            st.switch_page("app.py")
        except st.errors.StreamlitAPIException:  # no frame to go to (a page run on its own)
            st.error(t("login.required"))
            st.stop()
    assert isinstance(actor, Actor)
    return actor


@contextmanager
def read_session() -> Iterator[Session]:
    """A read session scoped to the current user."""
    with get_db().session(current_actor()) as session:
        yield session


def show_domain_error(error: DomainError, *, labels: dict[str, str] | None = None) -> None:
    """Explain ``error`` in the user's language (field by field for validation errors).

    Its parameters and field labels can be data (a duplicate's name, a value, a custom field's
    label): they are escaped, as alerts are Markdown; the catalog's own Markdown stays.
    """
    if isinstance(error, ValidationFailed):
        lines = []
        for field_name, (key, params) in error.errors.items():
            label = (labels or {}).get(field_name, field_name.removeprefix("custom."))
            # a field rule's message names its field (as in an import report): by its label here
            named = {**params, "field": label} if "field" in params else params
            lines.append(f"- **{plain_line(label)}**: {t(key, **plain_params(named))}")
        st.error(t("error.validation_failed") + "\n\n" + "\n".join(lines))
    elif isinstance(error, DuplicateContact):  # a hidden one's message names the owner only
        st.warning(t(error.message_key, name=plain(error.existing_name), customer=plain(error.customer_name),
                     matched_on=t(f"field.{error.matched_on}"), owner=plain(error.params.get("owner", "—"))))
    elif isinstance(error, DuplicateCustomer):
        st.warning(t(error.message_key, name=plain(error.existing_name or t("error.hidden_record")),
                     matched_on=t(f"field.{error.matched_on}"), owner=plain(error.params.get("owner", "—"))))
    elif isinstance(error, StaleRecord):
        st.error(t("error.stale_record", **plain_params(error.params)))
    else:
        st.error(t(error.message_key, **plain_params(error.params)))


def show_unexpected_error(error: Exception) -> str:
    """Log the traceback under a correlation id; show the user a message carrying the id, never the trace.

    Returns the id (the one the ``kestrel`` log line starts with, see ``crm_core.incidents``).
    """
    incident_id = log_incident(error, where=f"the page {st.context.url or '?'}")
    if is_database_outage(error):  # busy, restarted, full: nothing was saved; it recovers on its own
        st.error(t("error.database_unavailable", incident=incident_id))
    else:
        st.error(t("error.unexpected_with_id", incident=incident_id))
    return incident_id
