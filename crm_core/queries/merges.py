"""Read side of merges: where a merged id now lives, and what a merge would change (the dialog's preview).

:func:`survivor_of` follows the ``merges`` ledger (A into B, later B into C: A → C), so an API
call, an import row or a bookmarked page that still names an old id reaches the record that
lives on. :func:`references_to` lists, from the SQLAlchemy metadata, every column that points
at a customer or a contact: the preview counts them and the merge moves them, so a table added
later cannot be forgotten by either.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, ColumnElement, Table, func, select
from sqlalchemy.orm import Session

from crm_core.models import Base, Contact, Customer, FieldDefinition, User
from crm_core.models.merges import Merge, MergeEntity
from crm_core.rules import merging as rules

MAX_HOPS = 20  # a chain of merges longer than this is not followed (it cannot loop: a survivor is live)

TABLE_OF = {MergeEntity.CUSTOMER: "customers", MergeEntity.CONTACT: "contacts"}


@dataclass(frozen=True)
class Reference:
    """A column holding ids of a customer or contact, with the condition that makes a row count."""

    table: Table
    column: Column[Any]
    where: tuple[ColumnElement[bool], ...] = ()

    @property
    def key(self) -> str:
        """``table.column``: how counts and the ledger name it."""
        return f"{self.table.name}.{self.column.name}"


def _scores_of(entity: str) -> Reference:
    scores = Base.metadata.tables["scores"]
    return Reference(scores, scores.c.entity_id, (scores.c.entity == entity,))


# Columns that hold ids without a foreign key (the scorers write several kinds of record in one table).
# The audit trail (audit_events.entity_id) and webhook events stay with the record they describe.
REFERENCES_WITHOUT_KEY = {"customers": (lambda: _scores_of("customer"),), "contacts": ()}


def references_to(table_name: str) -> list[Reference]:
    """Every column of the metadata that points at ``table_name`` (foreign keys, then the known others)."""
    found = [
        Reference(table, foreign_key.parent)
        for table in Base.metadata.sorted_tables
        for foreign_key in table.foreign_keys
        if foreign_key.column.table.name == table_name and table.name != "merges"
    ]
    found.extend(make() for make in REFERENCES_WITHOUT_KEY[table_name])
    return sorted(found, key=lambda reference: reference.key)


def survivor_of(session: Session, entity: str, record_id: int) -> int | None:
    """The live record ``record_id`` was merged into (following later merges too); None if it was not merged.

    Read under the session's scope: the caller then loads the survivor, which the access rules
    may still hide.
    """
    current, found = record_id, None
    for _ in range(MAX_HOPS):
        target = session.scalar(select(Merge.survivor_id).where(Merge.entity == entity, Merge.merged_id == current))
        if target is None:
            break
        current = found = target
    return found


def merged_ids_among(session: Session, entity: str, record_ids: list[int]) -> dict[int, int]:
    """``{old id: direct survivor}`` for the merged ones among ``record_ids``, in one query."""
    if not record_ids:
        return {}
    rows = session.execute(
        select(Merge.merged_id, Merge.survivor_id).where(Merge.entity == entity, Merge.merged_id.in_(record_ids))
    ).all()
    return {merged: survivor for merged, survivor in rows}


def redirect_target(session: Session, entity: str, record_id: int) -> int | None:
    """Where a request for ``record_id`` goes instead: its survivor, when the record was merged away and the
    session may see it (one who could not see the old record learns nothing of where it went)."""
    model: Any = Customer if entity == MergeEntity.CUSTOMER else Contact
    survivor = survivor_of(session, entity, record_id)
    if survivor is None or session.get(model, record_id) is None:
        return None
    return survivor


def live_survivors(session: Session, column: Any, values: list[Any]) -> dict[Any, int]:
    """``{value: survivor id}`` for those ``values`` of ``column`` (a Customer column) held by merged-away customers.

    How an import finds the survivor from an old external reference, email or name: the merged record
    (archived, still visible under the session's scope) leads through the ledger to the live survivor;
    a value two merged records share, with different survivors, resolves to none (as for live ones).
    One query over the tenant's merges (few, beside an import's keys), matched here against ``values``.
    """
    wanted = set(values)
    direct: dict[Any, set[int]] = {}
    if wanted:
        rows = session.execute(
            select(column, Merge.survivor_id)
            .join(Customer, Customer.id == Merge.merged_id)
            .where(Merge.entity == MergeEntity.CUSTOMER, column.is_not(None))
        ).all()
        for value, survivor_id in rows:
            if value in wanted:
                direct.setdefault(value, set()).add(survivor_id)
    final: dict[int, int] = {}
    for survivor_id in {survivor for found in direct.values() for survivor in found}:
        final[survivor_id] = survivor_of(session, MergeEntity.CUSTOMER, survivor_id) or survivor_id
    live = set(session.scalars(
        select(Customer.id).where(Customer.id.in_(sorted(set(final.values()))), Customer.archived_at.is_(None))
    )) if final else set()
    result: dict[Any, int] = {}
    for value, survivors in direct.items():
        targets = {final[survivor] for survivor in survivors}
        if len(targets) == 1 and (target := next(iter(targets))) in live:
            result[value] = target
    return result


@dataclass(frozen=True)
class FieldRow:
    """One line of the side-by-side table: the two values (as stored) and the default choice."""

    name: str
    survivor_value: Any
    merged_value: Any
    default: str
    choices: tuple[str, ...]
    label: str = ""  # a custom field's label (in the definition's language pair); else the page translates name


@dataclass(frozen=True)
class MergePreview:
    """What merging ``merged_id`` into ``survivor_id`` would do: the fields side by side and the rows that move."""

    entity: str
    survivor_id: int
    merged_id: int
    survivor_name: str
    merged_name: str
    survivor_version: int
    merged_version: int
    fields: list[FieldRow]
    moves: dict[str, int] = field(default_factory=dict)

    @property
    def total_moves(self) -> int:
        """How many rows in all point at the record merged away."""
        return sum(self.moves.values())


def customer_field_values(session: Session, customer: Customer) -> dict[str, Any]:
    """A customer's mergeable fields as the merge compares them (owner as (owner id, team id))."""
    values: dict[str, Any] = {name: getattr(customer, name) for name in rules.CUSTOMER_FIELDS
                              if name not in ("owner", "tags")}
    values["owner"] = (customer.owner_id, customer.team_id)
    values["tags"] = customer.tag_list
    return values


