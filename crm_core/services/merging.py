"""Merge use cases: fold a duplicate customer (or contact) into the record that survives.

``merge_customers`` / ``merge_contacts`` run in ONE transaction, under the actor's scope:
1. both records load through the scoped session (not visible: NotFound), the role is a
   manager's or an admin's (else AccessDenied), neither was merged before, and both are at
   the versions the dialog showed (else StaleRecord — optimistic locking on both);
2. the survivor takes the chosen value of each field (``crm_core.rules.merging``) and the
   merged record is archived, both through the ORM: checked and audited like any edit;
3. every row that points at the merged record moves to the survivor: one UPDATE per
   referencing column, the columns found in the SQLAlchemy metadata
   (``crm_core.queries.merges.references_to``), so a table added later moves too. A row the
   survivor already has its twin of (a unique key: the same campaign, the same automation
   firing, a score of the same scorer) is dropped instead. Orders and tasks get the survivor's
   owner and team through their triggers (migrations 0010, 0015); versioned rows get a new
   version, so a form open on them sees the change;
4. each moved row gets an audit row (in bulk), both records a ``merge`` row, and ``merges``
   keeps who merged what into what with the field choices: imports, the API and the 360
   use it to find the survivor from an old id;
5. the survivor's lifecycle stage is computed again by the lifecycle engine, and its version
   moves past both records' versions (a write aimed at the old id with its old version is stale).
Bulk statements only: a customer with 1,000 related rows merges in well under 2 s.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import UniqueConstraint, and_, delete, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.util import ClauseAdapter

from crm_core.access import Actor, table_entity_name
from crm_core.bulk import driver_form, insert_rows
from crm_core.db import Database
from crm_core.errors import AccessDenied, MergeRefused, NotFound, ValidationFailed
from crm_core.models import AuditEvent, Base, Contact, Customer, Role, utcnow
from crm_core.models.merges import Merge, MergeEntity
from crm_core.queries.merges import TABLE_OF, Reference, compared_fields, references_to
from crm_core.rules import fields as field_rules
from crm_core.rules import merging as rules
from crm_core.rules.contact_details import normalise_email, normalise_phone, store_tags
from crm_core.services.customer_tiers import orders_changed
from crm_core.services.editing import check_version, translate_stale
from crm_core.services.lifecycle import refresh_lifecycle

AUDIT_CHUNK = 5000
MERGING_ROLES = (Role.ADMIN, Role.MANAGER)
# Rows that only mean something for the record they were written for: the merged customer's manual
# lifecycle stage does not hold for the survivor (its stage is computed again instead).
DROPPED_WITH_THE_MERGED = {"lifecycle_overrides.customer_id"}


class Versions(NamedTuple):
    """The versions of the two records the merge dialog (or API client) was shown."""

    survivor: int
    merged: int


@dataclass(frozen=True)
class MergeResult:
    """What a merge did: the ledger row, the survivor's new version, rows moved and twins dropped."""

    merge_id: int
    survivor_id: int
    survivor_version: int
    moved: dict[str, int]
    dropped: dict[str, int]


def merge_customers(
    db: Database, actor: Actor, survivor_id: int, merged_id: int, field_choices: Mapping[str, str],
    expected_versions: Versions,
) -> MergeResult:
    """Merge customer ``merged_id`` into ``survivor_id``; raises AccessDenied, NotFound, MergeRefused,
    StaleRecord or ValidationFailed (an unknown field or choice), and then nothing has changed."""
    return _merge(db, actor, MergeEntity.CUSTOMER, survivor_id, merged_id, field_choices, expected_versions)


def merge_contacts(
    db: Database, actor: Actor, survivor_id: int, merged_id: int, field_choices: Mapping[str, str],
    expected_versions: Versions,
) -> MergeResult:
    """Merge contact ``merged_id`` into ``survivor_id`` (two contacts of one customer); errors as for customers."""
    return _merge(db, actor, MergeEntity.CONTACT, survivor_id, merged_id, field_choices, expected_versions)


