"""The host in Chromium when the frame itself fails: st.App's on_script_error shows a reference, no trace.

The database is down (nothing listens on its port), so app.py fails before any page runs —
outside the page's own try/except. The host is started from a scratch directory, so the
theme colour on screen also shows that .streamlit/config.toml was found beside app.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import CHROMIUM, screenshot
from tests.hosting import Host, free_port, start_host

pytestmark = pytest.mark.e2e
PRIMARY_RGB = "180, 83, 9"  # theme.primaryColor = "#b45309" in .streamlit/config.toml
STREAMLIT_DEFAULT_PRIMARY_RGB = "255, 75, 75"  # what the page would carry without it


@pytest.fixture(scope="module")
def host_without_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found")
    directory = tmp_path_factory.mktemp("host-errors")
    env = {"CRM_DATABASE_URL": f"postgresql+psycopg://kestrel@127.0.0.1:{free_port()}/kestrel",
           "CRM_JOBS_PATH": str(directory / "jobs.db"), "CRM_COOKIE_KEY": "e2e-cookie-key-0123456789abcdef"}
    host = start_host(env, directory / "server.log", cwd=directory)
    yield host
    host.stop()


@pytest.mark.parametrize(("locale", "wording"), [  # an unreachable database: the outage message, with its reference
    ("en-US", r"The database did not answer .* Reference ([0-9a-f]{8})\."),
    ("zh-CN", r"数据库暂时没有响应.*编号 ([0-9a-f]{8})。"),
])
def test_a_failing_frame_shows_a_translated_reference_and_the_log_holds_the_trace(
        host_without_database: Host, browser: object, locale: str, wording: str) -> None:
    page = browser.new_page(locale=locale)  # type: ignore[attr-defined]
    page.goto(host_without_database.url)
    alert = page.locator('[data-testid="stAlertContentError"]')
    alert.wait_for(timeout=30_000)
    message = alert.inner_text()
    screenshot(page, f"host-error-{locale}")
    found = re.search(wording, message)
    assert found, message
    incident_id = found.group(1)
    assert page.locator('[data-testid="stException"]').count() == 0
    body = page.locator("body").inner_text()
    assert not any(leak in body for leak in ("Traceback", "OperationalError", "psycopg", "127.0.0.1"))
    log = host_without_database.log()
    assert f"incident {incident_id}: unexpected OperationalError in the page" in log
    assert "Traceback (most recent call last)" in log
    # the configured theme reached the browser although the host was started elsewhere
    colours = page.evaluate(
        "() => [...document.styleSheets].flatMap(sheet => { try { return [...sheet.cssRules] } catch { return [] } })"
        ".map(rule => rule.cssText).join(' ')")
    assert PRIMARY_RGB in colours
    assert STREAMLIT_DEFAULT_PRIMARY_RGB not in colours
    page.close()
