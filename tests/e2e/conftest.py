"""End-to-end fixtures: the real ASGI host (uvicorn server:app) on a free port, driven by Debian's Chromium."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from tests.factories import World, build_world, create_random_customer
from tests.hosting import start_host

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CRM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@dataclass
class Server:
    url: str
    db: Database
    world: World
    log_path: Path | None = None  # the host's log: a failing test's report carries its end


@dataclass
class Prepared:
    """A fresh SQLite database with the small world, and the environment a host or worker serves it with."""

    directory: Path
    engine: Engine
    db: Database
    world: World
    env: dict[str, str]


def prepare_database(tmp_path_factory: pytest.TempPathFactory, name: str) -> Prepared:
    """The database, world and this run's own queue, uploads and Data Docs (never the repository's or a Redis)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: install Debian's chromium (make test does) to run browser tests")
    directory = tmp_path_factory.mktemp(name)
    url = f"sqlite:///{directory / 'e2e.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn")
    create_random_customer(db, world.rep, name="Acme Trading", email="hello@acme.com")
    env = {"CRM_DATABASE_URL": url, "CRM_COOKIE_KEY": "e2e-cookie-key-0123456789abcdef",
           "CRM_JOBS_PATH": str(directory / "jobs.db"), "CRM_FILES_DIR": str(directory / "files"),
           "CRM_GX_DIR": str(directory / "gx"), "CRM_REDIS_URL": ""}
    return Prepared(directory, engine, db, world, env)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The ASGI host (``uvicorn server:app``, as ``make run`` starts it) on a fresh SQLite database."""
    prepared = prepare_database(tmp_path_factory, "e2e")
    with serving(prepared) as running:
        yield running


@contextmanager
def serving(prepared: Prepared, **env: str) -> Iterator[Server]:
    """The host on ``prepared``'s database (``env`` over its environment) while the block runs.

    A host that does not start fails the test with its reason.
    """
    try:
        host = start_host({**prepared.env, **env}, prepared.directory / "server.log")
    except RuntimeError as error:
        pytest.fail(str(error))
    try:
        yield Server(host.url, prepared.db, prepared.world, host.log_path)
    finally:
        host.stop()
        prepared.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Headless Chromium (Debian's build) under Playwright."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def settled(page: object, timeout_ms: int = 30_000) -> None:
    """The script's run is over and no element of an earlier run is left (a form re-keyed to the picked
    task replaces the previous one: typing before that would type into the form being replaced)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        """() => {
          const app = document.querySelector('[data-testid="stApp"]');
          return app && app.getAttribute('data-test-script-state') === 'notRunning'
            && !document.querySelector('[data-stale="true"]');
        }""",
        timeout=timeout_ms,
    )


# Every element of the page that scrolls sideways (and the page itself), as "what: scroll width > width".
# Left out as legitimately scrollable: the sidebar (a drawer, off screen on a phone), Streamlit's tab strip
# (it scrolls with its own arrow button) and a multiselect's line of chosen items (Streamlit's design:
# one line that scrolls). Plotly charts are not left out: they fit their width.
SIDEWAYS_SCROLLERS = """() => {
  const found = [];
  const root = document.scrollingElement;
  if (root.scrollWidth > root.clientWidth + 1) found.push(`the page: ${root.scrollWidth} > ${root.clientWidth}`);
  for (const el of document.querySelectorAll('[data-testid="stMain"] *')) {
    if (el.clientWidth === 0 || el.scrollWidth <= el.clientWidth + 1) continue;
    if (!['auto', 'scroll'].includes(getComputedStyle(el).overflowX)) continue;
    if (el.matches('[role="tablist"], [data-testid="stMultiSelectTagsContainer"]')) continue;
    const keyed = el.closest('[class*="st-key-"]');
    const key = keyed ? [...keyed.classList].find(name => name.startsWith('st-key-')) : '';
    const kind = el.closest('[data-testid]');
    found.push(`${kind ? kind.dataset.testid : el.tagName} ${key}: ${el.scrollWidth} > ${el.clientWidth}`);
  }
  return found;
}"""

# the page's tables (canvas grids, drawn after the script's run) have drawn
TABLES_DRAWN = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stDataFrame"]')]
  .filter(table => table.getClientRects().length > 0)
  .every(table => table.querySelector('.dvn-scroller') && table.querySelector('canvas'))
  && !document.querySelector('[data-testid="stSkeleton"], [data-testid="stSkeletonElement"]')"""

WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation',
  (event) => window.__cspViolations.push(
    [event.violatedDirective, event.blockedURI, event.sourceFile, location.pathname].join(' | ')));
"""


@dataclass
class Watched:
    """A browser context whose page records policy (CSP) violations and every request that leaves the app."""

    context: Any
    page: Any
    outside: list[str]

    def violations(self) -> list[str]:
        """The Content-Security-Policy violations the page reported since it was opened."""
        return list(self.page.evaluate("window.__cspViolations"))


def watched_page(browser: Any, server: Server, **context_options: Any) -> Watched:
    """A new context and page that watch for policy violations and requests outside ``server``."""
    context = browser.new_context(**context_options)
    context.add_init_script(WATCH_CSP)
    page = context.new_page()
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url)
            if not request.url.startswith((server.url, "data:", "blob:")) else None)
    return Watched(context, page, outside)


def actor_of(world: World, role: object) -> Any:
    """The small world's user of ``role`` (admin, manager, rep, analyst)."""
    return {"admin": world.admin, "manager": world.manager, "rep": world.rep, "analyst": world.analyst}[
        str(getattr(role, "value", role))]