def _merge(
    db: Database, actor: Actor, entity: str, survivor_id: int, merged_id: int, field_choices: Mapping[str, str],
    expected_versions: Versions,
) -> MergeResult:
    if actor.role not in MERGING_ROLES:
        raise AccessDenied("only a manager or an admin merges records")
    if survivor_id == merged_id:
        raise MergeRefused("merge.error.same_record")
    return translate_stale(
        db, actor, entity, survivor_id,
        lambda: _merge_in_transaction(db, actor, entity, survivor_id, merged_id, field_choices, expected_versions),
    )


def _merge_in_transaction(
    db: Database, actor: Actor, entity: str, survivor_id: int, merged_id: int, field_choices: Mapping[str, str],
    expected_versions: Versions,
) -> MergeResult:
    model: Any = Customer if entity == MergeEntity.CUSTOMER else Contact
    with db.transaction(actor) as session:
        survivor, merged = session.get(model, survivor_id), session.get(model, merged_id)
        if survivor is None or merged is None:
            raise NotFound(entity)
        _check_mergeable(session, entity, survivor, merged)
        check_version(session, survivor, entity, expected_versions.survivor)
        check_version(session, merged, entity, expected_versions.merged)
        fields = compared_fields(session, entity, survivor, merged)
        choices, errors = rules.resolve_choices(fields, field_choices)
        if errors:
            raise ValidationFailed(errors)
        now = utcnow()
        if entity == MergeEntity.CUSTOMER:
            owner_since = _apply_customer_choices(survivor, merged, fields, choices)
        else:
            owner_since = None
            _apply_contact_choices(survivor, merged, fields, choices)
        merged.archived_at = now
        ledger = Merge(tenant_id=actor.tenant_id, entity=entity, merged_id=merged.id, survivor_id=survivor.id,
                       actor_id=actor.user_id, merged_at=now, field_choices=dict(choices), moved={})
        session.add(ledger)
        session.flush()  # access checks and the field audit of both records; the ledger's id
        connection = session.connection()
        if owner_since is not None:  # the owner came with the merged record: so does the pool's idle clock
            customers = Base.metadata.tables["customers"]
            connection.execute(update(customers).where(customers.c.id == survivor.id).values(owner_since=owner_since))
        moved, dropped = _move_references(session, actor, entity, survivor, merged, ledger.id, now)
        ledger.moved = {**moved, **{f"{key}:dropped": count for key, count in dropped.items()}}
        audit_merge(session, actor, entity, survivor.id, merged.id, ledger.id, choices, now)
        if entity == MergeEntity.CUSTOMER:
            refresh_lifecycle(session, actor.tenant_id, [survivor.id])
            orders_changed(session, actor.tenant_id, [survivor.id])  # the merged one's orders are the survivor's
        session.flush()
        version = _version_past_both(session, actor.tenant_id, entity, survivor.id, merged.id)
        session.expire(survivor)
        return MergeResult(merge_id=ledger.id, survivor_id=survivor.id, survivor_version=version,
                           moved=moved, dropped=dropped)


def _version_past_both(session: Session, tenant_id: int, entity: str, survivor_id: int, merged_id: int) -> int:
    """The survivor's version moves past every version either record had: a write that still names the merged
    record with the version it read (an API call redirected to the survivor) is refused as stale, never applied."""
    table = Base.metadata.tables[TABLE_OF[entity]]
    connection = session.connection()
    versions = dict(connection.execute(
        select(table.c.id, table.c.version)
        .where(table.c.tenant_id == tenant_id, table.c.id.in_([survivor_id, merged_id]))).all())
    version = max(int(versions[survivor_id]), int(versions[merged_id])) + 1
    connection.execute(update(table).where(table.c.tenant_id == tenant_id, table.c.id == survivor_id)
                       .values(version=version))
    return version


def _check_mergeable(session: Session, entity: str, survivor: Any, merged: Any) -> None:
    merged_before = dict(session.execute(
        select(Merge.merged_id, Merge.survivor_id)
        .where(Merge.entity == entity, Merge.merged_id.in_([survivor.id, merged.id]))
    ).all())
    if merged.id in merged_before:
        raise MergeRefused("merge.error.already_merged")
    if survivor.id in merged_before:
        raise MergeRefused("merge.error.survivor_merged")
    if survivor.archived_at is not None or merged.archived_at is not None:
        raise MergeRefused("merge.error.archived")
    if entity == MergeEntity.CONTACT and survivor.customer_id != merged.customer_id:
        raise MergeRefused("merge.error.other_customer")


