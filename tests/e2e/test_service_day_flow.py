"""In Chromium, a support team's day (issue 13): a customer's email arrives at the mail-in listener →
the case appears in the team's queue, assigned, with its SLA countdown → the agent replies with a
macro and a file (the reply reaches the customer by SMTP, the file attached) → resolves → the customer
rates it from the link in the resolution mail → the manager's service dashboard counts the rating.

Everything runs as ``make run`` runs it: the host, a job worker and ``python -m crm_core mail-in``,
each its own process on one SQLite database; outbound mail goes to a local aiosmtpd sink.
"""

from __future__ import annotations

import os
import re
import signal
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.models import Case, Customer, User
from crm_core.services import contacts, macros, sla_settings
from tests.e2e.conftest import (
    ROOT,
    Server,
    log_in,
    open_page,
    pick_option,
    prepare_database,
    screenshot,
    settled,
)
from tests.e2e.workers import start_worker
from tests.factories import World, tenant_slug
from tests.hosting import free_port, start_host
from tests.mail_sink import Sink, running_sink

pytestmark = pytest.mark.e2e
TIMEOUT = 30_000
PUBLIC_URL = "https://crm.e2e.test"  # what the mail's links say; the test opens them on the host's own address
CSAT_KEY = "e2e-csat-key-0123456789abcdef"
CUSTOMER = "Acme Trading"  # the rep's customer in the e2e world
SUBJECT = "Printer jammed again"


@dataclass
class Desk:
    """The running service desk: the host, where mail comes in, and the sink that receives what goes out."""

    server: Server
    mail_port: int
    sink: Sink
    tenant_slug: str


def start_mail_in(env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """``python -m crm_core mail-in`` on ``port``; returns once it says it listens."""
    with log_path.open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "crm_core", "mail-in", "--port", str(port)], cwd=ROOT,
                                   env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 60
    while "Listening for case mail" not in log_path.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"mail-in did not start:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.1)  # poll its log again
    return process


def set_up_the_desk(db: Database, world: World) -> None:
    """Business hours that never close, a policy per priority, the east team's queue and an English macro."""
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support desk", time_zone="Asia/Shanghai",
                                             hours={str(day): [["00:00", "23:59"]] for day in range(1, 8)})
    for priority, minutes in (("urgent", 60), ("high", 120), ("normal", 240), ("low", 480)):
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=minutes,
            next_response_minutes=minutes, resolution_minutes=minutes * 4))
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="round_robin",
                            calendar_id=calendar_id)
    macros.save_macro(db, world.admin, name="Acknowledge", language="en",
                      body="Hello {contact_name}, case #{case_number} is with me, {agent_name}. We fix it today.")
    with db.system_session("e2e") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == CUSTOMER)).one()
    contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                                 email="li.lei@acme.com"))


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    prepared = prepare_database(tmp_path_factory, "e2e-service")
    set_up_the_desk(prepared.db, prepared.world)
    slug = tenant_slug(prepared.db, prepared.world)
    with running_sink() as (sink, sink_port):
        env = {**prepared.env, "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(sink_port),
               "CRM_MAIL_FROM": "help@kestrel.test", "CRM_PUBLIC_URL": PUBLIC_URL, "CRM_CSAT_KEY": CSAT_KEY,
               "CRM_JOBS_INLINE": ""}  # as make run: a reply asks the worker to send at once
        host = start_host(env, prepared.directory / "server.log")
        worker = start_worker(env, prepared.directory / "worker.log")
        mail_port = free_port()
        mail_in = start_mail_in(env, mail_port, prepared.directory / "mail-in.log")
        try:
            yield Desk(Server(host.url, prepared.db, prepared.world), mail_port, sink, slug)
        finally:
            os.killpg(mail_in.pid, signal.SIGTERM)
            mail_in.wait(timeout=20)
            worker.stop()
            host.stop()
            prepared.engine.dispose()


def wait_for_case(db: Database, subject: str, *, timeout: float = 30.0) -> Case:
    """The case the listener filed for ``subject`` (polled: the listener is another process)."""
    deadline = time.monotonic() + timeout
    while True:
        with db.system_session("e2e check") as session:
            case = session.scalars(select(Case).where(Case.subject == subject)).first()
            if case is not None:
                session.expunge(case)
                return case
        assert time.monotonic() < deadline, f"no case {subject!r} after {timeout:g} s"
        time.sleep(0.1)  # poll the database again


def dashboard_csat(page: object) -> str:
    """The CSAT % good card's value on the service dashboard."""
    card = page.locator('[data-testid="stMetric"]').filter(has_text="CSAT % good")  # type: ignore[attr-defined]
    return str(card.locator('[data-testid="stMetricValue"]').inner_text())


SETTINGS_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(48))


