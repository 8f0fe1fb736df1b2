"""``python -m crm_core mail-in --host H --port N``: run the inbound SMTP listener until stopped."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from typing import Any

from crm_core.db import Database
from crm_core.i18n import t


def add_commands(commands: Any) -> None:
    """Register ``mail-in`` on the CLI's subparsers."""
    mail_in = commands.add_parser("mail-in", help="receive support mail (SMTP) and file it as cases")
    mail_in.add_argument("--host", default="127.0.0.1")
    mail_in.add_argument("--port", type=int, default=8025)
    mail_in.set_defaults(handler=cmd_mail_in)


def cmd_mail_in(args: argparse.Namespace, db: Database) -> int:
    """Serve until SIGINT/SIGTERM; each message is filed as it arrives."""
    from crm_core.cli import cli_language
    from crm_core.mail.listener import make_controller

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    controller = make_controller(db, args.host, args.port)
    controller.start()
    print(t("cli.mail_in.listening", cli_language(), host=args.host, port=args.port), flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        controller.stop()
    return 0