def custom_field_names(session: Session, entity: str, *records: Any) -> dict[str, str]:
    """The custom fields to compare: the tenant's definitions for ``entity``, then keys only a record holds."""
    names = {
        definition.name: f"{definition.label_en} / {definition.label_zh}"
        for definition in session.scalars(
            select(FieldDefinition).where(FieldDefinition.entity == entity).order_by(FieldDefinition.position)
        )
    }
    for record in records:
        for key in sorted(getattr(record, "custom_fields", None) or {}):
            names.setdefault(key, key)
    return names


def compared_fields(session: Session, entity: str, survivor: Any, merged: Any) -> dict[str, tuple[Any, Any]]:
    """``{field: (survivor's value, merged's value)}`` for every field the merge chooses."""
    if entity == MergeEntity.CUSTOMER:
        left, right = customer_field_values(session, survivor), customer_field_values(session, merged)
        fields = {name: (left[name], right[name]) for name in rules.CUSTOMER_FIELDS}
        for name in custom_field_names(session, "customer", survivor, merged):
            fields[rules.CUSTOM_PREFIX + name] = (
                (survivor.custom_fields or {}).get(name), (merged.custom_fields or {}).get(name)
            )
        return fields
    return {name: (getattr(survivor, name), getattr(merged, name)) for name in rules.CONTACT_FIELDS}


def count_moves(session: Session, entity: str, tenant_id: int, merged_id: int) -> dict[str, int]:
    """Rows of every referencing column that point at ``merged_id`` (the whole tenant's, visible or not)."""
    connection = session.connection()
    counts: dict[str, int] = {}
    for reference in references_to(TABLE_OF[entity]):
        counted = connection.scalar(
            select(func.count()).select_from(reference.table)
            .where(reference.table.c.tenant_id == tenant_id, reference.column == merged_id, *reference.where)
        )
        if counted:
            counts[reference.key] = int(counted)
    return counts


def merge_preview(session: Session, entity: str, survivor_id: int, merged_id: int) -> MergePreview | None:
    """The side-by-side table and the counts; None when either record is not visible."""
    model: Any = Customer if entity == MergeEntity.CUSTOMER else Contact
    survivor, merged = session.get(model, survivor_id), session.get(model, merged_id)
    if survivor is None or merged is None:
        return None
    fields = compared_fields(session, entity, survivor, merged)
    labels = custom_field_names(session, "customer", survivor, merged) if entity == MergeEntity.CUSTOMER else {}
    rows = [
        FieldRow(name, left, right, rules.default_choice(name, left, right), rules.choices_allowed(name),
                 labels.get(name.removeprefix(rules.CUSTOM_PREFIX), "") if name.startswith(rules.CUSTOM_PREFIX)
                 else "")
        for name, (left, right) in fields.items()
    ]
    return MergePreview(
        entity=entity, survivor_id=survivor.id, merged_id=merged.id, survivor_name=survivor.name,
        merged_name=merged.name, survivor_version=survivor.version, merged_version=merged.version, fields=rows,
        moves=count_moves(session, entity, survivor.tenant_id, merged.id),
    )


def owner_names(session: Session, user_ids: list[int]) -> dict[int, str]:
    """Full names of the given users (the owner row of the dialog)."""
    if not user_ids:
        return {}
    return dict(session.execute(select(User.id, User.full_name).where(User.id.in_(user_ids))).all())
