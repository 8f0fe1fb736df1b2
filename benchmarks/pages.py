"""``python -m benchmarks pages``: every everyday page's rerun time at 1M customers, per role, beside its SQL.

1. Full script runs (AppTest, the real ``app.py`` with its frame and the page): for a rep, a
   manager and an admin, each page of their menu is opened once, then rerun ``--runs`` times
   (a rerun is what a click costs). Prints p50/p95 of the run, the time the run spent in SQL
   (cursor execute, summed per run: a streaming query's rows fetched later count as the rest) and
   the rest (Python: Streamlit, the page, the
   rules). Target (issue 11): p50 under 300 ms.
2. ``--sessions N`` (default 10) logged-in sessions through the real host (``python -m server``, as
   ``make run``) click through Dashboard → Customers → a grid search → a Customer 360 → Pipeline →
   Tasks at the same time, for ``--rounds`` rounds. ``--driver stream`` (default, decision 0061)
   drives Streamlit's websocket without a browser, once per ``--think`` value (default 2 s between
   clicks, as a person reads a page, then 0 s: every session clicks again at once), each step timed
   from the request to the run's end; ``--driver chromium`` walks real browsers, click → page shown.
   Prints p50/p95/max per page and overall. Target (issue 11): p95 under 1 s with 10 sessions.

The database is only read (logins write the login time of the demo users, as real logins do).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine

from benchmarks.grid import demo_actors, largest_tenant, percentile
from benchmarks.server import free_port, wait_until_up
from crm_core.db import open_database
from crm_core.demo import DEMO_PASSWORD
from crm_core.models import Customer
from crm_ui.navigation import pages_for

ROOT = Path(__file__).resolve().parents[1]
TARGET_P50_MS = 300.0
TARGET_P95_MS = 1000.0
CHROMIUM = "/usr/bin/chromium"
HOST_CORE = 0  # part 2: the core the host has to itself (the browsers get the others)


class SqlClock:
    """Time spent in SQL by this process (every engine), between :meth:`reset` calls."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started: dict[int, float] = {}
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, cursor: Any, *_: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, *_: Any) -> None:
        started = self._started.pop(id(cursor), None)
        if started is not None:
            self.total += time.perf_counter() - started

    def reset(self) -> float:
        spent, self.total = self.total, 0.0
        return spent * 1000


@dataclass
class PageFigures:
    role: str
    page: str
    p50: float
    p95: float
    sql: float


def log_in(username: str, password: str) -> Any:
    from streamlit.testing.v1 import AppTest

    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
    app.run()
    if not any(w.label == "Username" for w in app.text_input):
        raise RuntimeError("no login form: " + " ".join(e.value for e in app.error)
                           + " (an outdated database needs `python -m crm_core --database-url URL init`)")
    next(w for w in app.text_input if w.label == "Username").input(username)
    next(w for w in app.text_input if w.label == "Password").input(password)
    next(b for b in app.button if b.label == "Log in").click()
    app.run()
    if app.exception or not any(b.label == "Log out" for b in app.button):
        raise RuntimeError(f"{username} could not log in: {app.exception or [e.value for e in app.error]}")
    return app


def full_script_runs(database_url: str, roles: list[str], runs: int, password: str) -> list[PageFigures]:
    """Part 1: every page of each role's menu, opened once and rerun ``runs`` times."""
    os.environ["CRM_DATABASE_URL"] = database_url
    os.environ.setdefault("CRM_COOKIE_KEY", "benchmark-cookie-key-0123456789abcdef")
    os.chdir(ROOT)
    for name in list(logging.root.manager.loggerDict):  # AppTest's "missing ScriptRunContext" lines
        if name.startswith("streamlit"):
            logging.getLogger(name).setLevel(logging.ERROR)
    db = open_database(database_url)
    tenant_id, _ = largest_tenant(db)
    actors = demo_actors(db, tenant_id)
    clock = SqlClock()
    figures: list[PageFigures] = []
    print(f"{'role':<8} {'page':<28} {'p50':>7} {'p95':>7} {'SQL p50':>8} {'other':>7}")
    for role in roles:
        actor = actors.get(role)
        if actor is None:
            continue
        with db.session(actor) as session:  # a customer this role sees, with the most history
            customer_id = session.scalar(select(Customer.id).order_by(Customer.updated_at.desc()).limit(1))
        app = log_in(actor.username, password)
        for spec in pages_for(actor.role):
            if spec.path == "pages/customer_profile.py":
                app.query_params["customer_id"] = str(customer_id)
            app.switch_page(spec.path)
            app.run()  # the first opening (caches filled), not counted
            if app.exception:
                print(f"{role:<8} {spec.url_path:<28} failed: {app.exception[0].message[:80]}")
                continue
            timings, sql = [], []
            for _ in range(runs):
                clock.reset()
                started = time.perf_counter()
                app.run()
                timings.append((time.perf_counter() - started) * 1000)
                sql.append(clock.reset())
            row = PageFigures(role, spec.url_path, statistics.median(timings), percentile(timings, 0.95),
                              statistics.median(sql))
            figures.append(row)
            flag = "" if row.p50 < TARGET_P50_MS else "  ✗"
            print(f"{role:<8} {spec.url_path:<28} {row.p50:7.0f} {row.p95:7.0f} {row.sql:8.0f} "
                  f"{row.p50 - row.sql:7.0f}{flag}")
            app.query_params.pop("customer_id", None)
    return figures


