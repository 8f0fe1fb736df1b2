"""``python -m crm_core import ENTITY FILE …`` and ``python -m crm_core import-revert RUN_ID``.

Same code path as the Imports page (:mod:`crm_core.importing.runner`). Exit codes: 0 when
every row was imported, 1 when rows were rejected (or the file could not be read), 2 for
usage errors (unknown entity, missing file, bad mapping or options). ``--json`` prints one
object: ``status`` (imported / rejected / partial), ``rows_read``, ``created``, ``updated``,
``skipped``, ``rejected``, ``run_id`` and ``failures`` (``expectation``, ``column``,
``count``, ``examples``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import ImportFileRefused, ImportNotAllowed
from crm_core.i18n import t
from crm_core.importing.fields import ENTITIES
from crm_core.importing.mapping import DUPLICATE_ACTIONS, MODES, POLICIES
from crm_core.importing.reading import DEFAULT_CHUNK_ROWS


def _language() -> str:
    from crm_core.cli import cli_language

    return cli_language()


def _usage(message: str) -> Exception:
    from crm_core.cli import UsageError

    return UsageError(message)


def add_parsers(commands: Any) -> None:
    """Add ``import`` and ``import-revert`` to the CLI's subcommands."""
    importing = commands.add_parser("import", help="import a CSV or XLSX file, validated by its GX suite")
    importing.add_argument("entity", help=" | ".join(ENTITIES))
    importing.add_argument("file", help="CSV (UTF-8, UTF-8 BOM, GBK/GB18030; , ; tab |) or XLSX")
    importing.add_argument("--mapping", help='JSON: {"columns": {...}, "values": {...}, "match_on": [...]}')
    importing.add_argument("--mode", default="create", help="create | update | upsert")
    importing.add_argument("--policy", default="all-or-nothing", help="all-or-nothing | skip-invalid")
    importing.add_argument("--duplicates", default="skip", help="skip | merge | create (create mode)")
    importing.add_argument("--as", dest="as_user", help="username to import as (an admin or manager)")
    importing.add_argument("--encoding", help="override the detected encoding")
    importing.add_argument("--delimiter", help="override the detected delimiter")
    importing.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS)
    importing.add_argument("--rejected-csv", help="write the rejected rows, with a reason column, to this CSV")
    importing.add_argument("--json", action="store_true")
    importing.set_defaults(handler=cmd_import)

    revert = commands.add_parser("import-revert", help="undo an import run")
    revert.add_argument("run_id", type=int)
    revert.add_argument("--as", dest="as_user", help="username to act as")
    revert.add_argument("--json", action="store_true")
    revert.set_defaults(handler=cmd_import_revert)


def resolve_actor(db: Database, username: str | None) -> Actor:
    """The ``--as`` user, else the only tenant's first active admin."""
    from crm_core.models import Tenant, User
    from crm_core.services.auth import load_actor

    lang = _language()
    if not username:
        with db.system_session("cli import: default actor") as session:
            tenants = list(session.scalars(select(Tenant.id).where(Tenant.is_active.is_(True))))
            if len(tenants) != 1:
                raise _usage(t("imports.cli.need_as", lang))
            username = session.scalar(
                select(User.username)
                .where(User.tenant_id == tenants[0], User.role == "admin", User.is_active.is_(True))
                .order_by(User.id)
                .limit(1)
            )
        if not username:
            raise _usage(t("imports.cli.need_as", lang))
    actor = load_actor(db, username.strip().lower())
    if actor is None:
        raise _usage(t("imports.error.unknown_user", lang, username=username))
    return actor


