"""Log lines for every Kestrel process: plain text on a terminal, JSON lines for ELK/Loki (structlog).

``CRM_LOG_FORMAT=json`` (the deploy manifests set it) turns every record of the standard logging
module — Kestrel's own, uvicorn's, Huey's — into one JSON object per line::

    {"timestamp": "2026-12-05T16:58:01.123Z", "level": "error", "logger": "kestrel",
     "event": "incident 1a2b3c4d: …", "request_id": "…", "route": "/v1/customers/{customer_id}",
     "job_id": 42, "kind": "import", "tenant_id": 2, "user_id": 7, "exception": "Traceback …"}

Correlation ids are bound per request (the API), per job (the runner) and per page run (the
frame) with ``bind``; they reach every line logged while they are bound. Ids only: no names,
no e-mail addresses. Secrets never reach a line: values of keys that name a password, token,
secret, cookie or authorization are replaced, and bearer tokens (``kst_…``) and login cookies
inside messages are masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog

PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
SECRET_KEYS = re.compile(r"password|passwd|token|secret|cookie|authorization|api_key", re.IGNORECASE)
SECRET_TEXT = re.compile(r"(kst_)[A-Za-z0-9_\-]{8,}|(kestrel_session=)[^;\s]+|(Bearer\s+)\S+")


def json_lines() -> bool:
    """Are log lines JSON (``CRM_LOG_FORMAT=json``)?"""
    return os.environ.get("CRM_LOG_FORMAT", "").strip().lower() == "json"


def _mask(text: str) -> str:
    return SECRET_TEXT.sub(lambda found: (found.group(1) or found.group(2) or found.group(3)) + "***", text)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace secret-named values and mask tokens and cookies in the text of the line."""
    event.pop("color_message", None)  # uvicorn's copy of the message with terminal colours
    for key in list(event):
        if SECRET_KEYS.search(key):
            event[key] = "***"
        elif isinstance(event[key], str):
            event[key] = _mask(event[key])
    return event


def formatter(**_uvicorn_options: Any) -> logging.Formatter:
    """The formatter every handler uses: JSON lines or plain text (see the module's docstring).

    Also the factory of ``python -m server``'s logging configuration, to which uvicorn adds its own
    options (``use_colors``); they do not apply to JSON lines.
    """
    if not json_lines():
        return logging.Formatter(PLAIN_FORMAT)
    chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.stdlib.ExtraAdder(),
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
    )


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Correlation ids (request, job, tenant, user …) on every line logged inside the block."""
    tokens = structlog.contextvars.bind_contextvars(**{key: value for key, value in ids.items() if value is not None})
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)