def test_a_support_day_from_an_email_to_a_rated_resolution(desk: Desk, browser) -> None:  # type: ignore[no-untyped-def]
    server, world = desk.server, desk.server.world
    manager_context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US")
    manager = manager_context.new_page()
    log_in(manager, server, world.manager.username)
    open_page(manager, "Service dashboard", "Service dashboard")
    settled(manager)
    assert dashboard_csat(manager) == "—"  # nothing rated yet

    # 1. the customer writes to the tenant's support address
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = "Li Lei <li.lei@acme.com>", "support@acme.com", SUBJECT
    email["Message-ID"] = "<jam-1@acme.com>"
    email.set_content("The printer jams on every second page.\n打印机每隔一页就卡纸。")
    with smtplib.SMTP("127.0.0.1", desk.mail_port, timeout=30) as client:
        client.send_message(email, to_addrs=[f"support+{desk.tenant_slug}@kestrel.test"])
    case = wait_for_case(server.db, SUBJECT)
    assert case.channel == "email" and case.team_id == world.east_team_id and case.assignee_id is not None
    with server.db.system_session("e2e check") as session:
        agent_user = session.get(User, case.assignee_id)
        assert agent_user is not None
        agent_username, agent_name = agent_user.username, agent_user.full_name

    # 2. the assigned agent finds it on the queue's board, with its countdown, and opens it
    context = browser.new_context(viewport={"width": 1400, "height": 1200}, locale="en-US")
    agent = context.new_page()
    log_in(agent, server, agent_username)
    open_page(agent, "Service queue", "Service queue")
    settled(agent)
    agent.get_by_role("radio", name="Board by status").click()  # Streamlit's segmented control
    card = agent.get_by_role("link", name=f"#{case.id}", exact=True)
    card.wait_for(timeout=TIMEOUT)
    agent.get_by_text(SUBJECT, exact=True).wait_for(timeout=TIMEOUT)
    agent.get_by_text(re.compile(r"^in [0-9]+ h [0-9]{2} min$")).first.wait_for(timeout=TIMEOUT)
    screenshot(agent, "service-day-board")
    card.click()
    agent.get_by_role("heading", name=f"#{case.id} {SUBJECT}").wait_for(timeout=TIMEOUT)
    agent.get_by_text("打印机每隔一页就卡纸。", exact=False).first.wait_for(timeout=TIMEOUT)

    # 3. a reply from the macro, in the customer's words; it goes out by SMTP, threaded
    settled(agent)
    pick_option(agent, "Macro", "Acknowledge")
    agent.get_by_role("button", name="Use macro").click()
    reply_box = agent.get_by_role("textbox", name="Reply or note")
    expected = f"Hello Li Lei, case #{case.id} is with me, {agent_name}. We fix it today."
    agent.wait_for_function("(text) => [...document.querySelectorAll('textarea')].some(a => a.value === text)",
                            arg=expected, timeout=TIMEOUT)
    assert reply_box.input_value() == expected
    # with the settings page the customer needs, which goes with the email as an attachment
    agent.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        {"name": "tray-settings.png", "mimeType": "image/png", "buffer": SETTINGS_PNG})
    agent.get_by_text("tray-settings.png").first.wait_for(timeout=TIMEOUT)  # uploaded to the form
    agent.get_by_role("button", name="Save").click()
    agent.get_by_text("Reply recorded.").wait_for(timeout=TIMEOUT)
    # the box is empty again: the browser was given the new text, so the reply cannot go twice by mistake
    agent.wait_for_function("() => [...document.querySelectorAll('textarea')].every(a => a.value === '')",
                            timeout=TIMEOUT)
    [reply] = desk.sink.wait_for(1)
    assert reply["To"] == "li.lei@acme.com" and reply["In-Reply-To"] == "<jam-1@acme.com>"
    text = reply.get_body(("plain",))
    assert text is not None and text.get_content().strip() == expected
    assert [(part.get_filename(), part.get_payload(decode=True)) for part in reply.iter_attachments()] == [
        ("tray-settings.png", SETTINGS_PNG)]
    screenshot(agent, "service-day-replied")

    # 4. resolved: the customer gets the resolution mail with the two rating links
    settled(agent)
    agent.get_by_role("button", name="Resolve", exact=True).click()
    agent.get_by_text("Resolved", exact=True).first.wait_for(timeout=TIMEOUT)
    notice = desk.sink.wait_for(2)[1]
    links = re.findall(re.escape(PUBLIC_URL) + r"/\S+", notice.get_content())
    good = next(link for link in links if link.endswith("score=good"))

    # 5. the customer clicks "good" (the host serves the page; the mail names the public address) and comments
    customer = context.new_page()
    customer.goto(server.url + good.removeprefix(PUBLIC_URL))
    customer.get_by_role("status").wait_for(timeout=TIMEOUT)
    customer.get_by_role("textbox").fill("Fixed the same day, thank you!")
    customer.get_by_role("button").click()
    customer.get_by_role("status").wait_for(timeout=TIMEOUT)
    screenshot(customer, "service-day-csat")

    # 6. the manager's dashboard counts the rating
    manager.reload()
    settled(manager)
    manager.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stMetric"]')]
                 .some(m => m.innerText.includes('CSAT % good') && m.innerText.includes('100'))""", timeout=TIMEOUT)
    assert dashboard_csat(manager).startswith("100")
    screenshot(manager, "service-day-dashboard")
    manager_context.close()
    context.close()
