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


def all_variants() -> str:
    """Every inline script in every form a page sends it (the scroll script with RESTORE true and false)."""
    return "".join([FOLD_SIDEBAR, *(SCROLL_SCRIPT.replace("RESTORE", flag) for flag in ("true", "false"))])
