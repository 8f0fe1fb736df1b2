"""In Chromium: the database stays locked past the writers' patience (another process's long import);
the rep is told plainly, keeps what they typed, and the same click works once the lock is gone."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from crm_core.db import WRITE_OPTION
from crm_core.models import Customer
from tests.e2e.conftest import Server, log_in, open_page, prepare_database, screenshot, serving, settled

pytestmark = pytest.mark.e2e
TIMEOUT = 45_000
NAME = "锁住也不丢有限公司"


@pytest.fixture(scope="module")
def impatient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The host with writers that give up after 0.3 s instead of 30 (the same path, sooner)."""
    prepared = prepare_database(tmp_path_factory, "e2e-faults")
    with serving(prepared, CRM_SQLITE_BUSY_TIMEOUT_MS="300") as running:
        yield running


def test_a_locked_database_is_explained_the_input_kept_and_the_next_click_works(  # type: ignore[no-untyped-def]
    impatient_server: Server, browser
) -> None:
    server = impatient_server
    context = browser.new_context(viewport={"width": 1400, "height": 1100}, locale="en-US")
    page = context.new_page()
    log_in(page, server, server.world.rep.username)
    open_page(page, "Customers", "Customers")
    settled(page)
    name_box = page.get_by_role("textbox", name="Name *")
    name_box.fill(NAME)

    holder = server.db.engine.connect().execution_options(**{WRITE_OPTION: True})
    held = holder.begin()  # another process's long import holds SQLite's write lock
    try:
        page.get_by_role("button", name="Create customer").click()
        page.get_by_text("The database did not answer", exact=False).wait_for(timeout=TIMEOUT)
        settled(page)
        screenshot(page, "database-locked-explained")
    finally:
        held.rollback()
        holder.close()
    message = page.get_by_text("The database did not answer", exact=False).inner_text()
    assert "nothing was saved" in message and "Reference" in message and "Traceback" not in page.content()
    assert name_box.input_value() == NAME  # what the rep typed is still there
    with server.db.system_session("e2e check") as session:
        assert session.scalar(select(Customer.id).where(Customer.name == NAME)) is None

    page.get_by_role("button", name="Create customer").click()  # the lock is gone: the same click works
    page.get_by_text(f"Customer \"{NAME}\" created.", exact=False).wait_for(timeout=TIMEOUT)
    with server.db.system_session("e2e check") as session:
        assert session.scalar(select(Customer.owner_id).where(Customer.name == NAME)) == server.world.rep.user_id
    context.close()
