"""The ASGI host as a user and an orchestrator see it: ``python -m server`` in a subprocess.

Each host runs from a scratch directory (the repository is on ``PYTHONPATH``), so nothing
here works only because the current directory happens to be the repository.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from websockets.typing import Subprotocol

from crm_core import __version__
from crm_core.schema import alembic_config, head_revision
from tests.hosting import ROOT, Host, start_host

COOKIE_KEY = "host-test-cookie-key-0123456789abcdef"


def host_env(database_url: str, directory: Path) -> dict[str, str]:
    """One host's settings: its database, its own queue file, a fixed cookie key."""
    return {"CRM_DATABASE_URL": database_url, "CRM_JOBS_PATH": str(directory / "jobs.db"),
            "CRM_COOKIE_KEY": COOKIE_KEY}


def init_database(url: str, *, revision: str | None = None) -> None:
    """``python -m crm_core --database-url URL init`` as an operator runs it; or stop at ``revision``."""
    if revision is None:
        subprocess.run([sys.executable, "-m", "crm_core", "--database-url", url, "init"], cwd=ROOT, check=True,
                       capture_output=True)
        return
    from alembic import command

    from crm_core.db import make_engine

    engine = make_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


@pytest.fixture(scope="module")
def ready_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    """A host on a database initialised to head."""
    directory = tmp_path_factory.mktemp("host-ready")
    url = f"sqlite:///{directory / 'crm.db'}"
    init_database(url)
    host = start_host(host_env(url, directory), directory / "server.log", cwd=directory)
    yield host
    host.stop()


def test_healthz_says_the_process_is_up(ready_host: Host) -> None:
    answer = ready_host.get("/healthz")
    assert (answer.status, answer.content_type, answer.json()) == (200, "application/json", {"status": "ok"})


def test_readyz_is_ready_when_database_schema_and_queue_answer(ready_host: Host) -> None:
    answer = ready_host.get("/readyz")
    assert answer.status == 200, answer.body
    assert answer.json() == {"status": "ready",
                             "checks": {"database": {"ok": True}, "schema": {"ok": True}, "queue": {"ok": True}}}


def test_the_landing_pages_own_name_opens_it_at_the_root(ready_host: Host) -> None:
    """Streamlit serves every role's first page at ``/`` and answers ``/dashboard`` (a bookmark) with a "Page not
    found" dialog: the host sends it to ``/``, query kept."""
    import http.client
    from urllib.parse import urlsplit

    from crm_core.models import Role
    from crm_ui.navigation import pages_for
    from server import LANDING_PATH

    assert {pages_for(role)[0].url_path for role in Role} == {LANDING_PATH}
    address = urlsplit(ready_host.url)
    connection = http.client.HTTPConnection(address.hostname or "127.0.0.1", address.port, timeout=10)
    connection.request("GET", f"/{LANDING_PATH}?period=year")
    answer = connection.getresponse()
    assert (answer.status, answer.getheader("Location")) == (307, "/?period=year")
    connection.close()
    assert ready_host.get("/customers").status == 200  # other pages are Streamlit's, as before


def test_api_status_reports_the_version_and_the_schema_revision(ready_host: Host) -> None:
    answer = ready_host.get("/api/v1/status")
    assert (answer.status, answer.content_type) == (200, "application/json")
    assert answer.json() == {"version": __version__, "schema_revision": head_revision()}


@pytest.mark.parametrize("path", ["/api/nope", "/api/v1/nope", "/api/v2/status"])
def test_unknown_api_paths_answer_404_as_problem_json(ready_host: Host, path: str) -> None:
    answer = ready_host.get(path)
    assert (answer.status, answer.content_type) == (404, "application/problem+json")
    assert answer.json() == {"type": "about:blank", "title": "Not Found", "status": 404, "instance": path}


def test_the_streamlit_page_and_its_health_route_are_still_served(ready_host: Host) -> None:
    page = ready_host.get("/")
    assert (page.status, page.content_type) == (200, "text/html")
    assert b'<div id="root">' in page.body
    health = ready_host.get("/_stcore/health")
    assert (health.status, health.body) == (200, b"ok")


def test_the_websocket_is_served_with_streamlits_settings_not_uvicorns_defaults(ready_host: Host) -> None:
    # uvicorn alone would accept per-message compression: CPU spent on every message Streamlit sends
    from websockets.sync.client import connect

    with connect(ready_host.url.replace("http", "ws", 1) + "/_stcore/stream", compression="deflate",
                 subprotocols=[Subprotocol("streamlit")], open_timeout=10) as websocket:
        assert websocket.response is not None
        headers = websocket.response.headers
    assert headers["Sec-WebSocket-Protocol"] == "streamlit"
    assert "Sec-WebSocket-Extensions" not in headers


def test_streamlit_reads_the_repository_config_whatever_the_working_directory(tmp_path: Path) -> None:
    # uvicorn imports server.py, and st.App anchors .streamlit/config.toml at app.py's folder
    probe = ("import server; from streamlit import config; "
             "print(config.get_option('client.showErrorDetails'), config.get_option('theme.primaryColor'), "
             "config.get_option('runner.postScriptGC'))")
    shown = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
                           env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}"})
    assert shown.stdout.split() == ["none", "#b45309", "False"]  # decision 0062


