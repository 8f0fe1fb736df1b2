"""The page scripts of our own (no data in them), in one place: the host allows exactly these inline
scripts by hash in its Content-Security-Policy (``server.content_security_policy``)."""

from __future__ import annotations

# On a phone the sidebar covers the page: after Enter opened a record, fold it away (a menu
# link does so by itself; st.switch_page does not). Our own script, no data in it.
FOLD_SIDEBAR = """<script>
if (window.innerWidth <= 640) {
  const fold = () => {
    const button = document.querySelector('[data-testid="stSidebarCollapseButton"] button');
    if (button) { button.click(); } else if (++tries < 20) { setTimeout(fold, 100); }
  };
  let tries = 0;
  fold();
}
</script>"""

# Remembers the main area's scroll position in this tab and restores it when asked (after a
# visit to a record).
SCROLL_SCRIPT = """
<script>
const doc = window.parent.document, store = window.parent.sessionStorage, key = "kestrel-customers-scroll";
const scroller = () => [doc.querySelector('[data-testid="stMain"]'),
  doc.querySelector('[data-testid="stAppViewContainer"]'), doc.scrollingElement]
  .find(el => el && el.scrollHeight > el.clientHeight + 4) || doc.scrollingElement;
if (!window.parent.__kestrelGridScroll) {
  window.parent.__kestrelGridScroll = true;
  doc.addEventListener("scroll", (event) => {
    if (doc.querySelector(".st-key-customers_table, .st-key-customers_cards")) {
      const el = event.target === doc ? doc.scrollingElement : event.target;
      store.setItem(key, String(el.scrollTop));
    }
  }, {capture: true, passive: true});
}
if (RESTORE) {
  const wanted = Number(store.getItem(key) || 0);
  let tries = 0;
  const again = () => {
    const el = scroller();
    el.scrollTop = wanted;
    if (Math.abs(el.scrollTop - wanted) > 4 && ++tries < 40) setTimeout(again, 100);
  };
  setTimeout(again, 50);
}
</script>
"""


# Tasks: a card's "Work on this task" (on a phone, the cards are a long list above the form) brings the
# form into view.
SCROLL_TO_TASK_FORM = """<script>
setTimeout(() => {
  const heading = document.querySelector(".st-key-tasks_act");
  if (heading) { heading.scrollIntoView({behavior: "smooth", block: "start"}); }
}, 150);
</script>"""

# A card's button chose its row in the picker below (crm_ui.layout.picked_here): bring the picker into view,
# below Streamlit's fixed header (which would cover the picker's heading).
SCROLL_TO_PICKED = """<script>
setTimeout(() => {
  const place = document.querySelector(".st-key-layout_picked");
  if (place) { place.style.scrollMarginTop = "4rem"; place.scrollIntoView({behavior: "smooth", block: "start"}); }
}, 150);
</script>"""

# Streamlit 1.67 draws st.date_input's calendar (month and weekday names, the week's first day)
# in the browser's language, ``navigator.language``, read again on each render: it has no locale
# option (streamlit/streamlit#12699). This gives the browser's page the user's language instead,
# and the document's ``lang`` attribute with it (CJK fonts, screen readers). Decision 0035.
# (its element is hidden: an empty one still took a gap at the top of every page)
LANGUAGE_SCRIPT = """<style>[data-testid="stElementContainer"]:has(.kestrel-language) { display: none; }</style>
<span class="kestrel-language"></span><script>
(() => {
  const lang = "LANG";
  for (const name of ["language", "languages"]) {
    Object.defineProperty(window.navigator, name, {configurable: true, get: () => name === "language" ? lang : [lang]});
  }
  document.documentElement.lang = lang;
})();
</script>"""


def language_script(language: str) -> str:
    """:data:`LANGUAGE_SCRIPT` for ``language``, one of ``crm_core.i18n.LANGUAGES`` (each form is hashed
    into the host's Content-Security-Policy, so a language outside that table gets English)."""
    from crm_core.i18n import DEFAULT_LANGUAGE, LANGUAGES

    return LANGUAGE_SCRIPT.replace("LANG", language if language in LANGUAGES else DEFAULT_LANGUAGE)


def all_variants() -> str:
    """Every inline script in every form a page sends it (the scroll script with RESTORE true and false,
    the language script in each language)."""
    from crm_core.i18n import LANGUAGES

    return "".join([FOLD_SIDEBAR, SCROLL_TO_TASK_FORM, SCROLL_TO_PICKED,
                    *(SCROLL_SCRIPT.replace("RESTORE", flag) for flag in ("true", "false")),
                    *(language_script(language) for language in LANGUAGES)])
