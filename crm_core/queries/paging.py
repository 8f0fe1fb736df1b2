"""Pagination result shared by every list query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its rows, position, whether more follow, and the optional total."""

    items: list[T] = field(default_factory=list)
    page: int = 1
    per_page: int = 50
    has_next: bool = False
    total: int | None = None

    @property
    def page_count(self) -> int | None:
        """Number of pages when the total is known."""
        if self.total is None:
            return None
        return max(1, -(-self.total // self.per_page))
