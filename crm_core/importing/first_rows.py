"""The first row of a file that carried each key, kept in ~20 bytes a key (in-file duplicates).

Pattern: a mapping with the one operation the importer's duplicate check needs,
``setdefault(key, row)`` — "the first row that had this key; this row if none did". A dict of
the keys themselves costs ~200 bytes a key (the tuple, the text, the slot): a 1,000,000-row
customer file matched on four keys plus its external id held ~900 MB. Here a key is
remembered by its 64-bit hash: the latest keys in a dict, the older ones in two sorted numpy
arrays (hash, row) that a bit per hash bucket lets most look-ups skip.

Two keys with the same 64-bit hash would count as one (for 5,000,000 keys: a chance of
about one in a million per file); the hash is Python's own, so it differs between processes
and nothing outside one import may keep it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, MutableMapping
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:  # pragma: no cover
    import numpy

RECENT_KEYS = 200_000
"""Keys kept in the dict before they move to the sorted arrays (the dict's memory: ~18 MB)."""

BUCKETS = 1 << 26
"""Bits of the filter, one per hash bucket (8 MB): a new key rarely needs a binary search."""
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

    def _moved_row(self, hashed: int) -> int | None:
        """The row of a hash moved to the arrays; None when it is not there."""
        bucket = hashed & _BUCKET_MASK
        if self._buckets is None or not self._buckets[bucket >> 3] & (1 << (bucket & 7)):
            return None  # the filter says no: no binary search
        position = int(self._hashes.searchsorted(hashed))
        if position < len(self._hashes) and self._hashes[position] == hashed:
            return int(self._rows[position])
        return None

    def setdefault(self, key: Key, default: int) -> int:  # type: ignore[override]
        """The first row that carried ``key``; ``default`` (now remembered as that row) when none did."""
        hashed = hash(key)
        recent = self._recent
        row = recent.get(hashed)
        if row is None:
            row = self._moved_row(hashed)
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
            self._buckets = bytearray(BUCKETS // 8)
        buckets = hashes & _BUCKET_MASK
        bits = np.left_shift(1, buckets & 7).astype(np.uint8)
        np.bitwise_or.at(np.frombuffer(self._buckets, dtype=np.uint8), buckets >> 3, bits)

    def __getitem__(self, key: Key) -> int:
        hashed = hash(key)
        row = self._recent.get(hashed)
        if row is None:
            row = self._moved_row(hashed)
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
