"""Kestrel CRM — the frame: page config, language, login, navigation by role.

Pages run inside this frame and find the acting user in ``crm_ui.context``. Login is
streamlit-authenticator's widget over credentials built from the ``users`` table;
lockouts and revoked sessions live in the database (see ``crm_core.services.auth``).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
from streamlit_authenticator.utilities.exceptions import LoginError

from crm_core import logs, schema
from crm_core.config import COOKIE_EXPIRY_DAYS, COOKIE_NAME, demo_mode
from crm_core.i18n import LANGUAGES, normalise_language
from crm_core.metrics import PAGE_RUN_SECONDS, SESSIONS
from crm_core.models import Role
from crm_core.queries.users import tenant_name
from crm_core.services import auth
from crm_ui.context import (
    ACTOR_STATE,
    AFTER_LOGIN_STATE,
    LANG_STATE,
    SESSION_STARTED_STATE,
    carry_choices,
    get_db,
    lang,
    remember_address,
    show_unexpected_error,
    t,
)
from crm_ui.global_search import global_search_box
from crm_ui.navigation import pages_for
from crm_ui.notifications import notification_bell
from crm_ui.page_scripts import language_script
from crm_ui.session_cookie import (
    CLEAR_PATH,
    SET_PATH,
    TICKET_STATE,
    TICKETS,
    configured_cookie_key,
    cookie_issued_at,
    pixel,
    use_host_cookies,
)
from crm_ui.text import css_string, plain, plain_line

LOG = logging.getLogger("kestrel.login")

PASSWORD_LOGIN_STATE = "kestrel_password_login"
LANG_CHOSEN_STATE = "kestrel_lang_chosen"
VERIFIED_STATE = "kestrel_verified_user"
NOTICE_STATE = "kestrel_login_notice"
CLEAR_COOKIE_STATE = "kestrel_clear_cookie"

st.set_page_config(page_title="Kestrel CRM", page_icon="🦅", layout="wide")


def language_switch(location: Any, key: str) -> None:
    """English / 简体中文 for this browser session; once logged in, also the preference for the next login.

    Only this session changes: the user's other open sessions keep their language (they read
    the stored preference once, when they log in; see :func:`login_gate`).

    The box is keyed per language shown (``<key>_en``, ``<key>_zh-CN``) and only the box of the session's
    current language switches it: the login form's box, drawn in the browser's language, is still reported
    (as changed, seen under load in Chromium) on a rerun after the login applied the saved 中文, and must
    never switch the session back.
    """
    current = lang()
    codes = list(LANGUAGES)
    box = f"{key}_{current}"

    def apply_choice() -> None:  # runs before the script: the whole run is in the chosen language
        chosen = st.session_state.get(box)
        if box != f"{key}_{lang()}" or chosen == lang() or chosen not in LANGUAGES:
            # a box drawn for another language than the session's: the login form's "English" box that
            # Streamlit still reports (as changed) on a rerun after the login switched to the saved 中文
            return
        carry_choices(lang(), chosen)
        st.session_state[LANG_STATE] = chosen
        st.session_state[LANG_CHOSEN_STATE] = True
        username = st.session_state.get("username")
        if username and st.session_state.get(ACTOR_STATE) is not None:
            auth.set_language(get_db(), username, chosen)

    location.selectbox(
        "🌐 Language / 语言", codes, index=codes.index(current), format_func=lambda code: LANGUAGES[code],
        key=box, on_change=apply_choice,
    )


def streamlit_texts_in_chinese() -> None:
    """Streamlit's own texts that no parameter translates, written over in Chinese with CSS.

    The file uploader's button and size line, the date boxes' empty-field hints (yyyy/mm/dd),
    the hint under a text box and the keyboard "skip" link are drawn by Streamlit in English
    only; the stylesheet hides those texts and shows the catalog's instead (English pages keep
    Streamlit's own). The texts are ours, not user data; they are still escaped as CSS strings.
    """
    if lang() != "zh-CN":
        return
    size = int(st.get_option("server.maxUploadSize"))

    def css_text(key: str, **params: Any) -> str:
        return css_string(t(key, **params))

    replaced = {
        '[data-testid="stFileUploaderDropzone"] [data-testid="stBaseButton-secondary"] p': css_text("streamlit.upload"),
        '[data-testid="stFileUploaderDropzoneInstructions"] span': css_text("streamlit.upload_limit", size=size),
        '[data-testid="stSkipToContent"]': css_text("streamlit.skip_to_content"),
        '[data-testid="InputInstructions"]': css_text("streamlit.press_enter"),
        '[data-testid="stDateInput"] [data-placeholder="true"][data-type="year"]': css_text("streamlit.year"),
        '[data-testid="stDateInput"] [data-placeholder="true"][data-type="month"]': css_text("streamlit.month"),
        '[data-testid="stDateInput"] [data-placeholder="true"][data-type="day"]': css_text("streamlit.day"),
    }
    rules = "".join(
        f"{selector}{{font-size:0 !important}}{selector}::after{{content:{text};font-size:0.875rem}}"
        for selector, text in replaced.items()
    )
    # the full-screen button Streamlit adds to plotly's tool bar escapes plotly's dictionary
    # (crm_core.formatting.plotly_config); its tooltip is drawn from data-title by CSS
    for english, key in (("Fullscreen", "chart.fullscreen"), ("Close fullscreen", "chart.close_fullscreen")):
        rules += (f'.js-plotly-plot .plotly .modebar-btn[data-title="{english}"]::after'
                  f"{{content:{css_text(key)} !important}}")
    st.html(f"<style>{rules}</style>")


def end_session(authenticator: stauth.Authenticate, notice: str | None = None) -> None:
    """Forget the logged-in user in this browser session; the login form's run drops the cookie."""
    authenticator.logout(location="unrendered")
    for key in (ACTOR_STATE, VERIFIED_STATE, PASSWORD_LOGIN_STATE, LANG_CHOSEN_STATE, SESSION_STARTED_STATE,
                TICKET_STATE):
        st.session_state.pop(key, None)
    st.session_state[CLEAR_COOKIE_STATE] = True
    if notice:
        st.session_state[NOTICE_STATE] = notice


