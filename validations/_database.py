"""Building block for the database suites (``db_*.py``): every check must find no violating row.

The frame (built by ``crm_core.quality.runs``) has one row per tenant and one column per
check holding that tenant's count of violating rows, computed in SQL.
"""

from __future__ import annotations

from typing import Any


def no_violations(checks: list[str]) -> list[Any]:
    """One expectation per check: its violation count is zero for every tenant."""
    import great_expectations as gx

    return [
        gx.expectations.ExpectColumnValuesToBeBetween(
            column=check,
            min_value=0,
            max_value=0,
            meta={"message_key": f"quality.check.{check}", "params": {"check": check}},
        )
        for check in checks
    ]