# --- part 2: concurrent sessions through the real host --------------------------------------------

STEPS = ("dashboard", "customers", "search", "customer", "pipeline", "tasks")


async def settled(page: Any, heading: str, timeout_ms: int = 60_000) -> None:
    """The app's script run is over and the page's heading is shown."""
    await page.wait_for_function(
        """() => { const app = document.querySelector('[data-testid="stApp"]');
                   return app && app.getAttribute('data-test-script-state') === 'notRunning'
                     && !document.querySelector('[data-stale="true"]'); }""",
        timeout=timeout_ms)
    await page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=timeout_ms)


async def one_session(browser: Any, url: str, username: str, password: str, rounds: int, term: str,
                      customer: tuple[int, str], timings: dict[str, list[float]], errors: list[str],
                      delay: float = 0.0) -> None:
    """One user's walk, begun ``delay`` seconds in; ``customer`` is one of theirs (the 360 step opens it by its link).
    The first page load (Streamlit's scripts, a few MB each browser parses) may take up to two minutes."""
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    page = await context.new_page()
    step = "login"
    try:
        await page.goto(url, timeout=120_000)
        await page.get_by_role("textbox", name="Username").fill(username)
        await page.get_by_role("textbox", name="Password").fill(password)
        started = time.perf_counter()
        await page.get_by_role("button", name="Log in").click()
        await settled(page, "Dashboard")
        timings["login → dashboard"].append((time.perf_counter() - started) * 1000)
        sidebar = page.locator('[data-testid="stSidebarNav"]')
        for _ in range(rounds):
            for step in STEPS:  # noqa: B007 - the step in progress is named when it fails
                started = time.perf_counter()
                if step == "search":
                    box = page.get_by_role("textbox", name="Search", exact=True)
                    await box.fill(term)
                    await box.press("Enter")
                    await settled(page, "Customers")
                elif step == "customer":
                    await page.goto(f"{url}/customer?customer_id={customer[0]}")
                    await settled(page, customer[1])
                else:
                    title = {"dashboard": "Dashboard", "customers": "Customers", "pipeline": "Pipeline",
                             "tasks": "Tasks"}[step]
                    await sidebar.get_by_role("link", name=title).click()
                    await settled(page, title)
                timings[step].append((time.perf_counter() - started) * 1000)
    except Exception as error:  # reported with the figures: a session that failed is a finding
        errors.append(f"{username} at {step}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
    finally:
        await context.close()


async def concurrent_sessions(url: str, users: list[tuple[str, tuple[int, str]]], password: str, rounds: int,
                              term: str, ramp: float = 0.0) -> tuple[dict[str, list[float]], list[str]]:
    """Every user's walk at once; with ``ramp`` (s) the sessions start that far apart, as users arrive."""
    from playwright.async_api import async_playwright

    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=["--headless", "--no-sandbox", "--disable-gpu"])
        await asyncio.gather(*(one_session(browser, url, user, password, rounds, term, customer, timings, errors,
                                           delay=index * ramp)
                               for index, (user, customer) in enumerate(users)))
        await browser.close()
    return timings, errors


