"""``python -m benchmarks server``: the real web host's memory while it serves the big pages.

Starts the host as ``make run`` does (``python -m server``: uvicorn serving ``server:app``) on
the given database (default: the shared 1,000,000-customer ``/work/bench/crm-1m.db``, only
read), waits for its ``/healthz``, logs in through Debian's Chromium as the demo manager and
opens the Dashboard, the Customers grid (then a search and a filter), the Funnel, and the
Customers grid again, reading the server's resident memory (VmRSS) after each page and its
peak (VmHWM) at the end. Target (issue 3): under 500 MB while serving them. Each page's time
from click to rendered heading is printed too (browser round trip included).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
TARGET_MB = 500.0
REPLICA_BASE_MB = 80.0  # issue 15: a replica's memory over the stack floor, before any session
PER_SESSION_MB = 5.0
STACK = "import streamlit, fastapi, uvicorn, sqlalchemy.orm, pandas, numpy, plotly.graph_objects"  # GX: the worker


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values["VmRSS"], values["VmHWM"]


def stack_floor_mb() -> float:
    """The resident memory of a bare interpreter once it has imported the stack the host runs on."""
    probe = f"{STACK}\nfrom pathlib import Path\nprint(next(line.split()[1] for line in "
    probe += "Path('/proc/self/status').read_text().splitlines() if line.startswith('VmRSS')))"
    return int(subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout) / 1024


def wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    """Poll the host's ``/healthz`` until it answers 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the host exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"the host did not answer /healthz within {timeout:g} s")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks server", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("CRM_DATABASE_URL", "sqlite:////work/bench/crm-1m.db"))
    parser.add_argument("--username", default="demo.manager")
    parser.add_argument("--password", default=os.environ.get("CRM_DEMO_PASSWORD", "Kestrel-demo-2026"))
    parser.add_argument("--sessions", type=int, default=0, help="then hold N more logged-in sessions open")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: install Debian's chromium (make browser)", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ, "CRM_DATABASE_URL": args.database_url,
           "CRM_COOKIE_KEY": os.environ.get("CRM_COOKIE_KEY", "benchmark-cookie-key-0123456789abcdef")}
    root = Path(__file__).resolve().parent.parent
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    failures = 0
    try:
        wait_until_up(url, server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
            page.goto(url)
            print(f"server pid {server.pid} on {args.database_url}; after start: {memory_mb(server.pid)[0]:.0f} MB")
            page.get_by_role("textbox", name="Username").fill(args.username)
            page.get_by_role("textbox", name="Password").fill(args.password)
            started = time.perf_counter()
            page.get_by_role("button", name="Log in").click()
            page.get_by_role("heading", name="Dashboard").wait_for(timeout=60_000)
            steps = [("log in → Dashboard", time.perf_counter() - started)]
            print(f"{'step':<34} {'seconds':>8} {'RSS MB':>8}")
            print(f"{steps[0][0]:<34} {steps[0][1]:8.2f} {memory_mb(server.pid)[0]:8.0f}")

            def visit(label: str, path: str, heading: str) -> None:
                began = time.perf_counter()
                page.goto(f"{url}/{path}")
                page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
                page.wait_for_load_state("networkidle")
                print(f"{label:<34} {time.perf_counter() - began:8.2f} {memory_mb(server.pid)[0]:8.0f}")

            visit("Customers", "customers", "Customers")
            began = time.perf_counter()
            page.get_by_text("customers match").first.wait_for(timeout=60_000)
            search = page.get_by_role("textbox", name="Search").first
            search.fill("Krist")
            search.press("Enter")
            page.wait_for_timeout(200)  # the rerun starts; wait until Streamlit's "running" badge goes
            page.locator('[data-testid="stStatusWidget"]').wait_for(state="detached", timeout=60_000)
            page.get_by_text("customers match").first.wait_for(timeout=60_000)
            page.wait_for_load_state("networkidle")
            print(f"{'Customers: search Krist':<34} {time.perf_counter() - began:8.2f} {memory_mb(server.pid)[0]:8.0f}")
            visit("Funnel", "funnel", "Sales funnel")
            visit("Dashboard", "dashboard", "Dashboard")
            visit("Customers again", "customers", "Customers")
            rss, peak = memory_mb(server.pid)
            verdict = "ok" if peak < TARGET_MB else "OVER"
            failures += peak >= TARGET_MB
            print(f"Web host: RSS now {rss:.0f} MB, peak {peak:.0f} MB (target < {TARGET_MB:.0f} MB) {verdict}")
            if args.sessions > 0:
                failures += hold_sessions(browser, url, server.pid, args, rss)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 1 if failures else 0


def hold_sessions(browser: Any, url: str, pid: int, args: argparse.Namespace, before: float) -> int:
    """Log ``args.sessions`` more users in, each left on the Customers grid; print the memory per session against
    issue 15's budget. Returns 1 when the host is over it."""
    floor = stack_floor_mb()
    began = time.perf_counter()
    for _ in range(args.sessions):
        page = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US").new_page()
        page.goto(url)
        page.get_by_role("textbox", name="Username").fill(args.username)
        page.get_by_role("textbox", name="Password").fill(args.password)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("heading", name="Dashboard").wait_for(timeout=120_000)
        deadline = time.monotonic() + 60  # the host sets the login cookie once the page has fetched its pixel
        while not any(c["name"] == "kestrel_session" for c in page.context.cookies()) and time.monotonic() < deadline:
            page.wait_for_timeout(100)
        page.goto(f"{url}/customers")
        page.get_by_text("customers match").first.wait_for(timeout=120_000)
    rss = memory_mb(pid)[0]
    sessions = args.sessions + 1  # and the walk's own, still open
    budget = floor + REPLICA_BASE_MB + PER_SESSION_MB * sessions
    per_session = (rss - before) / args.sessions
    print(f"{args.sessions} more sessions logged in and on the grid in {time.perf_counter() - began:.1f} s: "
          f"RSS {rss:.0f} MB, {per_session:.1f} MB per added session")
    print(f"budget (issue 15): stack floor {floor:.0f} MB + {REPLICA_BASE_MB:.0f} MB + {PER_SESSION_MB:.0f} MB × "
          f"{sessions} sessions = {budget:.0f} MB: {'ok' if rss <= budget else 'OVER'}")
    return int(rss > budget)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
