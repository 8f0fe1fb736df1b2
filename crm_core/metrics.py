"""Prometheus metrics (prometheus-client): the series the host serves at ``/metrics``.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``make run`` sets it; so must a deployment that runs
several processes), every process — the web host and each job worker — writes its samples
there, and ``/metrics`` merges them. Without it, ``/metrics`` shows the host's own samples.

Labels are names the code chooses (a page's path, an API route template, a job kind, a status),
never a record's id, a user or any text a user typed: nothing personal leaves through a scrape.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)

PAGE_RUN_SECONDS = Histogram("kestrel_page_run_seconds", "Time of one script run of a page", ["page"],
                             buckets=LATENCY_BUCKETS)
API_REQUEST_SECONDS = Histogram("kestrel_api_request_seconds", "API request latency by route template and status",
                                ["route", "method", "status"], buckets=LATENCY_BUCKETS)
JOB_SECONDS = Histogram("kestrel_job_seconds", "Job run time by kind and final status", ["kind", "status"],
                        buckets=JOB_BUCKETS)
LOGIN_FAILURES = Counter("kestrel_login_failures_total", "Wrong passwords at login")
LOCKOUTS = Counter("kestrel_lockouts_total", "Accounts locked after too many wrong passwords")
INCIDENTS = Counter("kestrel_incidents_total", "Unexpected errors logged under an incident id", ["where"])
SLA_ESCALATIONS = Counter("kestrel_sla_escalations_total",
                          "SLA escalations recorded by the sweep: warning (assignee), breach (team lead), manager",
                          ["level"])
DATABASE_OUTAGES = Counter("kestrel_database_outages_total", "Work refused because the database did not answer",
                           ["where"])


class RecentSessions:
    """Browser sessions of this process that ran a page in the last ``window`` seconds (the active ones).

    Streamlit keeps no public count of its sessions; each page run marks its session here, and a
    scrape counts (and forgets) the marks. One process's sessions: a scrape of each replica.
    """

    def __init__(self, window: float = 300.0) -> None:
        self.window = window
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def seen(self, session_key: str) -> None:
        with self._lock:
            self._seen[session_key] = time.monotonic()

    def count(self) -> int:
        cutoff = time.monotonic() - self.window
        with self._lock:
            for key in [key for key, at in self._seen.items() if at < cutoff]:
                del self._seen[key]
            return len(self._seen)


SESSIONS = RecentSessions()


class StateCollector(Collector):
    """Gauges read at scrape time: jobs waiting per kind, database connections in use per pool, active sessions."""

    def __init__(self, queued_jobs: Callable[[], dict[str, int]], pools: Callable[[], dict[str, tuple[int, int]]]):
        self.queued_jobs = queued_jobs
        self.pools = pools

    def collect(self) -> Iterable[Any]:
        queued = GaugeMetricFamily("kestrel_jobs_queued", "Jobs waiting for a worker, by kind", labels=["kind"])
        for kind, count in sorted(self.queued_jobs().items()):
            queued.add_metric([kind], count)
        yield queued
        in_use = GaugeMetricFamily("kestrel_db_pool_connections_in_use", "Database connections checked out",
                                   labels=["pool"])
        size = GaugeMetricFamily("kestrel_db_pool_size", "Database connections the pool keeps", labels=["pool"])
        for name, (checked_out, kept) in sorted(self.pools().items()):
            in_use.add_metric([name], checked_out)
            size.add_metric([name], kept)
        yield in_use
        yield size
        sessions = GaugeMetricFamily("kestrel_active_sessions", "Browser sessions that ran a page in 5 minutes")
        sessions.add_metric([], SESSIONS.count())
        yield sessions


def exposition(state: Collector) -> tuple[bytes, str]:
    """The text format of every series (merged across processes in multiprocess mode) plus ``state``."""
    extra = CollectorRegistry()
    extra.register(state)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged) + generate_latest(extra), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY) + generate_latest(extra), CONTENT_TYPE_LATEST