def session_cookie(context: object, timeout_ms: int = 30_000) -> dict[str, object]:
    """The login cookie once the host has set it (the page fetches it after the login run), waited for."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    while True:
        found = [c for c in context.cookies() if c["name"] == "kestrel_session"]  # type: ignore[attr-defined]
        if found or time.monotonic() > deadline:
            assert found, "the host never set the login cookie"
            return dict(found[0])
        time.sleep(0.1)


def screenshot(page: object, name: str) -> None:
    """Keep a picture of what the user saw (artifacts/ is git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def page_evidence(page: Any, name: str) -> str:
    """Keep a picture of ``page`` (``FAILED-<name>``) and say where it was, whether its script was running
    and what it read: a CI log then shows what the user saw when a step timed out."""
    try:
        screenshot(page, f"FAILED-{name}")
        state = page.evaluate(
            "document.querySelector('[data-testid=\"stApp\"]')?.getAttribute('data-test-script-state')")
        text = page.evaluate(  # the main area: the sidebar's menu would fill the excerpt
            "(document.querySelector('[data-testid=\"stMain\"]') || document.body)?.innerText.slice(0, 1500) || ''")
        return f"the page at {page.url} (script {state}) read:\n{text}"
    except Exception as unreadable:  # a closed page: the test's own error is what matters
        return f"the page could not be read: {unreadable}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """When a browser test fails, every page its browser still holds adds its evidence to the report."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.when != "call" or not report.failed or browser is None:
        return
    pages = [page for context in browser.contexts for page in context.pages]
    for number, page in enumerate(pages):
        name = re.sub(r"[^\w.-]+", "-", f"{item.name}-{number}")
        report.sections.append((f"page {number + 1} of {len(pages)}", page_evidence(page, name)))
    server = getattr(item, "funcargs", {}).get("server")
    log_path = getattr(server, "log_path", None)
    if log_path is not None and log_path.exists():  # what the host said while the step timed out
        lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        report.sections.append(("the host's log, last 40 lines", "\n".join(lines[-40:])))


def open_page(page: object, link: str, heading: str, *, timeout_ms: int = 30_000, attempts: int = 3) -> None:
    """Click ``link`` in the sidebar menu until the page titled ``heading`` shows.

    Right after a login the app may still be finishing a run (the cookie component reports
    back once); a click that lands in that moment is dropped by Streamlit, and a user would
    simply click again, so the test does too.
    """
    nav = page.locator('[data-testid="stSidebarNav"]')  # type: ignore[attr-defined]
    _until_heading(page, lambda: nav.get_by_role("link", name=link).click(), heading, timeout_ms, attempts)


def switch_language(page: object, option: str, heading: str, *, timeout_ms: int = 30_000, attempts: int = 3) -> None:
    """Pick ``option`` in the sidebar language box until the page title reads ``heading``."""

    def pick() -> None:
        # a rerun that lands between opening the box and choosing closes the list: open it again
        box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first  # type: ignore[attr-defined]
        for attempt in range(attempts):
            box.click()
            try:
                page.get_by_role("option", name=option).click(timeout=10_000)  # type: ignore[attr-defined]
                return
            except Exception:
                if attempt == attempts - 1:
                    raise

    _until_heading(page, pick, heading, timeout_ms, attempts)


def _until_heading(page: object, act: Callable[[], object], heading: str, timeout_ms: int, attempts: int) -> None:
    """Do ``act`` until the page titled ``heading`` shows, again when a rerun dropped the click."""
    target = page.get_by_role("heading", name=heading, exact=True)  # type: ignore[attr-defined]
    for attempt in range(attempts):
        act()
        try:
            target.wait_for(timeout=timeout_ms // attempts if attempt < attempts - 1 else timeout_ms)
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def select_tab(tab: Any, *, attempts: int = 3) -> None:
    """Click ``tab`` until it is the selected one: a tap that lands while a run redraws the strip is lost."""
    from playwright.sync_api import expect

    for attempt in range(attempts):
        tab.click()
        try:
            expect(tab).to_have_attribute("aria-selected", "true", timeout=10_000)
            return
        except AssertionError:
            if attempt == attempts - 1:
                raise


def pick_option(page: object, box_label: str, option: str, *, attempts: int = 3) -> None:
    """Open the select box labelled ``box_label`` and pick ``option``; again if a rerun closed the list."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text=box_label).first  # type: ignore[attr-defined]
    for attempt in range(attempts):
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=10_000)  # type: ignore[attr-defined]
            return
        except Exception:
            if attempt == attempts - 1:
                raise


def log_in(page: object, server: Server, username: str, *, timeout_ms: int = 45_000) -> None:
    """Open the app and log in as ``username`` (the test password); returns once the frame shows."""
    from tests.factories import PASSWORD

    page.goto(server.url)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Username").wait_for(timeout=timeout_ms)  # type: ignore[attr-defined]
    settled(page, timeout_ms)  # a rerun while typing would clear the form: type once the first run is over
    page.get_by_role("textbox", name="Username").fill(username)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Password").fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log in").click()  # type: ignore[attr-defined]
    page.get_by_role("button", name="Log out").wait_for(timeout=timeout_ms)  # type: ignore[attr-defined]
    session_cookie(page.context, timeout_ms)  # type: ignore[attr-defined]  # set by the host: a reload logs back in
