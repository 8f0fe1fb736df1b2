"""``FirstRows``: the first row of each key, as a dict's ``setdefault`` gives it, in a fraction of the memory."""

from __future__ import annotations

import random

import pytest

from crm_core.importing import first_rows
from crm_core.importing.first_rows import FirstRows


@pytest.mark.parametrize("recent_keys", [3, 50, 1_000_000])  # keys moved to the arrays often, sometimes, never
def test_setdefault_gives_the_first_row_of_each_key_as_a_dict_does(
    monkeypatch: pytest.MonkeyPatch, recent_keys: int
) -> None:
    monkeypatch.setattr(first_rows, "RECENT_KEYS", recent_keys)
    rng = random.Random(10)
    keys = [("email", f"user{rng.randrange(400)}@example.com") for _ in range(3_000)]
    kept: FirstRows[tuple[str, str]] = FirstRows()
    expected: dict[tuple[str, str], int] = {}
    for row, key in enumerate(keys, start=2):
        assert kept.setdefault(key, row) == expected.setdefault(key, row)
    assert len(kept) == len(expected)
    assert all(kept[key] == row for key, row in expected.items())
    assert ("email", "nobody@example.com") not in kept


def test_it_refuses_what_it_cannot_do_rather_than_pretend() -> None:
    kept: FirstRows[str] = FirstRows()
    kept.setdefault("SKU-1", 2)
    with pytest.raises(TypeError):
        kept["SKU-1"] = 3  # the first row of a key never changes
    with pytest.raises(TypeError):
        list(kept)  # only hashes are kept
    assert kept.setdefault("SKU-1", 9) == 2
