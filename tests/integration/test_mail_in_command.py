"""``python -m crm_core mail-in`` as an operator runs it: a subprocess that listens, files a message
from a known contact as a case, refuses a stranger, and stops on SIGINT with status 0."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from crm_core.db import open_database
from crm_core.models import Case
from crm_core.services import auth, contacts
from tests.factories import create_random_customer
from tests.hosting import ROOT
from tests.integration.test_email_to_case import free_port


def mail(sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["Subject"] = "Printer broken"
    email["Message-ID"] = "<cli-1@example.test>"
    email.set_content("It jams.")
    return email


def test_the_command_files_mail_and_stops_on_sigint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    subprocess.run([sys.executable, "-m", "crm_core", "--database-url", url, "init", "--tenant-slug", "acme"],
                   cwd=ROOT, check=True, capture_output=True)
    db = open_database(url)
    admin = auth.load_actor(db, "admin")
    assert admin is not None
    customer_id = create_random_customer(db, admin)
    contacts.create_contact(db, admin, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                             email="li@example.test"))
    port = free_port()
    listener = subprocess.Popen([sys.executable, "-m", "crm_core", "--database-url", url, "mail-in", "--host",
                                 "127.0.0.1", "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        assert listener.stdout is not None
        assert f"127.0.0.1:{port}" in listener.stdout.readline()
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(mail("li@example.test"), to_addrs=["support+acme@example.test"])
        with pytest.raises(smtplib.SMTPDataError) as refused, smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.send_message(mail("stranger@example.test"), to_addrs=["support+acme@example.test"])
        assert refused.value.smtp_code == 550
        listener.send_signal(signal.SIGINT)
        assert listener.wait(timeout=20) == 0
        _, errors = listener.communicate()
        assert "unknown sender" in errors
        assert "Traceback" not in errors
    finally:
        if listener.poll() is None:
            listener.kill()
            listener.wait()
    with db.system_session("test") as session:
        cases = session.execute(select(Case.subject, Case.channel, Case.customer_id)).all()
    db.engine.dispose()
    assert cases == [("Printer broken", "email", customer_id)]
