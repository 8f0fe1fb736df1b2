"""Export of the customers grid's current filter to CSV or XLSX.

Rows are read in chunks (:func:`crm_core.queries.customers.iter_customers`) and written by
:mod:`crm_core.exporting`, which neutralises spreadsheet formulas. The same column keys as
the grid, translated into the user's language; custom fields as their own columns.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.exporting import to_csv, to_xlsx
from crm_core.i18n import t
from crm_core.queries.customers import CustomerFilters, CustomerRow, custom_field_definitions, iter_customers

EXPORT_LIMIT = 200_000
"""Rows per export from the page; larger extracts belong to a batch job, not a browser download."""

FIELD_LABEL_KEYS = {
    "name": "field.name", "kind": "field.kind", "lifecycle_stage": "field.lifecycle_stage", "owner": "field.owner",
    "team": "grid.team", "email": "field.email", "phone": "field.phone", "industry": "field.industry",
    "region": "field.region", "source": "field.source", "tags": "field.tags",
    "last_contacted_at": "field.last_contacted_at", "created_at": "grid.created_at", "updated_at": "field.updated_at",
}


def column_label(column_key: str, lang: str, custom_labels: dict[str, str] | None = None) -> str:
    """The header of a grid column in ``lang`` (custom fields by their label)."""
    if column_key.startswith("custom."):
        return (custom_labels or {}).get(column_key, column_key.removeprefix("custom."))
    return t(FIELD_LABEL_KEYS[column_key], lang)


def display_value(row: CustomerRow, column_key: str, lang: str) -> Any:
    """A cell as the user reads it: stages and kinds translated, tags joined."""
    value = row.value(column_key)
    if column_key == "lifecycle_stage":
        return t(f"stage.{value}", lang)
    if column_key == "kind":
        return t(f"kind.{value}", lang)
    if column_key == "tags":
        return ", ".join(value)
    return value


def export_customers(
    db: Database,
    actor: Actor,
    *,
    filters: CustomerFilters,
    columns: Sequence[str],
    file_format: str,
    lang: str = "en",
    sort: str = "updated_at",
    descending: bool = True,
    limit: int = EXPORT_LIMIT,
) -> bytes:
    """The customers matching ``filters`` that ``actor`` may see, as a CSV or XLSX file."""
    with db.session(actor) as session:
        labels = {
            f"custom.{d.name}": (d.label_zh if lang == "zh-CN" else d.label_en)
            for d in custom_field_definitions(session)
        }
        headers = ["ID", *[column_label(column, lang, labels) for column in columns]]

        def rows() -> Iterator[list[Any]]:
            for row in iter_customers(session, filters=filters, sort=sort, descending=descending, limit=limit):
                yield [row.id, *[display_value(row, column, lang) for column in columns]]

        if file_format == "xlsx":
            return to_xlsx(headers, rows(), sheet_title=t("customers.title", lang))
        return to_csv(headers, rows())
