"""An error no page expected: the user reads a reference in their language, the log holds the trace."""

from __future__ import annotations

import logging
import re

import pytest

from crm_core.queries import reports
from tests.pages.conftest import AppWorld, log_in, new_app

SECRET = "secret detail from deep inside"


@pytest.mark.parametrize(("language_index", "wording"), [
    (0, r"logged under reference ([0-9a-f]{8})\."),
    (1, r"已记录，编号 ([0-9a-f]{8})。"),
])
def test_an_error_in_a_page_shows_a_translated_reference_and_logs_the_trace_under_it(
        app_world: AppWorld, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        language_index: int, wording: str) -> None:
    def broken_dashboard(*args: object, **kwargs: object) -> None:
        raise RuntimeError(SECRET)

    monkeypatch.setattr(reports, "dashboard", broken_dashboard)
    app = new_app()
    app.run()
    app.selectbox(key="kestrel_language_login_en").select_index(language_index).run()
    with caplog.at_level(logging.ERROR, logger="kestrel"):
        app = log_in(app_world.world.rep.username, app=app)

    assert not app.exception  # Streamlit's own exception box (which carries the trace) is not shown
    [message] = [error.value for error in app.error]
    found = re.search(wording, message)
    assert found, message
    incident_id = found.group(1)
    shown = [element.value for element in (*app.error, *app.warning, *app.info, *app.markdown, *app.code)]
    assert not any(SECRET in str(text) or "Traceback" in str(text) for text in shown)
    [record] = [record for record in caplog.records if record.name == "kestrel"]
    assert record.getMessage().startswith(f"incident {incident_id}: unexpected RuntimeError in the page")
    assert record.exc_info is not None and str(record.exc_info[1]) == SECRET

