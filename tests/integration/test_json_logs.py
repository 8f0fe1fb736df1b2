"""Logs as JSON lines (issue 16): every line of the host's log is one JSON object with its correlation
ids, and no password, token or cookie value ever appears in it."""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from crm_core import logs
from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from crm_core.services.api_tokens import issue_api_token
from tests.factories import PASSWORD, build_world
from tests.hosting import start_host


def test_the_hosts_log_is_json_lines_with_ids_and_no_secrets(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    world = build_world(Database(engine))
    token = issue_api_token(Database(engine), world.rep, name="logs", scope="read", expires_in_days=None).secret
    engine.dispose()
    cookie_key = "json-logs-cookie-key-0123456789abcdef"
    env = {"CRM_DATABASE_URL": url, "CRM_JOBS_PATH": str(tmp_path / "jobs.db"), "CRM_COOKIE_KEY": cookie_key,
           "CRM_LOG_FORMAT": "json"}
    host = start_host(env, tmp_path / "server.log")
    try:
        for headers in ({"Authorization": f"Bearer {token}"}, {"Authorization": f"Bearer {token}x"},
                        {"Cookie": f"kestrel_session={token}"}):
            request = urllib.request.Request(host.url + "/api/v1/customers?q=%00", headers=headers)
            with contextlib.suppress(urllib.error.HTTPError):  # the refusals are part of the traffic
                urllib.request.urlopen(request, timeout=10).read()
        assert host.get("/readyz").status == 200
    finally:
        host.stop()
    text = (tmp_path / "server.log").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines
    parsed = [json.loads(line) for line in lines]  # every line, uvicorn's included, is one JSON object
    assert all({"timestamp", "level", "event"} <= set(entry) for entry in parsed)
    assert any(entry["logger"] == "kestrel" for entry in parsed)
    for secret in (token, cookie_key, PASSWORD):
        assert secret not in text


def test_secrets_in_a_message_or_a_field_are_masked(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("CRM_LOG_FORMAT", "json")
    logger = logging.getLogger("kestrel.test.json")
    handler = logging.StreamHandler()
    handler.setFormatter(logs.formatter())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with logs.bound(request_id="abc123", tenant_id=7):
            logger.warning("refused Bearer kst_abcdefghijklmnop and cookie kestrel_session=eyJhbGciOi.x.y",
                           extra={"password": "Kestrel-demo-2026", "user_id": 9})
    finally:
        logger.removeHandler(handler)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["request_id"] == "abc123" and line["tenant_id"] == 7 and line["user_id"] == 9
    assert line["password"] == "***"
    assert "kst_abcdefghijklmnop" not in line["event"] and "eyJhbGciOi" not in line["event"]
    assert line["level"] == "warning" and line["logger"] == "kestrel.test.json"