def login_gate() -> stauth.Authenticate | None:
    """Show the login form until a user is authenticated; returns the authenticator then."""
    db = get_db()
    authenticated = bool(st.session_state.get("authentication_status"))
    credentials = auth.login_credentials(db) if not authenticated else {
        "usernames": {st.session_state["username"]: {"name": st.session_state.get("name"), "password": "-"}}
    }
    before = {name: entry.get("failed_login_attempts", 0) for name, entry in credentials["usernames"].items()}
    # cookie lifetime 0: the authenticator reads the login cookie but never writes it from JavaScript;
    # the host sets it HttpOnly (crm_ui.session_cookie), and no cookie component is drawn (decision 0063)
    use_host_cookies()
    authenticator = stauth.Authenticate(
        credentials,
        COOKIE_NAME,
        configured_cookie_key(),
        0,
        auto_hash=False,
        login_sleep_time=0,
    )

    def on_password_login(event: dict[str, Any]) -> None:
        # None when the account was locked meanwhile (parallel wrong passwords): refused below
        st.session_state[SESSION_STARTED_STATE] = auth.record_login(db, event["username"])
        st.session_state[PASSWORD_LOGIN_STATE] = True  # after: a failed recording is tried again next run

    # a returning browser with a live cookie logs in during this run: no login screen flashes (nor stays
    # drawn above the page, sidebar hidden, for the rest of the run)
    issued = cookie_issued_at(st.context.cookies.get(COOKIE_NAME), configured_cookie_key())
    returning = (issued is not None and not st.session_state.get("logout")
                 and issued > dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=COOKIE_EXPIRY_DAYS))
    if not authenticated and not returning:
        # a session that just logged out would keep its stale page menu: no sidebar here
        hide_sidebar()
        st.title("🦅 Kestrel CRM")
        st.caption(t("login.tagline"))
        if demo_mode():
            st.warning(t("demo.banner"), icon="🧪")
        language_switch(st, "kestrel_language_login")
        # kept until the next login: a rerun from the cookie component must not wipe it
        if notice := st.session_state.get(NOTICE_STATE):
            st.info(t(notice))
        if st.session_state.pop(CLEAR_COOKIE_STATE, False):
            st.html(pixel(CLEAR_PATH))  # the browser drops the (now useless) login cookie
    try:
        authenticator.login(
            location="main",
            max_login_attempts=auth.LOGIN_MAX_FAILED_ATTEMPTS,
            fields={
                "Form name": t("login.title"),
                "Username": t("login.username"),
                "Password": t("login.password"),
                "Login": t("login.submit"),
            },
            key="kestrel_login",
            callback=on_password_login,
        )
    except LoginError as error:
        if "attempts" in str(error):
            st.error(t("login.locked", minutes=auth.LOGIN_LOCKOUT_MINUTES))
        else:  # a cookie for a user who no longer exists or was deactivated
            end_session(authenticator)
            st.error(t("login.failed"))
        return None
    status = st.session_state.get("authentication_status")
    if status is False:
        for name, entry in credentials["usernames"].items():
            attempts = int(entry.get("failed_login_attempts") or 0)
            if attempts > int(before.get(name) or 0) and auth.record_failed_login(db, name):
                st.error(t("login.locked", minutes=auth.LOGIN_LOCKOUT_MINUTES))
                return None
        auth.spend_password_check_time()  # an unknown name answers as slowly as a wrong password
        st.error(t("login.failed"))
        return None
    if not status:
        return None
    username = st.session_state["username"]
    newly_verified = st.session_state.get(VERIFIED_STATE) != username
    late = newly_verified and issued is None and not st.session_state.get(PASSWORD_LOGIN_STATE)
    if late:
        # no cookie, so the password was checked in this session, but the run stopped before the
        # callback's bookkeeping: record the login now instead of ending a session that just began
        LOG.warning("login of %s recorded one run late", username)
        on_password_login({"username": username})
    # keyed on the state, not on this run seeing the login: a run stopped between the login and here (a
    # rerun request from a component) still hands this browser its cookie on the next run
    if st.session_state.get(PASSWORD_LOGIN_STATE) and TICKET_STATE not in st.session_state:
        if st.session_state.get(SESSION_STARTED_STATE) is None:  # locked while the password was checked
            end_session(authenticator)
            st.error(t("login.locked", minutes=auth.LOGIN_LOCKOUT_MINUTES))
            return None
        # the next runs show a pixel whose request makes the host set the HttpOnly cookie
        st.session_state[TICKET_STATE] = TICKETS.issue(username)
        st.rerun()  # drop the login form from the screen
    if newly_verified and not st.session_state.get(PASSWORD_LOGIN_STATE):
        # logged in from a cookie: the session started when the cookie was issued
        st.session_state[SESSION_STARTED_STATE] = issued
    # every rerun: a logout elsewhere, a password or role change, a deactivation or a lock ends this session
    started = st.session_state.get(SESSION_STARTED_STATE)
    actor = auth.load_actor(db, username, session_started=started) if started is not None else None
    if actor is None:
        LOG.warning("session of %s ended: %s", username,
                    "no start time (locked at login?)" if started is None
                    else f"started {started.isoformat()} is no longer current (logout, password, role or lock)")
        end_session(authenticator, notice="login.session_ended")
        st.rerun()
    st.session_state[VERIFIED_STATE] = username
    st.session_state[ACTOR_STATE] = actor
    st.session_state.pop(NOTICE_STATE, None)
    if newly_verified and st.session_state.get(LANG_CHOSEN_STATE):
        if normalise_language(actor.language) != lang():  # picked on the login form: the preference, as the
            auth.set_language(db, username, lang())      # sidebar's box makes it, for the next login too
    elif newly_verified:
        # the stored preference is read once per login: a switch in another of the user's sessions
        # changes the preference, never this session
        st.session_state[LANG_STATE] = normalise_language(actor.language)
    return authenticator


