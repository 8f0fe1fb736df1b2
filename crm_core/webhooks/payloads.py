"""The JSON body of a webhook event: type, timestamp and the record's public fields.

Shape (Standard Webhooks' recommended envelope)::

    {"type": "customer.updated", "timestamp": "2026-12-05T10:00:00Z",
     "data": {"object": "customer", "id": 42, "tenant_id": 1,
              "record": {<the record's public fields>},
              "changes": {"field": [old, new], …}}}        # updates only

Ids are the record's own (scoped to the tenant named by ``tenant_id``). Password hashes,
token hashes, signing secrets and internal normalised copies never leave.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import inspect

from crm_core.rules.webhooks import OBJECT_NAMES

HIDDEN_WORDS = ("password", "secret", "token", "hash")
HIDDEN_COLUMNS = frozenset({"email_normalized", "phone_normalized", "mapping", "validation_result", "version"})


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


def is_public(column: str) -> bool:
    """Whether a column may appear in a payload."""
    return column not in HIDDEN_COLUMNS and not any(word in column for word in HIDDEN_WORDS)


def public_fields(obj: Any) -> dict[str, Any]:
    """The loaded column values of ``obj`` that may leave Kestrel (never loads anything)."""
    state = inspect(obj)
    loaded = state.dict
    return {
        attribute.key: _plain(loaded[attribute.key])
        for attribute in state.mapper.column_attrs
        if attribute.key in loaded and is_public(attribute.key)
    }


def event_body(
    event_type: str,
    occurred_at: dt.datetime,
    *,
    tenant_id: int,
    entity: str | None,
    record_id: int | None,
    record: dict[str, Any],
    changes: dict[str, list[Any]] | None = None,
) -> str:
    """The exact JSON text sent (and signed) for one event."""
    data: dict[str, Any] = {
        "object": OBJECT_NAMES.get(entity or "", entity), "id": record_id, "tenant_id": tenant_id, "record": record,
    }
    if changes:
        data["changes"] = {key: _plain(value) for key, value in changes.items()
                           if not key.startswith("_") and is_public(key)}
    body = {"type": event_type, "timestamp": occurred_at.replace(microsecond=0).isoformat() + "Z", "data": data}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
