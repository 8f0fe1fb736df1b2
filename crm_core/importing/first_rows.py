"""The first row of a file that carried each key, kept in ~20 bytes a key (in-file duplicates).

Pattern: a mapping with the one operation the importer's duplicate check needs,
``setdefault(key, row)`` — "the first row that had this key; this row if none did". A dict of
the keys themselves costs ~200 bytes a key (the tuple, the text, the slot): a 1,000,000-row
customer file matched on four keys plus its external id held ~900 MB. Here a key is
remembered by its 64-bit hash: the latest keys in a dict, the older ones in two sorted numpy
arrays (hash, row) that a byte per hash bucket lets most look-ups skip.

Two keys with the same 64-bit hash would count as one (for 5,000,000 keys: a chance of
about one in a million per file); the hash is Python's own, so it differs between processes
and nothing outside one import may keep it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, MutableMapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import numpy

RECENT_KEYS = 500_000
"""Keys kept in the dict before they move to the sorted arrays (~45 MB; a 100,000-row file never moves)."""

BUCKETS = 1 << 25
"""Bytes of the filter: one per hash bucket (32 MB), so a new key rarely needs a binary search."""
_BUCKET_MASK = BUCKETS - 1
Key = TypeVar("Key", bound=Hashable)


class FirstRows(MutableMapping[Key, int]):
    """Key → the first row number that carried it; only :meth:`setdefault` and look-ups (no deletes)."""

    def __init__(self) -> None:
        import numpy as np

        self._recent: dict[int, int] = {}
        self._hashes: numpy.ndarray = np.empty(0, dtype=np.int64)
        self._rows: numpy.ndarray = np.empty(0, dtype=np.int32)  # row numbers: < 2**31
        self._buckets: bytearray | None = None  # made with the first move to the arrays

    def _find(self, hashed: int) -> int | None:
        row = self._recent.get(hashed)
        if row is None and self._buckets is not None and self._buckets[hashed & _BUCKET_MASK]:
            position = int(self._hashes.searchsorted(hashed))
            if position < len(self._hashes) and self._hashes[position] == hashed:
                return int(self._rows[position])
        return row

    def setdefault(self, key: Key, default: int) -> int:  # type: ignore[override]
        """The first row that carried ``key``; ``default`` (now remembered as that row) when none did."""
        hashed = hash(key)
        recent = self._recent
        row = recent.get(hashed)
        if row is not None:
            return row
        if self._buckets is not None and self._buckets[hashed & _BUCKET_MASK]:
            row = self._find(hashed)
            if row is not None:
                return row
        recent[hashed] = default
        if len(recent) >= RECENT_KEYS:
            self._move_recent()
        return default

    def _move_recent(self) -> None:
        """Merge the dict's keys into the sorted arrays (one new array each: no sort of what is there)."""
        import numpy as np

        hashes = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        rows = np.fromiter(self._recent.values(), dtype=np.int32, count=len(self._recent))
        self._recent.clear()
        order = hashes.argsort()
        hashes, rows = hashes[order], rows[order]
        positions = self._hashes.searchsorted(hashes)
        self._hashes = np.insert(self._hashes, positions, hashes)
        self._rows = np.insert(self._rows, positions, rows)
        if self._buckets is None:
            self._buckets = bytearray(BUCKETS)
        np.frombuffer(self._buckets, dtype=np.uint8)[hashes & _BUCKET_MASK] = 1

    def __getitem__(self, key: Key) -> int:
        row = self._find(hash(key))
        if row is None:
            raise KeyError(key)
        return row

    def __setitem__(self, key: Key, row: int) -> None:
        raise TypeError("FirstRows keeps the first row of a key: use setdefault")

    def __delitem__(self, key: Key) -> None:
        raise TypeError("FirstRows forgets nothing")

    def __iter__(self) -> Iterator[Key]:
        raise TypeError("FirstRows keeps hashes, not keys: it cannot list them")

    def __len__(self) -> int:
        return len(self._recent) + len(self._hashes)