def navigation(role: Role) -> tuple[Any, dict[str, Any]]:
    """The pages this role may open, grouped by menu section (see crm_ui.navigation).

    Fully expanded: an admin's menu holds more than twelve pages, and Streamlit would hide
    the last ones behind an English-only "View N more" button.
    """
    sections: dict[str, list[Any]] = {}
    by_path: dict[str, Any] = {}
    for index, spec in enumerate(pages_for(role)):
        by_path[spec.url_path] = st.Page(spec.path, title=t(spec.title_key), icon=spec.icon, url_path=spec.url_path,
                                         default=index == 0)
        sections.setdefault(t(spec.section_key), []).append(by_path[spec.url_path])
    return st.navigation(sections, expanded=True), by_path


def go_to_remembered(pages: dict[str, Any]) -> None:
    """Once logged in, open the page of the link the user came with (if their role may open it)."""
    remembered = st.session_state.pop(AFTER_LOGIN_STATE, None)
    if remembered is not None and remembered[0] in pages:
        st.switch_page(pages[remembered[0]], query_params=remembered[1])


def hide_sidebar() -> None:
    """No menu on a page shown before the role's navigation exists (Streamlit would list every file in pages/)."""
    st.markdown("<style>[data-testid='stSidebar']{display:none}</style>", unsafe_allow_html=True)


