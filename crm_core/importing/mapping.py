"""The column mapping of an import and its options, as the wizard and the CLI's JSON state them.

Mapping file (CLI ``--mapping``)::

    {"columns": {"<file column>": "<field>"},
     "values": {"<file column>": {"<file value>": "<stored value>"}},
     "match_on": ["<field>"],
     "customer_match": "any" | "name" | "external_id" | "email"}

``customer_match`` says what the customer column of a contacts, deals, orders, activities or tasks
file holds: the customer's name, external ID or email, or (``any``, the default) any of the three.

A column mapped to ``custom:<name>`` lands in the entity's custom fields (customers only);
an unknown custom field is created as a text field when the importer is an admin.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from crm_core.errors import ImportNotAllowed
from crm_core.importing.fields import (
    CUSTOM_FIELD_ENTITIES,
    CUSTOM_PREFIX,
    CUSTOMER_MATCHES,
    DEFAULT_MATCH,
    ENTITIES,
    MATCH_KEYS,
    ORPHAN_POLICIES,
    fields_of,
    suggest_customer_match,
    suggest_mapping,
)
from crm_core.importing.reading import DEFAULT_CHUNK_ROWS

MODES = ("create", "update", "upsert")
POLICIES = ("all-or-nothing", "skip-invalid")
DUPLICATE_ACTIONS = ("skip", "merge", "create")


@dataclass
class ImportMapping:
    """Which file column feeds which field, how enumerated values translate, and the match keys."""

    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    match_on: list[str] = field(default_factory=list)
    customer_match: str = "any"  # what the customer column holds (CUSTOMER_MATCHES)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (also stored on the import run and in templates)."""
        return {
            "columns": dict(self.columns),
            "values": {k: dict(v) for k, v in self.values.items()},
            "match_on": list(self.match_on),
            "customer_match": self.customer_match,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ImportMapping:
        """Read the JSON form; raises ImportNotAllowed when its shape is wrong."""
        if not isinstance(data, dict):
            raise ImportNotAllowed("imports.error.mapping_shape")
        columns = data.get("columns", {})
        values = data.get("values", {})
        match_on = data.get("match_on", [])
        customer_match = data.get("customer_match") or "any"
        if not isinstance(customer_match, str):
            raise ImportNotAllowed("imports.error.mapping_shape")
        if not isinstance(columns, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in columns.items()
        ):
            raise ImportNotAllowed("imports.error.mapping_shape")
        if not isinstance(values, dict) or not all(
            isinstance(v, dict) and all(isinstance(a, str) and isinstance(b, str) for a, b in v.items())
            for v in values.values()
        ):
            raise ImportNotAllowed("imports.error.mapping_shape")
        if isinstance(match_on, str):
            match_on = [match_on]
        if not isinstance(match_on, list) or not all(isinstance(item, str) for item in match_on):
            raise ImportNotAllowed("imports.error.mapping_shape")
        return cls(
            columns={k.strip(): v.strip() for k, v in columns.items() if v.strip()}, values=values, match_on=match_on,
            customer_match=customer_match.strip(),
        )

    @classmethod
    def from_json(cls, text: str) -> ImportMapping:
        """Parse a mapping file."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise ImportNotAllowed("imports.error.mapping_json", detail=str(error)) from error

    @classmethod
    def suggested(cls, entity: str, headers: list[str]) -> ImportMapping:
        """The mapping the headers suggest, with the entity's default match keys (and the customer column read
        by external ID or email when its header says so: "Account ID", "客户编号", "Customer email")."""
        columns = suggest_mapping(entity, headers)
        customer_column = next((column for column, target in columns.items() if target == "customer"), None)
        return cls(columns=columns, values={}, match_on=list(DEFAULT_MATCH[entity]),
                   customer_match=suggest_customer_match(customer_column))

    def field_to_column(self) -> dict[str, str]:
        """``{field: file column}`` for mapped standard fields."""
        return {target: column for column, target in self.columns.items() if not target.startswith(CUSTOM_PREFIX)}

    def custom_columns(self) -> dict[str, str]:
        """``{custom field name: file column}``."""
        return {
            target.removeprefix(CUSTOM_PREFIX): column
            for column, target in self.columns.items()
            if target.startswith(CUSTOM_PREFIX)
        }


@dataclass(frozen=True)
class ImportOptions:
    """How to write: mode, policy for invalid rows, what to do with duplicates, batch size, and who gets the rows
    whose owner (assignee, author) names no user: nobody (``fallback_owner`` None: the row is refused), the user
    ``fallback_owner`` names (username, full name or email; one the importer may give records to), or
    (``create_owners``, admins only) an inactive user of that name, created once per distinct name (decision 0043).
    ``orphans``: what becomes of a row whose customer cell is empty (``fields.ORPHAN_POLICIES``)."""

    mode: str = "create"
    policy: str = "all-or-nothing"
    duplicates: str = "skip"
    chunk_size: int = DEFAULT_CHUNK_ROWS
    fallback_owner: str | None = None
    orphans: str = "reject"
    create_owners: bool = False


def check_mapping(entity: str, mapping: ImportMapping, headers: list[str], options: ImportOptions) -> None:
    """Refuse a mapping that cannot work: unknown entity/field/column, a field mapped twice, bad options."""
    if entity not in ENTITIES:
        raise ImportNotAllowed("imports.error.unknown_entity", entity=entity, entities=", ".join(ENTITIES))
    if options.mode not in MODES:
        raise ImportNotAllowed("imports.error.unknown_mode", mode=options.mode)
    if options.policy not in POLICIES:
        raise ImportNotAllowed("imports.error.unknown_policy", policy=options.policy)
    if options.duplicates not in DUPLICATE_ACTIONS:
        raise ImportNotAllowed("imports.error.unknown_duplicates", action=options.duplicates)
    if options.orphans not in ORPHAN_POLICIES:
        raise ImportNotAllowed("imports.error.unknown_orphans", policy=options.orphans,
                               policies=", ".join(ORPHAN_POLICIES))
    if mapping.customer_match not in CUSTOMER_MATCHES:
        raise ImportNotAllowed("imports.error.unknown_customer_match", match=mapping.customer_match,
                               matches=", ".join(CUSTOMER_MATCHES))
    known = {spec.name for spec in fields_of(entity)}
    header_set = set(headers)
    used: dict[str, str] = {}
    for column, target in mapping.columns.items():
        if column not in header_set:
            raise ImportNotAllowed("imports.error.unknown_column", column=column)
        if target.startswith(CUSTOM_PREFIX):
            if entity not in CUSTOM_FIELD_ENTITIES:
                raise ImportNotAllowed("imports.error.no_custom_fields", entity=entity)
            if not target.removeprefix(CUSTOM_PREFIX).strip():
                raise ImportNotAllowed("imports.error.unknown_field", field=target)
        elif target not in known:
            raise ImportNotAllowed("imports.error.unknown_field", field=target)
        if target in used:
            raise ImportNotAllowed("imports.error.field_twice", field=target, first=used[target], second=column)
        used[target] = column
    for column in mapping.values:
        if column not in mapping.columns:
            raise ImportNotAllowed("imports.error.unknown_column", column=column)
    missing = [spec.name for spec in fields_of(entity) if spec.required and spec.name not in used]
    if missing and options.mode != "update":
        raise ImportNotAllowed("imports.error.required_unmapped", fields=", ".join(missing))
    for key in mapping.match_on:
        if key not in MATCH_KEYS[entity]:
            raise ImportNotAllowed("imports.error.bad_match_key", field=key, keys=", ".join(MATCH_KEYS[entity]) or "-")
    if options.mode in ("update", "upsert") and not [key for key in mapping.match_on if key in used]:
        raise ImportNotAllowed("imports.error.no_match_key")
