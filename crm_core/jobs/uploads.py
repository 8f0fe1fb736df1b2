"""Files that wait for a job: an import's upload lives under ``files_dir()`` until its job is done.

A page or the CLI stores the user's file with :func:`store_upload` (its own folder,
``files_dir()/uploads/<tenant id>/<random>/<name>``) and passes the returned path as the
job's ``file_path``; the worker (maybe another process or machine sharing ``CRM_FILES_DIR``)
opens it with :func:`resolve_upload`, which refuses any path outside ``files_dir()`` and
another tenant's folder.

Retention: a succeeded import deletes its upload at its end (nobody retries a succeeded
job); a dry run keeps it (the wizard imports that same file next); a failed, cancelled or
interrupted job keeps it so that Retry works. The daily ``uploads_cleanup`` job deletes a
tenant's uploads untouched for :data:`RETENTION` that no queued or running job still needs.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import shutil
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.config import files_dir
from crm_core.errors import ImportNotAllowed
from crm_core.models.jobs import Job, JobStatus

UPLOADS = "uploads"
RETENTION = dt.timedelta(days=7)
_UNSAFE = re.compile(r"[^\w.\- ]+")


def _root() -> Path:
    return files_dir().resolve()


def tenant_uploads(tenant_id: int) -> Path:
    """The folder of tenant ``tenant_id``'s uploads."""
    return _root() / UPLOADS / str(tenant_id)


def store_upload(tenant_id: int, file_name: str, source: bytes | Path) -> Path:
    """Keep ``source`` (bytes, or a file to copy) for a job of tenant ``tenant_id``; returns its path."""
    name = _UNSAFE.sub("_", Path(file_name).name).strip(" .") or "upload"
    folder = tenant_uploads(tenant_id) / secrets.token_hex(8)
    folder.mkdir(parents=True, mode=0o700)
    target = folder / name[:120]
    if isinstance(source, Path):
        shutil.copyfile(source, target)
    else:
        target.write_bytes(source)
    return target


def resolve_upload(tenant_id: int, file_path: str) -> Path:
    """The upload ``file_path`` (absolute, or relative to ``files_dir()``) of tenant ``tenant_id``.

    Raises ImportNotAllowed when the path leaves ``files_dir()`` or points into another
    tenant's uploads, and when the file is gone (deleted after its retention).
    """
    root = _root()
    path = Path(file_path)
    path = (path if path.is_absolute() else root / path).resolve()
    uploads = root / UPLOADS
    if not path.is_relative_to(root) or (
        path.is_relative_to(uploads) and not path.is_relative_to(tenant_uploads(tenant_id))
    ):
        raise ImportNotAllowed("jobs.error.upload_outside")
    if not path.is_file():
        raise ImportNotAllowed("jobs.error.upload_missing")
    return path


def _upload_folder(tenant_id: int, path: Path) -> Path | None:
    """The upload's own folder (``uploads/<tenant>/<random>``), None for a file stored elsewhere."""
    base = tenant_uploads(tenant_id)
    if not path.is_relative_to(base) or path.parent == base:
        return None
    return base / path.relative_to(base).parts[0]


def _needed(session: Session, tenant_id: int, *, except_job_id: int | None = None) -> set[Path]:
    """Upload folders of the tenant's queued and running jobs (but ``except_job_id``)."""
    statement = select(Job.params).where(
        Job.tenant_id == tenant_id, Job.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
    )
    if except_job_id is not None:
        statement = statement.where(Job.id != except_job_id)
    params = session.scalars(statement)
    needed: set[Path] = set()
    for job_params in params:
        file_path = (job_params or {}).get("file_path")
        if isinstance(file_path, str):
            folder = _upload_folder(tenant_id, (_root() / file_path).resolve())
            if folder is not None:
                needed.add(folder)
    return needed


def discard_upload(session: Session, tenant_id: int, path: Path, *, job_id: int) -> bool:
    """Delete the upload of job ``job_id`` (ending) unless another queued or running job needs it; True when deleted."""
    folder = _upload_folder(tenant_id, path)
    if folder is None or folder in _needed(session, tenant_id, except_job_id=job_id):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def remove_old_uploads(session: Session, tenant_id: int, *, older_than: dt.timedelta = RETENTION) -> int:
    """Delete the tenant's uploads untouched for ``older_than`` that no queued or running job needs."""
    base = tenant_uploads(tenant_id)
    if not base.is_dir():
        return 0
    limit = time.time() - older_than.total_seconds()
    needed = _needed(session, tenant_id)
    removed = 0
    for folder in base.iterdir():
        if not folder.is_dir() or folder in needed:
            continue
        newest = max((item.stat().st_mtime for item in folder.iterdir()), default=folder.stat().st_mtime)
        if newest < limit:
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed
