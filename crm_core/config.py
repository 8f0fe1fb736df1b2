"""Typed settings, read once from the environment (and Streamlit secrets, by the frame).

Every knob of Kestrel CRM lives here so that nothing else reads ``os.environ``.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
DEFAULT_SQLITE_PATH = DATA_DIR / "crm.db"
COOKIE_KEY_FILE = DATA_DIR / ".cookie_key"
CSAT_KEY_FILE = DATA_DIR / ".csat_key"
CSAT_LINK_DAYS = 14

LOGIN_MAX_FAILED_ATTEMPTS = 5
LOGIN_LOCKOUT_MINUTES = 15
COOKIE_NAME = "kestrel_session"
COOKIE_EXPIRY_DAYS = 7.0
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Settings:
    """What the process was configured with."""

    database_url: str = field(default_factory=lambda: default_database_url())
    cookie_key: str | None = None
    admin_password: str | None = None


DEMO_SLUG_PATTERN = re.compile(r"^demo(-[0-9]+)?$")  # the demo generator's workspaces: demo, demo-2, …


def demo_mode() -> bool:
    """``CRM_DEMO_MODE=1`` (``make run`` sets it): the demo workspaces' users, whose password is published, may sign in.

    Anywhere else (a server, a container) they cannot, even if demo data was loaded by mistake.
    """
    return os.environ.get("CRM_DEMO_MODE", "") == "1"


def is_demo_slug(slug: str) -> bool:
    """Is this the slug of a demo workspace (reserved: no real tenant can take it)?"""
    return bool(DEMO_SLUG_PATTERN.match(slug))


def default_database_url() -> str:
    """The embedded SQLite file unless ``CRM_DATABASE_URL`` says otherwise."""
    return os.environ.get("CRM_DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def redis_url() -> str | None:
    """``CRM_REDIS_URL``: the job queue (and later shared caches) live in Redis when set."""
    return os.environ.get("CRM_REDIS_URL") or None


def jobs_queue_name() -> str:
    """``CRM_JOBS_QUEUE`` (default ``kestrel``): two installations sharing one Redis each need a name of their own."""
    return os.environ.get("CRM_JOBS_QUEUE") or "kestrel"


def jobs_queue_path(database_url: str | None = None) -> Path:
    """The SQLite file of the job queue when no Redis is configured.

    ``CRM_JOBS_PATH`` when set; else beside the embedded database (``data/crm.db`` →
    ``data/crm.jobs.db``), so that two databases never share one queue; else ``data/jobs.db``.
    """
    configured = os.environ.get("CRM_JOBS_PATH")
    if configured:
        return Path(configured)
    url = database_url or default_database_url()
    if url.startswith("sqlite:///") and ":memory:" not in url:
        database_file = Path(url.removeprefix("sqlite:///"))
        return database_file.with_name(database_file.stem + ".jobs.db")
    return DATA_DIR / "jobs.db"


def api_rate_limit() -> tuple[int, float]:
    """``CRM_API_RATE_LIMIT`` as (requests, seconds) per API token; ``"100/10"`` (the default) is 100 per 10 s."""
    configured = os.environ.get("CRM_API_RATE_LIMIT") or "100/10"
    requests, _, seconds = configured.partition("/")
    try:
        limit, window = int(requests), float(seconds or "1")
    except ValueError:
        raise ValueError(f"CRM_API_RATE_LIMIT must look like 100/10 (requests/seconds), not {configured!r}") from None
    if limit < 1 or window <= 0:
        raise ValueError(f"CRM_API_RATE_LIMIT must be positive, not {configured!r}")
    return limit, window


def files_dir() -> Path:
    """Where uploaded files wait for their job (``CRM_FILES_DIR``; shared by every worker)."""
    return Path(os.environ.get("CRM_FILES_DIR") or DATA_DIR / "files")


def attachments_dir() -> Path:
    """Where the bytes of case attachments live (``CRM_ATTACHMENTS_DIR``; default ``files_dir()/attachments``)."""
    configured = os.environ.get("CRM_ATTACHMENTS_DIR")
    return Path(configured) if configured else files_dir() / "attachments"


DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024


def _byte_limit(name: str, default: int) -> int:
    configured = os.environ.get(name)
    if not configured:
        return default
    try:
        limit = int(configured)
    except ValueError:
        raise ValueError(f"{name} must be a number of bytes, not {configured!r}") from None
    if limit < 1:
        raise ValueError(f"{name} must be positive, not {configured!r}")
    return limit


def attachment_max_bytes() -> int:
    """``CRM_ATTACHMENT_MAX_BYTES``: the largest file a case keeps (default 10 MB)."""
    return _byte_limit("CRM_ATTACHMENT_MAX_BYTES", DEFAULT_ATTACHMENT_MAX_BYTES)


# base64 makes 15 MB of files about 20 MB of mail: under the 25 MB that common mail services accept
DEFAULT_MAIL_ATTACHMENTS_MAX_BYTES = 15 * 1024 * 1024


def mail_attachments_max_bytes() -> int:
    """``CRM_MAIL_ATTACHMENTS_MAX_BYTES``: the most bytes of files one emailed case reply carries (default 15 MB)."""
    return _byte_limit("CRM_MAIL_ATTACHMENTS_MAX_BYTES", DEFAULT_MAIL_ATTACHMENTS_MAX_BYTES)


def load_settings() -> Settings:
    """Read the settings from the environment."""
    return Settings(
        database_url=default_database_url(),
        cookie_key=os.environ.get("CRM_COOKIE_KEY") or None,
        admin_password=os.environ.get("CRM_ADMIN_PASSWORD") or None,
    )


def resolve_cookie_key(configured: str | None, key_file: Path = COOKIE_KEY_FILE) -> str:
    """Return the cookie-signing key: the configured one, else one generated once and kept outside git.

    A known default key would let anyone forge a session cookie, so there is none:
    the first run writes a random key to ``data/.cookie_key`` (git-ignored, mode 600).
    """
    if configured:
        if len(configured) < 16:
            raise ValueError("The cookie key must be at least 16 characters long.")
        return configured
    if key_file.exists():
        stored = key_file.read_text(encoding="utf-8").strip()
        if len(stored) >= 16:
            return stored
    key_file.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(48)
    key_file.write_text(generated, encoding="utf-8")
    key_file.chmod(0o600)
    return generated


def csat_key() -> str:
    """The key that signs CSAT rating links: ``CRM_CSAT_KEY``, else one generated once (``data/.csat_key``).

    Never a default, and not the cookie key: a leaked rating link must tell nothing about the
    login cookie's key. Every process of one deployment must see the same key (set it, or share ``data/``).
    """
    return resolve_cookie_key(os.environ.get("CRM_CSAT_KEY") or None, CSAT_KEY_FILE)


def public_url() -> str | None:
    """The address customers reach the host at (``CRM_PUBLIC_URL``, e.g. ``https://crm.example.com``), for links
    in mail such as the CSAT rating link; None when not set (the mail then goes without those links)."""
    url = os.environ.get("CRM_PUBLIC_URL", "").strip().rstrip("/")
    return url if url.startswith(("http://", "https://")) else None


def keep_private(path: Path) -> None:
    """Make a database file readable by its owner only (created so, or tightened if others may read it).

    A CRM's database holds every customer's contact details: ``0644`` let every account on the
    machine copy it. SQLite gives its ``-wal`` and ``-shm`` files the database file's mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
        return
    mode = path.stat().st_mode & 0o777
    if mode & 0o077 and path.stat().st_uid == os.getuid():
        path.chmod(mode & 0o700)


def backup_dir() -> Path:
    """Where backups live: ``CRM_BACKUP_DIR``, else data/backups."""
    return Path(os.environ.get("CRM_BACKUP_DIR") or DATA_DIR / "backups")


SECRET_KEY_MIN_LENGTH = 32


def secret_key() -> str | None:
    """``CRM_SECRET_KEY``: the key that encrypts the secrets a tenant stores (its SMTP password); None when unset.

    No default and no generated file: without it a stored secret could not be kept from whoever reads the
    database, so saving one is refused (:mod:`crm_core.mail.credentials`).
    """
    return os.environ.get("CRM_SECRET_KEY", "").strip() or None