async def stream_session(url: str, username: str, cookie_key: str, rounds: int, term: str, customer: tuple[int, str],
                         timings: dict[str, list[float]], errors: list[str], delay: float = 0.0,
                         think: float = 0.0) -> None:
    """The same walk as :func:`one_session`, over Streamlit's websocket without a browser (``stream_driver``).

    The session logs in with the host's signed cookie, as a returning user; each step is timed from the
    request to the run's end, and passes when the page's heading was drawn without an exception element.
    ``think``: mean seconds a user looks at a page before the next click (0: at once)."""
    from benchmarks.stream_driver import SessionFailed, StreamSession
    from crm_core.config import COOKIE_NAME
    from crm_ui.session_cookie import cookie_value

    await asyncio.sleep(delay)
    pace = random.Random(username + str(delay))
    step = "login"
    try:
        async with StreamSession(url, f"{COOKIE_NAME}={cookie_value(username, cookie_key)}") as session:
            run = await session.open()
            expect(run.headings, "Dashboard")
            timings["login → dashboard"].append(run.seconds * 1000)
            for _ in range(rounds):
                for step in STEPS:  # noqa: B007 - the step in progress is named when it fails
                    if think:
                        await asyncio.sleep(pace.uniform(0.5, 1.5) * think)
                    if step == "search":
                        widgets = {session.widget(run, "customers_search"): term}
                        run = await session.open("customers", widgets=widgets)
                        expect(run.headings, "Customers")
                    elif step == "customer":
                        run = await session.open("customer", query=f"customer_id={customer[0]}")
                        expect(run.headings, customer[1])
                    else:  # the landing page (the Dashboard) is served at the root, as the menu links it
                        run = await session.open("" if step == "dashboard" else step)
                        expect(run.headings, step.capitalize())
                    timings[step].append(run.seconds * 1000)
    except (SessionFailed, OSError, TimeoutError) as error:  # reported with the figures
        errors.append(f"{username} at {step}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")


def expect(headings: list[str], heading: str) -> None:
    from benchmarks.stream_driver import SessionFailed

    if heading not in [re.sub(r"\\(.)", r"\1", shown) for shown in headings]:  # user text arrives escaped
        raise SessionFailed(f"the page drew {headings[:3]}, not {heading!r}")


async def stream_sessions(url: str, users: list[tuple[str, tuple[int, str]]], cookie_key: str, rounds: int,
                          term: str, ramp: float = 0.0, think: float = 0.0
                          ) -> tuple[dict[str, list[float]], list[str]]:
    """Every user's walk at once over websockets (:func:`concurrent_sessions` without the browsers)."""
    timings: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    await asyncio.gather(*(stream_session(url, user, cookie_key, rounds, term, customer, timings, errors,
                                          delay=index * ramp, think=think)
                           for index, (user, customer) in enumerate(users)))
    return timings, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def walkers(database_url: str, sessions: int) -> tuple[list[tuple[str, tuple[int, str]]], str] | None:
    """Who walks: ``sessions`` demo reps and managers of the largest tenant (repeated when fewer), each with one
    of their own customers for the 360 step, and the grid search's term; None when there are none.

    The walk reads English headings and links: demo users whose saved language is Chinese (a ``--locale zh_CN``
    demo) are switched to English first, as each of them could do on the login page.
    """
    db = open_database(database_url)
    tenant_id, _ = largest_tenant(db)
    with db.engine.begin() as connection:
        switched = connection.execute(text(
            "UPDATE users SET language = 'en' WHERE tenant_id = :t AND username LIKE 'demo.%' AND language <> 'en'"),
            {"t": tenant_id}).rowcount
    if switched:
        print(f"{switched} demo users' saved language set to English for the walk")
    with db.system_session("benchmark") as session:
        users = session.execute(text(
            "SELECT id, username FROM users WHERE tenant_id = :t AND is_active AND role IN ('rep', 'manager') "
            "AND username LIKE 'demo.%' ORDER BY role DESC, id LIMIT :n"), {"t": tenant_id, "n": sessions}).all()
        name = session.scalar(select(Customer.name).where(Customer.tenant_id == tenant_id).offset(777).limit(1))
        chosen: list[tuple[str, tuple[int, str]]] = []
        for user_id, username in users:  # each user opens a 360 of one of their own customers
            own = session.execute(select(Customer.id, Customer.name).where(
                Customer.tenant_id == tenant_id, Customer.owner_id == user_id).limit(1)).first()
            if own is not None:
                chosen.append((username, (own[0], own[1])))
    db.engine.dispose()
    if not chosen:
        return None
    return [chosen[i % len(chosen)] for i in range(sessions)], (name or "Trading").split()[0][:6]


def under_load(database_url: str, sessions: int, rounds: int, password: str, *, split_cores: bool,
               driver: str = "stream", thinks: tuple[float, ...] = (0.0,)) -> None:
    """Part 2: ``sessions`` logged-in sessions at once through the real host, once per think time in ``thinks``.

    ``driver``: ``stream`` drives Streamlit's websocket without a browser (decision 0061), ``chromium`` real
    browsers through Playwright (no think time). ``split_cores``: the host runs on core 0 and the clients (this
    process, and with Chromium Playwright's driver, whose children inherit it) on the other cores, as when each
    user's browser runs on the user's own machine (decision 0036); otherwise all of them share every core.
    """
    if driver == "chromium" and not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} not found: the concurrent-session figures are skipped")
        return
    walk = walkers(database_url, sessions)
    if walk is None:
        print("no demo reps or managers to log in as: the concurrent-session figures are skipped")
        return
    chosen, term = walk
    port = free_port()
    key = "benchmark-cookie-key-0123456789abcdef"
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "CRM_COOKIE_KEY": key}
    clients = "websocket clients" if driver == "stream" else "browsers"
    with tempfile.TemporaryDirectory() as directory:
        log = Path(directory) / "host.log"
        with log.open("wb") as output:
            pin = ["taskset", "-c", str(HOST_CORE)] if split_cores else []  # taskset execs: the pid is the host's
            host = subprocess.Popen([*pin, sys.executable, "-m", "server", "--port", str(port)], cwd=ROOT, env=env,
                                    stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        own_cores = os.sched_getaffinity(0)
        try:
            wait_until_up(url, host)
            if split_cores:
                os.sched_setaffinity(0, own_cores - {HOST_CORE})
            if driver == "stream":  # the first walk after a start imports the pages and fills the caches
                first, first_errors = asyncio.run(stream_sessions(url, chosen[:1], key, 1, term))
                print(f"first walk after the host's start, one session: {sum(map(sum, first.values())):.0f} ms "
                      f"for {sum(map(len, first.values()))} pages {' '.join(first_errors)}")
            for think in thinks if driver == "stream" else (0.0,):
                started, cpu_before, runs_before = time.perf_counter(), cpu_seconds(host.pid), page_runs(url)
                if driver == "stream":
                    timings, errors = asyncio.run(stream_sessions(url, chosen, key, rounds, term, think=think))
                else:
                    timings, errors = asyncio.run(concurrent_sessions(url, chosen, password, rounds, term))
                elapsed, host_cpu = time.perf_counter() - started, cpu_seconds(host.pid) - cpu_before
                runs = {bound: count - runs_before.get(bound, 0) for bound, count in page_runs(url).items()}
                print(f"{sessions} sessions ({len({user for user, _ in chosen})} users), {rounds} rounds of "
                      f"{' → '.join(STEPS)}, search {term!r}, each user's own customer's 360"
                      + (f", {think:g} s mean think time" if think else ", no think time")
                      + f": {elapsed:.0f} s; the host used {host_cpu:.0f} s of CPU "
                      f"({100 * host_cpu / elapsed:.0f} % of one core; "
                      + (f"the host alone on core {HOST_CORE}, the {clients} on the others)" if split_cores
                         else f"the {clients} share its cores)"))
                report_walk(timings, errors, runs, split_cores=split_cores)
        finally:
            os.sched_setaffinity(0, own_cores)
            os.killpg(host.pid, 15)
            host.wait(timeout=60)


def report_walk(timings: dict[str, list[float]], errors: list[str], runs: dict[float, float], *,
                split_cores: bool) -> None:
    """One walk's table: each step's p50/p95/max, every click's, and the host's own page-run histogram."""
    print(f"{'step':<20} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7}")
    every: list[float] = []
    for step, values in timings.items():
        every.extend(values if step != "login → dashboard" else [])
        print(f"{step:<20} {len(values):4d} {statistics.median(values):7.0f} {percentile(values, 0.95):7.0f} "
              f"{max(values):7.0f}")
    if every:
        p95 = percentile(every, 0.95)
        print(f"{'every click':<20} {len(every):4d} {statistics.median(every):7.0f} {p95:7.0f} {max(every):7.0f}"
              f"   target p95 < {TARGET_P95_MS:.0f} ms: {'met' if p95 < TARGET_P95_MS else 'NOT met'}")
    total = max(runs.values(), default=0)
    if total:  # the host's own clock: a page's script run, from the click reaching the host to its last element
        p95_bound = bucket_at(runs, 0.95)
        verdict = ""
        if split_cores:  # the server's share of a click, with the browsers off its core: what the target is about
            met = p95_bound != "∞" and float(p95_bound.split()[0]) <= TARGET_P95_MS
            verdict = f"   target p95 < {TARGET_P95_MS:.0f} ms: {'met' if met else 'NOT met'}"
        print(f"{'host page runs':<20} {total:4.0f}  p50 ≤ {bucket_at(runs, 0.5)}  p95 ≤ {p95_bound}"
              f"  (kestrel_page_run_seconds during the walk, by histogram bucket){verdict}")
    for error in errors:
        print(f"error: {error}")


def page_runs(url: str) -> dict[float, float]:
    """Script runs of every page so far by upper bound (s), cumulative, from the host's ``/metrics``."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        body = response.read().decode()
    found: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(body):
        if family.name == "kestrel_page_run_seconds":
            for sample in family.samples:
                if sample.name.endswith("_bucket"):
                    found[float(sample.labels["le"])] += sample.value
    return dict(found)


def bucket_at(cumulative: dict[float, float], share: float) -> str:
    """The smallest bucket bound holding ``share`` of the runs, in ms ('> last bound' past the last)."""
    total = max(cumulative.values())
    for bound in sorted(cumulative):
        if cumulative[bound] >= share * total:
            return "∞" if bound == float("inf") else f"{bound * 1000:.0f} ms"
    return "∞"


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0 (figures are reported, not asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks pages", description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("CRM_DATABASE_URL", "sqlite:////work/bench/crm-1m.db"))
    parser.add_argument("--roles", default="rep,manager,admin")
    parser.add_argument("--runs", type=int, default=7, help="reruns per page (after the first opening)")
    parser.add_argument("--sessions", type=int, default=10, help="concurrent logged-in sessions (0: skip)")
    parser.add_argument("--driver", choices=("stream", "chromium"), default="stream",
                        help="stream: Streamlit's websocket without a browser (decision 0061); chromium: browsers")
    parser.add_argument("--think", default="2,0",
                        help="stream driver: mean seconds between a page shown and the next click, one walk per "
                             "value (default 2 s, as a person reads a page, then 0: every click at once)")
    parser.add_argument("--skip-reruns", action="store_true", help="part 2 only")
    parser.add_argument("--rounds", type=int, default=2, help="walks through the pages per session")
    parser.add_argument("--password", default=os.environ.get("CRM_BENCH_PASSWORD", DEMO_PASSWORD))
    parser.add_argument("--shared-cores", action="store_true",
                        help="let the clients share the host's core (default: host on core 0, clients on the rest)")
    args = parser.parse_args(argv)

    if not args.skip_reruns:
        print(f"1. full script reruns at {args.database_url} (AppTest, ms; target p50 < {TARGET_P50_MS:.0f})")
        figures = full_script_runs(args.database_url, [r for r in args.roles.split(",") if r], args.runs,
                                   args.password)
        if figures:
            worst = max(figures, key=lambda row: row.p50)
            over = [f"{row.role}/{row.page}" for row in figures if row.p50 >= TARGET_P50_MS]
            print(f"slowest: {worst.role}/{worst.page} p50 {worst.p50:.0f} ms; over target: "
                  f"{', '.join(over) or 'none'}")
    if args.sessions > 0:
        shown = "request → run over" if args.driver == "stream" else "click → page shown"
        print(f"\n2. {args.sessions} concurrent {args.driver} sessions through the real host (ms, {shown})")
        split = not args.shared_cores and len(os.sched_getaffinity(0)) > 1
        under_load(args.database_url, args.sessions, args.rounds, args.password, split_cores=split,
                   driver=args.driver, thinks=tuple(float(value) for value in args.think.split(",") if value))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