def _apply_customer_choices(
    survivor: Customer, merged: Customer, fields: dict[str, tuple[Any, Any]], choices: dict[str, str]
) -> dt.datetime | None:
    """Give the survivor the chosen values; returns the merged record's owner_since when its owner was chosen."""
    owner_since = None
    for name, choice in choices.items():
        value = rules.chosen_value(choice, *fields[name])
        if name == "owner":
            if choice == rules.MERGED and (survivor.owner_id, survivor.team_id) != value:
                survivor.owner_id, survivor.team_id = value
                owner_since = merged.owner_since
        elif name == "tags":
            stored = store_tags(value)
            if (problem := field_rules.too_long(field_rules.CUSTOMER["tags"], stored)) is not None:
                raise ValidationFailed({"field_choices.tags": problem})
            survivor.tags = stored
        elif name.startswith(rules.CUSTOM_PREFIX):
            continue
        else:
            setattr(survivor, name, value)
    survivor.email_normalized = normalise_email(survivor.email or "")
    survivor.phone_normalized = normalise_phone(survivor.phone or "")
    custom = dict(survivor.custom_fields or {})
    for name, choice in choices.items():
        if name.startswith(rules.CUSTOM_PREFIX):
            key = name.removeprefix(rules.CUSTOM_PREFIX)
            value = rules.chosen_value(choice, *fields[name])
            if value is None:
                custom.pop(key, None)
            else:
                custom[key] = value
    survivor.custom_fields = custom
    survivor.last_contacted_at = _latest(survivor.last_contacted_at, merged.last_contacted_at)
    survivor.next_follow_up_at = _earliest(survivor.next_follow_up_at, merged.next_follow_up_at)
    return owner_since


def _apply_contact_choices(
    survivor: Contact, merged: Contact, fields: dict[str, tuple[Any, Any]], choices: dict[str, str]
) -> None:
    for name, choice in choices.items():
        setattr(survivor, name, rules.chosen_value(choice, *fields[name]))
    survivor.email_normalized = normalise_email(survivor.email or "")  # the duplicate check's keys follow
    survivor.phone_normalized = normalise_phone(survivor.phone or "")
    survivor.is_primary = survivor.is_primary or merged.is_primary
    merged.is_primary = False


def _latest(first: dt.datetime | None, second: dt.datetime | None) -> dt.datetime | None:
    return max((moment for moment in (first, second) if moment is not None), default=None)


def _earliest(first: dt.datetime | None, second: dt.datetime | None) -> dt.datetime | None:
    return min((moment for moment in (first, second) if moment is not None), default=None)


def _move_references(
    session: Session, actor: Actor, entity: str, survivor: Any, merged: Any, merge_id: int, now: dt.datetime
) -> tuple[dict[str, int], dict[str, int]]:
    """Point every row at the survivor: twins dropped, the rest moved by one UPDATE per column, each audited."""
    connection = session.connection()
    moved: dict[str, int] = {}
    dropped: dict[str, int] = {}
    primary_cleared: set[int] = set()
    if entity == MergeEntity.CUSTOMER:
        primary_cleared = _clear_second_primary(session, actor, survivor.id, merged.id)
    for reference in references_to(TABLE_OF[entity]):
        table, column = reference.table, reference.column
        scope = [table.c.tenant_id == actor.tenant_id, column == merged.id, *reference.where]
        if reference.key in DROPPED_WITH_THE_MERGED:
            twins = list(connection.scalars(select(table.c.id).where(*scope)))
        else:
            twins = _twins(session, reference, actor.tenant_id, survivor.id, merged.id)
        if twins:
            connection.execute(delete(table).where(table.c.tenant_id == actor.tenant_id, table.c.id.in_(twins)))
            dropped[reference.key] = len(twins)
        ids = list(connection.scalars(select(table.c.id).where(*scope)))
        if not ids:
            continue
        values: dict[str, Any] = {column.name: survivor.id}
        if "version" in table.c:
            values["version"] = table.c.version + 1
        if "updated_at" in table.c:
            values["updated_at"] = now
        connection.execute(update(table).where(*scope).values(**values))
        moved[reference.key] = len(ids)
        extra = {"is_primary": [True, False]} if table.name == "contacts" else {}
        _audit_moves(session, actor, table.name, ids, column.name, merged.id, survivor.id, merge_id, now,
                     primary_cleared, extra)
    return moved, dropped


