"""``python -m benchmarks cluster``: logged-in sessions through nginx to one, then two app replicas (issue 15).

Starts ``scripts/cluster.sh`` as ``make cluster`` does (nginx sticky by its cookie, the app replicas, Redis; no
job workers, so no scheduled job runs during the walk) on a PostgreSQL database (default: the 1M demo database
``kestrel_1m``), first with one replica, then with two. Each time ``--sessions`` logged-in sessions go through
nginx and walk ``benchmarks.pages``' steps (Dashboard → Customers → a grid search → one of the user's customers'
360 → Pipeline → Tasks) ``--rounds`` times at once. Printed per topology: every click's p50/p95 (request → the
page's run over and its heading drawn), clicks per second, errors; then two replicas' throughput against one's.
Targets: p95 < 1.5 s and no error with 40 sessions; two replicas ≥ 1.7× one's throughput.

``--driver stream`` (default) drives Streamlit's websocket without a browser (decision 0061): on this 2-core
machine 40 Chromium pages cost more CPU than the replicas do (decision 0036), so ``--driver chromium`` measures
the browsers more than the replicas. Each websocket is one session on one replica (nginx picks it per
connection, as it does per browser). The figures are reported, not asserted (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.grid import percentile
from benchmarks.pages import concurrent_sessions, stream_sessions, walkers
from benchmarks.server import free_port
from crm_core.demo import DEMO_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
COOKIE_KEY = "cluster-benchmark-cookie-key-0123456789abcdef"  # every replica's (scripts/cluster.sh passes it on)
TARGET_P95_MS = 1500.0
TARGET_SCALING = 1.7


@dataclass(frozen=True)
class Walk:
    """One topology's walk: every click's time (ms), the walk's wall time (s), its errors."""

    replicas: int
    clicks: list[float]
    seconds: float
    errors: list[str]

    @property
    def per_second(self) -> float:
        return len(self.clicks) / self.seconds if self.seconds else 0.0


def start_cluster(database_url: str, replicas: int, run_dir: Path,
                  settings: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """``scripts/cluster.sh`` with ``replicas`` app processes (``settings``: more of its environment, e.g.
    ``DEMO=0``); returns it and nginx's URL once it says it serves."""
    port = free_port()
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_COOKIE_KEY": COOKIE_KEY, "PORT": str(port),
           "WORKERS": "0", "DEMO": "1",
           "RUN_DIR": str(run_dir), "APP_PORTS": " ".join(str(free_port()) for _ in range(replicas)),
           **(settings or {})}
    log = run_dir / "cluster.log"
    with log.open("wb") as output:
        cluster = subprocess.Popen(["bash", "scripts/cluster.sh"], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while "Kestrel CRM on http://" not in log.read_text(errors="replace"):
        if cluster.poll() is not None or time.monotonic() > deadline:
            stop_cluster(cluster)
            raise RuntimeError(f"the cluster did not start; its log:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)
    return cluster, f"http://127.0.0.1:{port}"


def stop_cluster(cluster: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a user stops ``make cluster``: the script stops everything it started."""
    if cluster.poll() is None:
        os.killpg(cluster.pid, signal.SIGINT)
    try:
        cluster.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(cluster.pid, signal.SIGKILL)
        cluster.wait()


def walk(database_url: str, replicas: int, sessions: int, rounds: int, password: str, ramp: float,
         driver: str = "stream", think: float = 0.0) -> Walk | None:
    chosen = walkers(database_url, sessions)
    if chosen is None:
        print("no demo reps or managers to log in as: nothing to walk")
        return None
    users, term = chosen
    with tempfile.TemporaryDirectory() as directory:
        cluster, url = start_cluster(database_url, replicas, Path(directory))
        try:
            started = time.perf_counter()
            if driver == "stream":
                timings, errors = asyncio.run(stream_sessions(url, users, COOKIE_KEY, rounds, term, ramp, think))
            else:
                timings, errors = asyncio.run(concurrent_sessions(url, users, password, rounds, term, ramp))
            seconds = time.perf_counter() - started
        finally:
            stop_cluster(cluster)
    clicks = [value for step, values in timings.items() if step != "login → dashboard" for value in values]
    return Walk(replicas, clicks, seconds, errors)


def report(result: Walk) -> None:
    if not result.clicks:
        print(f"{result.replicas} replica(s): no click completed")
    else:
        p95 = percentile(result.clicks, 0.95)
        verdict = "met" if p95 < TARGET_P95_MS and not result.errors else "NOT met"
        print(f"{result.replicas} replica(s): {len(result.clicks)} clicks in {result.seconds:.0f} s = "
              f"{result.per_second:.2f} clicks/s; p50 {statistics.median(result.clicks):.0f} ms, p95 {p95:.0f} ms, "
              f"max {max(result.clicks):.0f} ms; {len(result.errors)} errors   "
              f"target p95 < {TARGET_P95_MS:.0f} ms, no errors: {verdict}", flush=True)
    for error in result.errors:
        print(f"  error: {error}")


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0 (reported, not asserted), 2 when nginx or Chromium is missing."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks cluster", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get(
        "CRM_BENCH_CLUSTER_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/kestrel_1m"))
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ramp", type=float, default=1.0,
                        help="seconds between two sessions' starts (40 first page loads at once time out here)")
    parser.add_argument("--password", default=os.environ.get("CRM_BENCH_PASSWORD", DEMO_PASSWORD))
    parser.add_argument("--driver", choices=("stream", "chromium"), default="stream",
                        help="stream: Streamlit's websocket without a browser (decision 0061); chromium: browsers")
    parser.add_argument("--think", type=float, default=0.0,
                        help="stream driver: mean seconds between a page shown and the next click (0: at once)")
    args = parser.parse_args(argv)
    tools = ("/usr/sbin/nginx", "/usr/bin/chromium") if args.driver == "chromium" else ("/usr/sbin/nginx",)
    for tool in tools:
        if not Path(tool).exists():
            print(f"{tool} not found: install Debian's nginx and chromium (sudo apt-get install -y nginx chromium)",
                  file=sys.stderr)
            return 2
    print(f"{args.sessions} {args.driver} sessions × {args.rounds} round(s) through nginx, one starting every "
          f"{args.ramp:g} s, " + (f"{args.think:g} s mean think time" if args.think else "no think time")
          + f"; {os.cpu_count()} cores shared by the replicas and the clients; "
          f"database {args.database_url}", flush=True)
    results = [result for replicas in (1, 2)
               if (result := walk(args.database_url, replicas, args.sessions, args.rounds, args.password,
                                     args.ramp, args.driver, args.think))]
    for result in results:
        report(result)
    if len(results) == 2 and results[0].per_second:
        scaling = results[1].per_second / results[0].per_second
        print(f"two replicas: {scaling:.2f}× one replica's clicks per second   target ≥ {TARGET_SCALING}×: "
              f"{'met' if scaling >= TARGET_SCALING else 'NOT met'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