def test_the_host_imports_the_frame_and_the_landing_page_before_it_serves(ready_host: Host) -> None:
    """The first users after a restart do not queue on Python's import lock behind pandas and plotly."""
    found = re.search(r"host: serving app\.py \((\d+) modules of the frame and the landing page imported",
                      ready_host.log())
    assert found is not None, ready_host.log()[-2000:]
    assert int(found.group(1)) >= 20
    assert "ahead of the first page failed" not in ready_host.log()
    assert "missing ScriptRunContext" not in ready_host.log()  # Streamlit's plain-text line, outside any format


def test_warming_up_loads_the_frame_and_the_dashboard_but_no_component_and_no_alembic(tmp_path: Path) -> None:
    """streamlit_authenticator declares custom components when imported: left to the frame's first run."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    probe = ("import sys, server\nbefore = {'pandas', 'crm_ui.navigation', 'streamlit.emojis'} & set(sys.modules)\n"
             "server.warm_up()\n"
             "print(sorted(before), all(name in sys.modules for name in ('pandas', 'plotly.graph_objects',"
             " 'crm_ui.navigation', 'crm_ui.formatting', 'streamlit.emojis')),"
             " any(name in sys.modules for name in ('streamlit_authenticator', 'extra_streamlit_components')),"
             " 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**os.environ, **host_env(url, tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["[]", "True", "False", "False"]


def test_the_login_page_draws_no_custom_component(ready_host: Host) -> None:
    """The login page's run draws no component frame: streamlit-authenticator's cookie manager was one, and the
    rerun its frame sent once loaded raced the click on "Log in" (decision 0063)."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    from websockets.sync.client import connect

    rerun = BackMsg()
    rerun.rerun_script.query_string = ""
    kinds: set[str | None] = set()
    elements: list[str | None] = []
    with connect(ready_host.url.replace("http", "ws", 1) + "/_stcore/stream",
                 subprotocols=[Subprotocol("streamlit")], open_timeout=10) as websocket:
        websocket.send(rerun.SerializeToString())
        while "script_finished" not in kinds:  # the login page's first run
            message = ForwardMsg()
            message.ParseFromString(websocket.recv(timeout=60))
            kinds.add(message.WhichOneof("type"))
            if message.WhichOneof("type") == "delta" and message.delta.WhichOneof("type") == "new_element":
                elements.append(message.delta.new_element.WhichOneof("type"))
    assert "text_input" in elements  # the login form was drawn
    assert "component_instance" not in elements


def test_the_readiness_check_answers_without_loading_alembic(tmp_path: Path) -> None:
    """The host's schema check reads the migration files and ``alembic_version``: Alembic and every migration
    module (about 14 MB a replica) stay out of the web process."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    init_database(url)
    probe = ("import sys, server\nfrom crm_core.db import open_database\nresults = {}\n"
             f"server.check_database(lambda: open_database({url!r}), results)\n"
             "print(results['schema'].ok, 'alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env={**os.environ, **host_env(url, tmp_path)},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "False"]


def test_the_head_read_from_the_migration_files_is_alembics_own() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize("behind", ["empty file", "one migration behind"])
def test_readyz_names_the_schema_when_the_database_is_behind_head(tmp_path: Path, behind: str) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    if behind == "empty file":
        (tmp_path / "crm.db").touch()
        expected = re.compile(r"the database has no schema, the code is at \w+: run python -m crm_core init")
    else:
        previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision()).down_revision
        assert isinstance(previous, str)
        init_database(url, revision=previous)
        expected = re.compile(rf"the database is at {previous}, the code at {head_revision()}: run python -m crm_core")
    host = start_host(host_env(url, tmp_path), tmp_path / "server.log", cwd=tmp_path)
    try:
        answer = host.get("/readyz")
    finally:
        host.stop()
    assert (answer.status, answer.content_type) == (503, "application/json")
    body = answer.json()
    assert body["status"] == "not ready"
    assert body["failed"] == ["schema"]
    assert body["checks"]["database"] == {"ok": True}
    assert expected.match(body["checks"]["schema"]["reason"]), body


def test_readyz_answers_in_time_when_the_database_hangs(tmp_path: Path) -> None:
    """A PostgreSQL address whose listener never replies: the probe reports, it does not hang."""
    from server import READINESS_TIMEOUT_SECONDS

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # the kernel completes the handshakes; nobody ever reads or writes
    port = silent.getsockname()[1]
    host = start_host(host_env(f"postgresql+psycopg://kestrel@127.0.0.1:{port}/kestrel", tmp_path),
                      tmp_path / "server.log", cwd=tmp_path)
    try:
        began = time.monotonic()
        first = host.get("/readyz", timeout=30)
        first_seconds = time.monotonic() - began
        began = time.monotonic()
        second = host.get("/readyz", timeout=30)
        second_seconds = time.monotonic() - began
    finally:
        silent.close()  # the abandoned check's connection attempt fails and its thread ends
        host.stop()
    assert first.status == 503
    assert first.json()["failed"] == ["database", "schema"]
    assert first.json()["checks"]["database"]["reason"] == f"no answer within {READINESS_TIMEOUT_SECONDS:g} s"
    assert first.json()["checks"]["schema"]["reason"] == "not checked: an earlier check hung"
    assert first.json()["checks"]["queue"] == {"ok": True}
    assert READINESS_TIMEOUT_SECONDS <= first_seconds < READINESS_TIMEOUT_SECONDS + 2
    # the first check's thread is still stuck: the next probe says so at once instead of starting another
    assert second.json()["checks"]["database"]["reason"] == "an earlier check has not returned yet"
    assert second_seconds < READINESS_TIMEOUT_SECONDS  # did not wait out another timeout
