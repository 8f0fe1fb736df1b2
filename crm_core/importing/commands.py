"""``python -m crm_core import ENTITY FILE …`` and ``python -m crm_core import-revert RUN_ID``.

Both run as jobs (:mod:`crm_core.jobs.kinds`: ``import``, ``import_revert``) — the same route as
the Imports page — and wait for the end: a progress bar on a terminal; ``--no-wait`` prints the
job id, ``--inline`` runs it in this process. Exit codes: 0 when
every row was imported, 1 when rows were rejected (or the file could not be read), 2 for
usage errors (unknown entity, missing file, bad mapping or options). ``--json`` prints one
object: ``status`` (imported / rejected / partial), ``rows_read``, ``created``, ``updated``,
``skipped``, ``rejected``, ``run_id``, ``job_id`` and ``failures`` (``expectation``, ``column``,
``count``, ``examples``, ``message``).
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
from crm_core.jobs.uploads import discard_upload
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView


def _language() -> str:
    from crm_core.cli import cli_language

    return cli_language()


def _usage(message: str) -> Exception:
    from crm_core.cli import UsageError

    return UsageError(message)


def add_parsers(commands: Any) -> None:
    """Add ``import`` and ``import-revert`` to the CLI's subcommands."""
    from crm_core.jobs.cli import add_job_options

    importing = commands.add_parser("import", help="import a CSV or XLSX file, validated by its GX suite")
    importing.add_argument("entity", help=" | ".join(ENTITIES))
    importing.add_argument("file", help="CSV (UTF-8, UTF-8 BOM, GBK/GB18030; , ; tab |) or XLSX")
    importing.add_argument("--mapping", help='JSON: {"columns": {...}, "values": {...}, "match_on": [...]}')
    importing.add_argument("--preset", help="a mapping preset when no --mapping is given: salesforce | hubspot | "
                                            "fxiaoke (纷享销客/销售易) | detect (the one the header matches best)")
    importing.add_argument("--check", action="store_true",
                           help="a dry run: judge the file and say what would be created, updated, skipped and "
                                "rejected; nothing is written")
    importing.add_argument("--mode", default="create", help="create | update | upsert")
    importing.add_argument("--policy", default="all-or-nothing", help="all-or-nothing | skip-invalid")
    importing.add_argument("--duplicates", default="skip", help="skip | merge | create (create mode)")
    importing.add_argument("--customer-match", default=None,
                           help="what the customer column holds: any (name, email or external ID; the default "
                                "unless the header says, e.g. 'Account ID', '客户编号') | name | external_id | email")
    importing.add_argument("--fallback-owner", metavar="USER",
                           help="give rows whose owner/assignee/author matches no user to this user (username, "
                                "full name or email; one you may assign records to); omitted: such rows are refused")
    importing.add_argument("--create-owners", action="store_true",
                           help="admins: make an inactive user (no password) for each distinct owner name that matches "
                                "no user, and give the rows to it (instead of --fallback-owner or refusing them)")
    importing.add_argument("--orphans", default="reject",
                           help="rows of contacts, deals, orders, activities whose customer cell is empty: reject | "
                                "placeholder (a customer of their own, tagged no-account) | lead (a prospect "
                                "customer from the row, tagged imported-lead)")
    importing.add_argument("--as", dest="as_user", help="username to import as (an admin or manager)")
    importing.add_argument("--encoding", help="override the detected encoding")
    importing.add_argument("--delimiter", help="override the detected delimiter")
    importing.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_ROWS)
    importing.add_argument("--rejected-csv", help="write the rejected rows, with a reason column, to this CSV")
    importing.add_argument("--json", action="store_true")
    add_job_options(importing)
    importing.set_defaults(handler=cmd_import)

    revert = commands.add_parser("import-revert", help="undo an import run")
    revert.add_argument("run_id", type=int)
    revert.add_argument("--as", dest="as_user", help="username to act as")
    revert.add_argument("--json", action="store_true")
    add_job_options(revert)
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


def _refused_payload(key: str, params: dict[str, Any], lang: str) -> dict[str, Any]:
    return {"status": "rejected", "rows_read": 0, "created": 0, "updated": 0, "skipped": 0, "rejected": 0,
            "run_id": None, "failures": [], "error": key, "message": t(key, lang, **params)}