def _twins(session: Session, reference: Reference, tenant_id: int, survivor_id: int, merged_id: int) -> list[int]:
    """Rows of the merged record whose unique key, once moved, would equal a row of the survivor's."""
    table, column = reference.table, reference.column
    twins: set[int] = set()
    for constraint in table.constraints:
        if not isinstance(constraint, UniqueConstraint) or column.name not in constraint.columns:
            continue
        mine, theirs = table.alias("mine"), table.alias("theirs")
        same = [mine.c[other.name] == theirs.c[other.name] for other in constraint.columns if other.name != column.name]
        statement = (
            select(mine.c.id)
            .join(theirs, and_(theirs.c.tenant_id == tenant_id, theirs.c[column.name] == survivor_id, *same))
            .where(mine.c.tenant_id == tenant_id, mine.c[column.name] == merged_id)
        )
        for criterion in reference.where:  # stated on the table: restated on both aliases
            statement = statement.where(ClauseAdapter(mine).traverse(criterion),
                                        ClauseAdapter(theirs).traverse(criterion))
        twins.update(session.connection().scalars(statement))
    return sorted(twins)


def _clear_second_primary(session: Session, actor: Actor, survivor_id: int, merged_id: int) -> set[int]:
    """A customer has one primary contact: when the survivor has one, the merged record's primary ones stop being it."""
    contacts = Base.metadata.tables["contacts"]
    connection = session.connection()
    survivor_has = connection.scalar(select(contacts.c.id).where(
        contacts.c.tenant_id == actor.tenant_id, contacts.c.customer_id == survivor_id,
        contacts.c.is_primary.is_(True), contacts.c.archived_at.is_(None)).limit(1))
    if survivor_has is None:
        return set()
    cleared = set(connection.scalars(select(contacts.c.id).where(
        contacts.c.tenant_id == actor.tenant_id, contacts.c.customer_id == merged_id,
        contacts.c.is_primary.is_(True))))
    if cleared:
        connection.execute(update(contacts).where(contacts.c.id.in_(sorted(cleared))).values(is_primary=False))
    return cleared


def _audit_moves(
    session: Session, actor: Actor, table: str, ids: list[int], column: str, merged_id: int, survivor_id: int,
    merge_id: int, now: dt.datetime, primary_cleared: set[int], extra: dict[str, list[Any]],
) -> None:
    """One audit row per moved row (in bulk): the record's own history says where it went and why."""
    audit_events = AuditEvent.__table__
    encode = driver_form(session, audit_events, "changes")  # type: ignore[arg-type]
    entity = table_entity_name(table)
    base = {column: [merged_id, survivor_id], "_merge": [None, merge_id]}
    plain, with_extra = encode(base), encode({**base, **extra})
    columns = ("tenant_id", "actor_id", "action", "entity", "entity_id", "occurred_at", "created_at", "updated_at",
               "changes")
    for start in range(0, len(ids), AUDIT_CHUNK):
        rows = [
            (actor.tenant_id, actor.user_id, "update", entity, record_id, now, now, now,
             with_extra if record_id in primary_cleared else plain)
            for record_id in ids[start:start + AUDIT_CHUNK]
        ]
        insert_rows(session, audit_events, rows, columns=columns, converted=("changes",))  # type: ignore[arg-type]


def audit_merge(
    session: Session, actor: Actor, entity: str, survivor_id: int, merged_id: int, merge_id: int,
    choices: dict[str, str], now: dt.datetime,
) -> None:
    """A ``merge`` row in the history of each record, naming the other."""
    session.add_all([
        AuditEvent(tenant_id=actor.tenant_id, actor_id=actor.user_id, action="merge", entity=entity,
                   entity_id=survivor_id, occurred_at=now,
                   changes={"_merged_from": [None, merged_id], "_merge": [None, merge_id],
                            "_field_choices": [None, choices]}),
        AuditEvent(tenant_id=actor.tenant_id, actor_id=actor.user_id, action="merge", entity=entity,
                   entity_id=merged_id, occurred_at=now,
                   changes={"_merged_into": [None, survivor_id], "_merge": [None, merge_id]}),
    ])
