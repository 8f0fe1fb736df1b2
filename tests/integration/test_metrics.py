"""``/metrics`` (issue 16): the named series after real traffic, merged across the host and a worker process,
and nothing personal in them."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from crm_core.db import Database, make_engine
from crm_core.schema import upgrade_to_head
from crm_core.services.api_tokens import issue_api_token
from tests.factories import build_world, create_random_customer
from tests.hosting import ROOT, start_host

SECRET_NAME = "度量不应泄露的客户名"


def test_metrics_show_pages_api_jobs_and_pools_merged_across_processes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    db = Database(engine)
    world = build_world(db)
    customer = create_random_customer(db, world.rep, name=SECRET_NAME)
    token = issue_api_token(db, world.rep, name="metrics", scope="read", expires_in_days=None).secret
    engine.dispose()
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"CRM_DATABASE_URL": url, "CRM_JOBS_PATH": str(tmp_path / "jobs.db"),
           "CRM_COOKIE_KEY": "metrics-cookie-key-0123456789abcdef", "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    host = start_host(env, tmp_path / "server.log")
    try:
        for path in ("/api/v1/customers", f"/api/v1/customers/{customer}", "/api/v1/customers/999999"):
            request = urllib.request.Request(host.url + path, headers={"Authorization": f"Bearer {token}"})
            with contextlib.suppress(urllib.error.HTTPError):  # the 404 is part of the traffic
                urllib.request.urlopen(request, timeout=10).read()
        # a job run by another process (the worker's path: execute_job), writing into the same folder
        subprocess.run([sys.executable, "-m", "crm_core", "lifecycle", "refresh", "--inline"], cwd=ROOT, check=True,
                       capture_output=True, env={**os.environ, **env, "CRM_JOBS_INLINE": "1"})
        answer = host.get("/metrics")
    finally:
        host.stop()
    text = answer.body.decode()
    assert answer.status == 200 and answer.headers["Content-Type"].startswith("text/plain")
    assert 'kestrel_api_request_seconds_count{method="GET",route="/v1/customers",status="200"} 1.0' in text
    assert 'kestrel_api_request_seconds_count{method="GET",route="/v1/customers/{customer_id}",status="404"} 1.0' \
        in text
    assert 'kestrel_job_seconds_count{kind="lifecycle_refresh",status="succeeded"}' in text  # from the other process
    assert "kestrel_jobs_queued" in text and 'kestrel_db_pool_connections_in_use{pool="api"}' in text
    # page runs and login failures need a browser: tests/e2e/test_sessions_and_headers.py scrapes those
    for private in (SECRET_NAME, token, world.rep.username, f"/customers/{customer}", "/999999"):
        assert private not in text, private