def _print_refused(args: argparse.Namespace, payload: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print(payload["message"], file=sys.stderr)
    return 1


def cmd_import(args: argparse.Namespace, db: Database) -> int:
    """Import one file as a job; see the module docstring for the output and exit codes.

    The file and mapping are checked here first (a usage error queues nothing); the file is
    then copied under ``files_dir()`` for the worker, which may be another process or machine.
    """
    from crm_core.importing.mapping import ImportMapping, ImportOptions, check_mapping
    from crm_core.importing.reading import open_import_file
    from crm_core.importing.runner import check_fallback_owner, check_history
    from crm_core.jobs.cli import run_jobs
    from crm_core.jobs.uploads import store_upload

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
    try:
        found = path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL in it
        found = False
    if not found:
        raise _usage(t("imports.error.file_missing", lang, path=args.file))
    actor = resolve_actor(db, args.as_user)
    try:
        mapping_text = Path(args.mapping).read_text(encoding="utf-8-sig") if args.mapping else None
    except OSError:
        raise _usage(t("imports.error.file_missing", lang, path=args.mapping)) from None
    options = ImportOptions(mode=args.mode, policy=args.policy, duplicates=args.duplicates, chunk_size=args.chunk_size,
                            fallback_owner=args.fallback_owner or None, orphans=args.orphans,
                            create_owners=bool(args.create_owners))
    try:
        file = open_import_file(path.name, path, encoding=args.encoding, delimiter=args.delimiter)
        mapping = (
            ImportMapping.from_json(mapping_text)
            if mapping_text
            else _preset_or_suggested(db, actor, args.entity, args.preset, file.headers)
        )
        if args.customer_match:
            mapping.customer_match = args.customer_match
        check_mapping(args.entity, mapping, file.headers, options)
        check_history(actor, args.entity, mapping)
        check_fallback_owner(db, actor, options)
    except ImportNotAllowed as error:
        raise _usage(t(error.message_key, lang, **error.params)) from None
    except ImportFileRefused as error:
        return _print_refused(args, _refused_payload(error.message_key, error.params, lang))
    upload = store_upload(actor.tenant_id, path.name, path)
    params = {
        "entity": args.entity, "file_path": str(upload), "file_name": path.name, "mapping": mapping.as_dict(),
        "mode": args.mode, "policy": args.policy, "duplicates": args.duplicates, "encoding": args.encoding,
        "delimiter": args.delimiter, "chunk_size": args.chunk_size, "dry_run": bool(args.check),
        "fallback_owner": options.fallback_owner, "orphans": options.orphans, "create_owners": options.create_owners,
    }
    views = run_jobs(args, db, "import", params, actor=actor)
    if views is None:
        return 0
    view = views[0]
    if view.status == JobStatus.SUCCEEDED:
        with db.system_session("cli import: discard upload") as session:
            discard_upload(session, actor.tenant_id, upload, job_id=view.id)  # nobody retries a finished import
    else:
        return _job_failed(view, lang)
    result = dict(view.result)
    if result.get("error"):
        return _print_refused(args, {**_refused_payload(result["error"], result.get("error_params") or {}, lang),
                                     "job_id": view.id})
    if args.check:
        return _print_check(args, view.id, result, lang)
    return _print_result(args, db, actor, view.id, result, lang)


def _preset_or_suggested(db: Database, actor: Actor, entity: str, preset: str | None, headers: list[str]) -> Any:
    """No ``--mapping``: the ``--preset``'s mapping (an unknown name is a usage error), else the headers'."""
    from crm_core.importing.mapping import ImportMapping
    from crm_core.importing.presets import check_preset, preset_mapping

    if check_preset(preset) is None:
        return ImportMapping.suggested(entity, headers)
    with db.session(actor) as session:
        return preset_mapping(session, str(preset), entity, headers, admin=actor.is_admin)


def _print_check(args: argparse.Namespace, job_id: int, payload: dict[str, Any], lang: str) -> int:
    """A dry run's forecast (``--check``): what would be created, updated, skipped, rejected, and the failing
    checks; 0 when every row passes."""
    from crm_core.importing.runner import reason_text

    for entry in payload.get("failures") or []:
        entry["message"] = reason_text(entry["message_key"], entry["params"], lang)
    payload.pop("rejected_csv_path", None)  # a server path
    if args.json:
        print(json.dumps({**payload, "job_id": job_id}, ensure_ascii=False, default=str))
    else:
        print(t("imports.forecast", lang, **{key: payload.get(key, 0) for key in (
            "rows_read", "would_create", "would_update", "would_skip", "rejected")}))
        for entry in payload.get("failures") or []:
            print(t("imports.cli.failure", lang, message=entry["message"], count=entry["count"],
                    rows=", ".join(str(row) for row in entry["rows"][:10]),
                    examples=", ".join(str(example) for example in entry["examples"][:5])))
        for entry in payload.get("quality") or []:  # what the data-quality checks would flag (decision 0056)
            print(t("imports.cli.quality", lang, check=t(f"quality.check.{entry['check']}", lang),
                    count=entry["count"], examples=", ".join(str(example) for example in entry["examples"][:5])))
    return 0 if payload.get("success") else 1


def _job_failed(view: JobView, lang: str) -> int:
    """A job that did not succeed: a refused mapping or option is a usage error (2), anything else 1."""
    from crm_core.jobs.cli import report_failures

    if view.status == JobStatus.FAILED and (view.error_key or "").startswith("imports."):
        print(t(view.error_key or "", lang, **view.error_params), file=sys.stderr)
        return 2
    return report_failures([view])


def _print_result(
    args: argparse.Namespace, db: Database, actor: Actor, job_id: int, payload: dict[str, Any], lang: str
) -> int:
    from crm_core.importing.runner import quarantined_rows_csv, reason_text

    if args.rejected_csv and payload.get("rejected_rows_run_id"):
        Path(args.rejected_csv).write_bytes(quarantined_rows_csv(db, actor, payload["rejected_rows_run_id"], lang))
    for entry in payload["failures"]:
        entry["message"] = reason_text(entry["message_key"], entry["params"], lang)
    payload["job_id"] = job_id
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print(
            t(
                "imports.cli.summary",
                lang,
                status=t(f"imports.status.{payload['status']}", lang),
                **{k: payload[k] for k in ("rows_read", "created", "updated", "skipped", "rejected", "run_id")},
            )
        )
        if any(payload.get(f"regions_{name}") for name in ("mapped", "ambiguous", "not_found")):
            print(t("imports.regions_report", lang, mapped=payload["regions_mapped"],
                    ambiguous=payload["regions_ambiguous"], not_found=payload["regions_not_found"]))
        if payload.get("owners_fallback"):
            print(t("imports.cli.owners_fallback", lang, owner=args.fallback_owner,
                    count=payload["owners_fallback"]))
        if payload.get("owners_created") or payload.get("owners_inactive"):
            print(t("imports.cli.owners_created", lang, created=payload.get("owners_created", 0),
                    rows=payload.get("owners_inactive", 0)))
        if any(payload.get(f"orphans_{policy}") for policy in ("rejected", "placeholder", "lead")):
            print(t("imports.cli.orphans", lang, **{policy: payload.get(f"orphans_{policy}", 0)
                                                    for policy in ("rejected", "placeholder", "lead")}))
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
    return 0 if payload["status"] == "imported" else 1


def cmd_import_revert(args: argparse.Namespace, db: Database) -> int:
    """Revert one run (a job); exit 1 when the run cannot be reverted."""
    from crm_core.jobs.cli import run_jobs

    lang = _language()
    actor = resolve_actor(db, args.as_user)
    views = run_jobs(args, db, "import_revert", {"run_id": args.run_id}, actor=actor)
    if views is None:
        return 0
    view = views[0]
    if view.status != JobStatus.SUCCEEDED:
        if view.status == JobStatus.FAILED and (view.error_key or "").startswith("imports."):
            print(t(view.error_key or "", lang, **view.error_params), file=sys.stderr)
            return 1
        from crm_core.jobs.cli import report_failures

        return report_failures([view])
    payload = {key: view.result.get(key, 0) for key in ("status", "run_id", "deleted", "restored", "conflicts",
                                                         "consent_reverted", "consent_kept")}
    if args.json:
        print(json.dumps({**payload, "job_id": view.id}, ensure_ascii=False))
    else:
        print(t("imports.cli.reverted", lang, **{k: v for k, v in payload.items() if k != "status"}))
        if payload["consent_reverted"] or payload["consent_kept"]:
            print(t("imports.reverted_consent", lang, consent_reverted=payload["consent_reverted"],
                    consent_kept=payload["consent_kept"]))
    return 0