def main() -> None:
    """Render the frame and run the selected page."""
    if LANG_STATE not in st.session_state:
        st.session_state[LANG_STATE] = normalise_language(getattr(st.context, "locale", None))
    db = get_db()
    if schema.current_revision(db.engine) != schema.head_revision():
        hide_sidebar()
        st.error(t("app.schema_outdated"))
        st.code("python -m crm_core init")
        st.stop()
    authenticator = login_gate()
    streamlit_texts_in_chinese()  # after the login settled the language
    st.html(language_script(lang()), unsafe_allow_javascript=True)  # the date picker's calendar speaks it too
    if authenticator is None:
        # a link into the app (a bookmark, a colleague's link to a case): the login ends there (go_to_remembered)
        remember_address()
        st.stop()
    actor = st.session_state[ACTOR_STATE]
    page, pages = navigation(actor.role)
    go_to_remembered(pages)
    with st.sidebar:
        with db.session(actor) as session:
            workspace = tenant_name(session)
        role = t("role." + actor.role.value)
        st.markdown(f"**{plain_line(actor.full_name)}**  \n{plain(role)} · {plain_line(workspace)}")
        if demo_mode():
            st.caption("🧪 " + t("demo.banner"))
        notification_bell()
        global_search_box()
        language_switch(st.sidebar, "kestrel_language_choice")
        if (ticket := st.session_state.get(TICKET_STATE)) and TICKETS.shown(ticket):
            st.html(pixel(f"{SET_PATH}?ticket={ticket}"))  # until the ticket expires (the browser fetches it once)
        if st.button(t("login.logout"), key="kestrel_logout", width="stretch"):
            auth.end_sessions(db, actor.username)
            end_session(authenticator, notice="login.logged_out")
            st.rerun()
    SESSIONS.seen(st.session_state.setdefault("kestrel_metrics_session", secrets.token_hex(8)))
    started = time.perf_counter()
    try:
        with logs.bound(page=page.url_path or "dashboard", tenant_id=actor.tenant_id, user_id=actor.user_id):
            page.run()
    except Exception as error:  # st.stop/st.rerun are BaseExceptions and pass through
        with logs.bound(page=page.url_path or "dashboard", tenant_id=actor.tenant_id, user_id=actor.user_id):
            show_unexpected_error(error)
    finally:  # a run cut short by st.rerun/st.stop counts too: the user waited for it
        PAGE_RUN_SECONDS.labels(page=page.url_path or "dashboard").observe(time.perf_counter() - started)


main()
