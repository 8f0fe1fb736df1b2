"""The bytes of case attachments, on disk under ``attachments_dir()`` (crm_core.config), named by content.

A file lives at ``<tenant id>/<first two hex of its SHA-256>/<SHA-256>``: never under the user's name
(which stays a column of ``case_attachments``), one copy per tenant however often it is attached, and
a tenant's folder is the only one its rows can reach. Writes go to a temporary file in the same folder
and are renamed into place, so a reader never sees half a file; a file written for a transaction that
then rolled back is an unreferenced copy that a later attachment of the same bytes reuses.

Removal (:func:`remove_unreferenced`) happens after the transaction that deleted the last row naming a
file has committed, and only while no row names it: the file is first renamed aside, the rows are asked
again, and it is put back if one appeared meanwhile. A transaction that kept the same bytes stores them
again after its own commit if they are missing (:func:`ensure`, from ``keep_files``), so a removal that
raced with it can never leave a committed row without its bytes (decision 0052).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from crm_core.config import attachments_dir

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def digest(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex: the file's name in the store."""
    return hashlib.sha256(data).hexdigest()


def _path(tenant_id: int, sha256: str) -> Path:
    if not _SHA256.match(sha256) or tenant_id < 1:
        raise ValueError("not an attachment key")
    return attachments_dir().resolve() / str(int(tenant_id)) / sha256[:2] / sha256


def store(tenant_id: int, data: bytes) -> str:
    """Keep ``data`` for tenant ``tenant_id`` (once per content); returns its SHA-256."""
    sha256 = digest(data)
    target = _path(tenant_id, sha256)
    if target.is_file() and target.stat().st_size == len(data):
        return sha256
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_name(f".{sha256}.{secrets.token_hex(6)}.part")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return sha256


def load(tenant_id: int, sha256: str) -> bytes | None:
    """The bytes stored under ``sha256`` for tenant ``tenant_id``; None when they are gone or changed on disk."""
    path = _path(tenant_id, sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return data if digest(data) == sha256 else None


def ensure(tenant_id: int, data: bytes) -> None:
    """Store ``data`` again if a removal took it away after it was stored (called after the keeping commit)."""
    store(tenant_id, data)


def remove_unreferenced(tenant_id: int, sha256: str, referenced: Callable[[], bool]) -> bool:
    """Delete the file ``sha256`` of tenant ``tenant_id`` unless ``referenced()`` (a fresh read of the rows) says a
    row names it, before or after the file is set aside; True when it was deleted (False: kept, or already gone)."""
    target = _path(tenant_id, sha256)
    if referenced() or not target.is_file():
        return False
    aside = target.with_name(f".{sha256}.{secrets.token_hex(6)}.removed")
    try:
        os.replace(target, aside)
    except FileNotFoundError:  # another removal took it
        return False
    if referenced():  # a row that kept the same bytes committed meanwhile: put them back
        with contextlib.suppress(FileExistsError):  # that row's own commit stored them again already
            os.link(aside, target)
        aside.unlink(missing_ok=True)
        return False
    aside.unlink(missing_ok=True)
    return True
