"""``python -m crm_core backup create|list|verify|restore``: backups, their drill, restores (``crm_core.backup``)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from crm_core.backup import (
    BackupFile,
    BackupRefused,
    list_backups,
    prune_backups,
    read_backup,
    restore_backup,
    take_backup,
    verify_backup,
)
from crm_core.config import backup_dir as configured_backup_dir
from crm_core.config import keep_private
from crm_core.db import Database
from crm_core.i18n import t
from crm_core.migration import safe_url
from crm_core.queries.system import drill_record


def backup_dir(args: argparse.Namespace) -> Path:
    """``--dir``, else ``CRM_BACKUP_DIR``, else data/backups."""
    return Path(args.dir) if args.dir else configured_backup_dir()


def _size(size: int) -> str:
    return f"{size / 1024 / 1024:,.1f} MB"


def _chosen(args: argparse.Namespace) -> BackupFile:
    if args.file:
        return read_backup(Path(args.file))
    found = list_backups(backup_dir(args))
    if not found:
        raise BackupRefused("backup.none_yet", directory=str(backup_dir(args)))
    return found[0]


def _drill_lines(lang: str, drill: Any) -> tuple[dict[str, Any], list[str]]:
    payload = {"restore_seconds": round(drill.restore_seconds, 2), "verify_seconds": round(drill.verify_seconds, 2),
               "data_loss_window_seconds": int(drill.data_loss_window.total_seconds()), "verified": drill.success,
               "failures": drill.failures}
    record = drill_record(drill.backup)  # the System page shows the newest backup's drill
    keep_private(record)
    record.write_text(json.dumps({**payload, "drilled_at": dt.datetime.now(dt.UTC).isoformat()}), encoding="utf-8")
    key = "backup.cli.verified" if drill.success else "backup.cli.verify_failed"
    lines = [t(key, lang, name=drill.backup.path.name, restore=f"{drill.restore_seconds:.1f}",
               check=f"{drill.verify_seconds:.1f}", window=str(drill.data_loss_window).split(".")[0])]
    lines += [f"  {failure}" for failure in drill.failures]
    return payload, lines


def cmd_create(args: argparse.Namespace, db: Database) -> int:
    from crm_core.cli import _emit, cli_language

    lang = cli_language()
    url = db.engine.url.render_as_string(hide_password=False)
    made = take_backup(url, backup_dir(args))
    removed = prune_backups(backup_dir(args), args.keep)
    payload: dict[str, Any] = {"status": "ok", "file": str(made.path), "bytes": made.size,
                               "seconds": round(made.seconds, 2), "pruned": [str(path) for path in removed]}
    lines = [t("backup.cli.created", lang, path=str(made.path), size=_size(made.size), seconds=f"{made.seconds:.1f}",
               database=safe_url(url))]
    if removed:
        lines.append(t("backup.cli.pruned", lang, count=len(removed), keep=args.keep))
    if args.verify:
        drill_payload, drill_lines = _drill_lines(lang, verify_backup(made, url))
        payload.update(drill_payload)
        lines += drill_lines
        if not drill_payload["verified"]:
            payload["status"] = "failed"
    _emit(args, payload, lines)
    return 0 if payload["status"] == "ok" else 1


def cmd_list(args: argparse.Namespace, db: Database) -> int:
    from crm_core.cli import _emit, cli_language

    lang = cli_language()
    found = list_backups(backup_dir(args))
    payload = {"status": "ok", "backups": [{"file": str(b.path), "taken_at": b.taken_at.isoformat() + "Z",
                                            "bytes": b.size} for b in found]}
    lines = [f"{b.taken_at:%Y-%m-%d %H:%M:%S}Z  {_size(b.size):>10}  {b.path}" for b in found]
    _emit(args, payload, lines or [t("backup.cli.none", lang, directory=str(backup_dir(args)))])
    return 0


def cmd_verify(args: argparse.Namespace, db: Database) -> int:
    from crm_core.cli import _emit, cli_language

    lang = cli_language()
    drill = verify_backup(_chosen(args), db.engine.url.render_as_string(hide_password=False))
    payload, lines = _drill_lines(lang, drill)
    _emit(args, {"status": "ok" if drill.success else "failed", "file": str(drill.backup.path), **payload}, lines)
    return 0 if drill.success else 1


def cmd_restore(args: argparse.Namespace, db: Database) -> int:
    from crm_core.cli import _emit, cli_language

    lang = cli_language()
    chosen = _chosen(args)
    url = db.engine.url.render_as_string(hide_password=False)
    db.engine.dispose()  # no pooled connection of ours holds the database while it is replaced
    seconds = restore_backup(chosen, url, replace=args.replace)
    _emit(args, {"status": "ok", "file": str(chosen.path), "seconds": round(seconds, 2)},
          [t("backup.cli.restored", lang, name=chosen.path.name, database=safe_url(url), seconds=f"{seconds:.1f}")])
    return 0


def add_commands(commands: Any) -> None:
    """Register ``backup create|list|verify|restore``."""
    backup = commands.add_parser("backup", help="backups, restore drills and restores").add_subparsers(
        dest="action", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--dir", help="where backups live (default CRM_BACKUP_DIR or data/backups)")
        parser.add_argument("--json", action="store_true")

    create = backup.add_parser("create", help="back up the database now (consistent while the app runs)")
    common(create)
    create.add_argument("--keep", type=int, default=14, help="keep the newest N backups (default 14)")
    create.add_argument("--verify", action="store_true", help="then run the restore drill on it")
    create.set_defaults(handler=cmd_create)
    listing = backup.add_parser("list", help="the backups, newest first")
    common(listing)
    listing.set_defaults(handler=cmd_list)
    verify = backup.add_parser("verify", help="restore drill: restore into a scratch database and compare")
    common(verify)
    verify.add_argument("file", nargs="?", help="a backup file (default: the newest)")
    verify.set_defaults(handler=cmd_verify)
    restore = backup.add_parser("restore", help="restore a backup into the configured database")
    common(restore)
    restore.add_argument("file", nargs="?", help="a backup file (default: the newest)")
    restore.add_argument("--replace", action="store_true", help="overwrite a database that holds data")
    restore.set_defaults(handler=cmd_restore)