def cmd_import(args: argparse.Namespace, db: Database) -> int:
    """Import one file; see the module docstring for the output and exit codes."""
    from crm_core.importing.mapping import ImportMapping, ImportOptions
    from crm_core.importing.reading import open_import_file
    from crm_core.importing.runner import reason_text, rejected_rows_csv, run_import

    lang = _language()
    if args.entity not in ENTITIES:
        raise _usage(t("imports.error.unknown_entity", lang, entity=args.entity, entities=", ".join(ENTITIES)))
    for value, allowed, key in (
        (args.mode, MODES, "mode"),
        (args.policy, POLICIES, "policy"),
        (args.duplicates, DUPLICATE_ACTIONS, "action"),
    ):
        if value not in allowed:
            error_key = {"mode": "unknown_mode", "policy": "unknown_policy", "action": "unknown_duplicates"}[key]
            raise _usage(t(f"imports.error.{error_key}", lang, **{key: value}))
    if args.chunk_size < 100:
        raise _usage(t("imports.cli.bad_chunk", lang))
    path = Path(args.file)
    if not path.is_file():
        raise _usage(t("imports.error.file_missing", lang, path=args.file))
    actor = resolve_actor(db, args.as_user)
    try:
        mapping_text = Path(args.mapping).read_text(encoding="utf-8-sig") if args.mapping else None
    except OSError:
        raise _usage(t("imports.error.file_missing", lang, path=args.mapping)) from None
    try:
        file = open_import_file(path.name, path, encoding=args.encoding, delimiter=args.delimiter)
        mapping = (
            ImportMapping.from_json(mapping_text)
            if mapping_text
            else ImportMapping.suggested(args.entity, file.headers)
        )
        options = ImportOptions(
            mode=args.mode, policy=args.policy, duplicates=args.duplicates, chunk_size=args.chunk_size
        )

        def progress(done: int, total: int | None, message_key: str) -> None:
            if sys.stderr.isatty() and not args.json:
                step = t(message_key, lang)
                print(f"\r{step} {done:,}" + (f"/{total:,}" if total else ""), end="", file=sys.stderr, flush=True)

        result = run_import(db, actor, file, args.entity, mapping, options, progress=progress)
    except ImportNotAllowed as error:
        raise _usage(t(error.message_key, lang, **error.params)) from None
    except ImportFileRefused as error:
        message = t(error.message_key, lang, **error.params)
        if args.json:
            print(
                json.dumps(
                    {
                        "status": "rejected",
                        "rows_read": 0,
                        "created": 0,
                        "updated": 0,
                        "skipped": 0,
                        "rejected": 0,
                        "run_id": None,
                        "failures": [],
                        "error": error.message_key,
                        "message": message,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            print(message, file=sys.stderr)
        return 1
    if sys.stderr.isatty() and not args.json:
        print(file=sys.stderr)
    if args.rejected_csv and result.report is not None and result.report.rejected:
        Path(args.rejected_csv).write_bytes(rejected_rows_csv(file, result.report, lang))
    payload = result.as_dict()
    for entry, failure in zip(payload["failures"], result.report.failures if result.report else [], strict=True):
        entry["message"] = reason_text(failure.message_key, failure.params, lang)
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print(
            t(
                "imports.cli.summary",
                lang,
                status=t(f"imports.status.{result.status}", lang),
                **{k: payload[k] for k in ("rows_read", "created", "updated", "skipped", "rejected", "run_id")},
            )
        )
        for entry in payload["failures"]:
            print(
                t(
                    "imports.cli.failure",
                    lang,
                    message=entry["message"],
                    count=entry["count"],
                    rows=", ".join(str(row) for row in entry["rows"][:10]),
                    examples=", ".join(str(example) for example in entry["examples"][:5]),
                )
            )
    return 0 if result.status == "imported" else 1


def cmd_import_revert(args: argparse.Namespace, db: Database) -> int:
    """Revert one run."""
    from crm_core.importing.runner import revert_import

    lang = _language()
    actor = resolve_actor(db, args.as_user)
    try:
        result = revert_import(db, actor, args.run_id)
    except ImportNotAllowed as error:
        print(t(error.message_key, lang, **error.params), file=sys.stderr)
        return 1
    payload = {
        "status": "reverted",
        "run_id": result.run_id,
        "deleted": result.deleted,
        "restored": result.restored,
        "conflicts": result.conflicts,
    }
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
    else:
        print(t("imports.cli.reverted", lang, **{k: v for k, v in payload.items() if k != "status"}))
    return 0
