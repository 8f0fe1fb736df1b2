"""Cursor pagination: ``limit`` (1–100) and an opaque ``after`` cursor that encodes the keyset.

A cursor is URL-safe base64 of a small JSON object: the list it belongs to, its sort and
direction, a fingerprint of its filters, and the last row's sort value and id. The next page
is read by keyset (``(sort value, id)`` past the cursor's), so rows inserted meanwhile never
shift it: nothing is repeated, nothing skipped. A cursor that does not decode, or that was
made for another list, sort or filter, is a 400. It is not signed: it grants nothing (every
page is read under the caller's access rules), so a hand-made one can only move the position.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from crm_api.problems import ApiProblem

MAX_LIMIT = 100
DEFAULT_LIMIT = 50
COUNT_CAP = 1_000
"""``include_total`` counts at most this many rows (the grid's cap); ``total_capped`` says when there are more."""

T = TypeVar("T")


class ListPage(BaseModel, Generic[T]):
    """One page of a list."""

    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `after` to get the next page; null on the last page.", examples=["eyJ2IjoxfQ"])
    has_more: bool = Field(description="Whether another page follows.")
    total: int | None = Field(
        default=None, description="With `include_total=true`: how many rows match, counted up to 1,000.")
    total_capped: bool = Field(default=False, description="True when more than `total` rows match.")


def fingerprint(values: dict[str, Any]) -> str:
    """A short digest of a list's filters: a cursor is only valid for the filters it was made with."""
    canonical = json.dumps(values, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_cursor(resource: str, sort: str, descending: bool, filters: str, position: tuple[Any, int]) -> str:
    """The opaque cursor for the page after ``position`` (the last row's sort value and id)."""
    value, row_id = position
    if isinstance(value, dt.datetime):
        value = value.isoformat()
    payload = {"r": resource, "s": sort, "d": descending, "f": filters, "k": [value, row_id]}
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, resource: str, sort: str, descending: bool, filters: str,
                  parse_value: Callable[[Any], Any]) -> tuple[Any, int]:
    """The keyset position in ``cursor``; a 400 problem when it does not decode or belongs elsewhere."""
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        payload = json.loads(raw)
        value, row_id = payload["k"]
        matches = (payload["r"], payload["s"], payload["d"], payload["f"]) == (resource, sort, descending, filters)
        if not matches or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError("a cursor of another list")
        return parse_value(value), row_id
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise ApiProblem(400, "invalid_cursor", "api.error.invalid_cursor") from None


@dataclass(frozen=True)
class Keyset:
    """One list's cursor terms: a cursor is valid only for the list, sort, order and filters it was made with."""

    resource: str
    sort: str
    descending: bool
    filters: str  # :func:`fingerprint` of the list's filters

    @classmethod
    def of(cls, resource: str, sort: str, descending: bool, filters: dict[str, Any]) -> Keyset:
        return cls(resource, sort, descending, fingerprint(filters))

    def position(self, cursor: str | None, parse_value: Callable[[Any], Any]) -> tuple[Any, int] | None:
        """Where the page after ``cursor`` starts (None: the first page); a 400 problem for a foreign cursor."""
        if not cursor:
            return None
        return decode_cursor(cursor, self.resource, self.sort, self.descending, self.filters, parse_value)

    def cursor(self, position: tuple[Any, int] | None) -> str | None:
        """The cursor of the page after ``position`` (the last row's sort value and id; None: no next page)."""
        if position is None:
            return None
        return encode_cursor(self.resource, self.sort, self.descending, self.filters, position)


def parse_datetime(value: Any) -> dt.datetime:
    """A datetime keyset value from its ISO form."""
    if not isinstance(value, str):
        raise ValueError("not a datetime")
    return dt.datetime.fromisoformat(value)


def parse_text(value: Any) -> str:
    """A text keyset value."""
    if not isinstance(value, str):
        raise ValueError("not text")
    return value


def page_of(items: Sequence[T], *, next_cursor: str | None, has_more: bool, total: int | None,
            total_capped: bool) -> ListPage[T]:
    """Assemble a :class:`ListPage`."""
    return ListPage[T](data=list(items), next_cursor=next_cursor, has_more=has_more, total=total,
                       total_capped=total_capped)
