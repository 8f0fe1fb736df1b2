"""From raw file cells to the prepared frame the GX suites check and the writer stores.

For each chunk: apply the column and value mapping, clean every cell by the field's kind
(trim, full-width folding, numbers with thousands separators or currency signs, dates in
several formats, yes/no in two languages), resolve references by natural key with one SQL
query per reference for the whole chunk, and compute the companion columns the suites
expect on (``<field>__invalid``, ``<field>__unresolved``, ``_duplicate_in_file``,
``_key_taken``, ``_match_missing``; see ``validations/_rules.py``). Duplicate detection
inside the file spans chunks through :class:`FileState`.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, literal_column, or_, select
from sqlalchemy.orm import Session

from crm_core.access import Actor, can_assign_owner
from crm_core.errors import ImportNotAllowed
from crm_core.i18n import LANGUAGES, t
from crm_core.importing.fields import (
    CUSTOM_FIELD_ENTITIES,
    HARD_KEYS,
    ORPHAN_ENTITIES,
    VALUE_SYNONYMS,
    FieldSpec,
    fields_of,
)
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import EXTRA_COLUMN
from crm_core.models import (
    Contact,
    Customer,
    FieldDefinition,
    Opportunity,
    Order,
    Pipeline,
    PipelineStage,
    Product,
    Task,
    User,
    utcnow,
)
from crm_core.models.pipeline import OpportunityLine
from crm_core.queries.merges import live_survivors
from crm_core.rules import fields as rules
from crm_core.rules import regions
from crm_core.rules.contact_details import company_key, normalise_email, normalise_phone, parse_tags, store_tags
from crm_core.rules.custom_fields import read_custom_value
from crm_core.rules.duplicates import BLOCK, CONTACT, CUSTOMER
from crm_core.rules.fields import CONSENT_NONE, clean_text, parse_bool, parse_datetime, read_number
from crm_core.rules.identifiers import compact_credit_code, credit_code_problem
from crm_core.rules.pipeline import (
    LOST_REASON_MAX,
    StageInfo,
    closing_problems,
    first_open_stage,
    transition_allowed,
)
from crm_core.services.duplicate_rules import rule_actions

if TYPE_CHECKING:  # pragma: no cover
    import pandas

IN_BATCH = 900  # bind parameters per IN list: safe on every database
TAKEN_IN_DB = {"products": "sku", "orders": "order_number"}
_UNSEEN: Any = object()
_blank_to_none = clean_text  # one cleaning for a typed and an imported cell (see crm_core.rules.fields)


def parse_number(text: str | None) -> tuple[float | None, bool]:
    """(value, ok): ``"¥1,200.50"`` → 1200.5; ``"(30)"`` → -30; blank → (None, True); junk → (None, False)."""
    value, ok = read_number(text)
    return (None if value is None else float(value)), ok


def choice_lookup(spec: FieldSpec) -> dict[str, str]:
    """Every spelling of each choice → the stored value (value, translations, synonyms), case-folded."""
    lookup: dict[str, str] = {}
    for choice in spec.choices:
        lookup[choice.casefold()] = choice
        for prefix in ("stage.", "kind.", "activity.", "task_status.", "priority.", "order_status.", "consent.basis."):
            for lang in LANGUAGES:
                label = t(prefix + choice, lang)
                if label != prefix + choice:
                    lookup.setdefault(label.casefold(), choice)
    for word, value in VALUE_SYNONYMS.get(spec.name, {}).items():
        if value in spec.choices:
            lookup.setdefault(word.casefold(), value)
    return lookup


@dataclass(frozen=True)
class DealState:
    """Where a deal stands before a row of the file changes it: its stage, the day it closed, the day it opened."""

    stage: StageInfo
    closed_on: dt.date | None
    created_on: dt.date


@dataclass
class FileState:
    """What earlier chunks of the same file left behind: keys seen, and in which row."""

    hard_keys: MutableMapping[str, int] = field(default_factory=dict)  # the importer gives compact ones
    match_keys: MutableMapping[tuple[str, str], int] = field(default_factory=dict)
    order_customers: dict[str, str] = field(default_factory=dict)
    order_totals: dict[str, float] = field(default_factory=dict)  # order number → its lines' total so far
    blocked_keys: dict[tuple[str, str], int] = field(default_factory=dict)  # a blocking duplicate key → first row
    addresses: dict[str, regions.AddressMatch] = field(default_factory=dict)  # region text → its cascade
    external_ids: dict[str, tuple[int, Any]] = field(default_factory=dict)  # → (first row, its order number)
    # a deal the file writes, by the first row of its key: where the file leaves it (the next row moves it from there)
    deal_states: dict[int, DealState] = field(default_factory=dict)
    # a deal's lines as they were when the file first named the deal, by (product, quantity, price): the ids not
    # matched by a row yet (the k-th equal row of the file matches the k-th equal line)
    deal_lines: dict[int, dict[tuple[int, Decimal, Decimal], list[int]]] = field(default_factory=dict)


def _chunks(values: Iterable[Any], size: int = IN_BATCH) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for value in values:
        batch.append(value)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class Resolver:
    """SQL look-ups for one import, within what the actor's session may see."""

    def __init__(self, session: Session, actor: Actor) -> None:
        self.session = session
        self.actor = actor
        self._owners: dict[str, int | None] | None = None
        self._owner_cells: dict[str, int | None] = {}
        self._inactive: dict[str, int | None] | None = None
        self._stages: dict[str, tuple[int, int]] | None = None
        self.default_stage: tuple[int, int] | None = None
        self.stage_info: dict[int, StageInfo] = {}  # the default pipeline's stages by id (after stages())
        self.stage_names: dict[int, str] = {}  # stage id → its name (the default pipeline's, and deals' own)
        self.first_open: StageInfo | None = None
        self._custom_fields: dict[str, tuple[str, list[str] | None, bool]] | None = None

    def owners(self) -> dict[str, int | None]:
        """username, full name or email (case-folded) → user id; None when a full name or an email is ambiguous.

        A username wins over another user's full name or email that reads the same."""
        if self._owners is None:
            owners: dict[str, int | None] = {}
            rows = self.session.execute(
                select(User.id, User.username, User.full_name, User.email).where(User.is_active.is_(True))
            ).all()
            # only people the importer may give records to (reps/managers: themselves and their teams)
            rows = [row for row in rows if can_assign_owner(self.actor, row[0])]
            usernames = {username.casefold() for _, username, _, _ in rows}
            for user_id, username, _, _ in rows:
                owners[username.casefold()] = user_id
            for user_id, _, full_name, email in rows:
                for text in (full_name, normalise_email(email)):
                    key = unicodedata.normalize("NFKC", text or "").strip().casefold()
                    if not key or key in usernames:
                        continue
                    owners[key] = None if key in owners and owners[key] != user_id else user_id
            self._owners = owners
        return self._owners

    def owner(self, text: str) -> int | None:
        """The user ``text`` names (username, full name or email), as an owner cell is read; None when none
        (or several) of the users the importer may give records to."""
        found = self._owner_cells.get(text, _UNSEEN)
        if found is _UNSEEN:  # a column repeats its owners: each distinct text is read once
            found = self._owner_cells[text] = self.owners().get(owner_key(text))
        return found  # type: ignore[no-any-return]

    def owner_ambiguous(self, text: str) -> bool:
        """Does ``text`` name several users (a full name or an email two users share)? Never made a new user."""
        key = owner_key(text)
        return key in self.owners() and self.owners()[key] is None

    def inactive_owner(self, text: str) -> int | None:
        """The inactive user ``text`` names (username, full name or email: one an earlier import created for an
        unknown owner, or someone who left), when exactly one does; used only when unknown owners become
        inactive users, so that a second file naming the same person finds the same user."""
        if self._inactive is None:
            found: dict[str, int | None] = {}
            for user_id, username, full_name, email in self.session.execute(
                select(User.id, User.username, User.full_name, User.email).where(User.is_active.is_(False))
            ):
                for text_of in {owner_key(username), owner_key(full_name or ""), owner_key(email or "")}:
                    if text_of:
                        found[text_of] = None if text_of in found and found[text_of] != user_id else user_id
            self._inactive = found
        return self._inactive.get(owner_key(text))

    def fallback_owner(self, options: ImportOptions) -> int | None:
        """The user the rows with an unknown owner go to (``options.fallback_owner``); None: such rows are refused.

        Raises ImportNotAllowed when it names no active user the importer may give records to."""
        if options.fallback_owner is None or not options.fallback_owner.strip():
            return None
        owner_id = self.owner(options.fallback_owner)
        if owner_id is None:
            raise ImportNotAllowed("imports.error.fallback_owner", owner=options.fallback_owner.strip()[:120])
        return owner_id

    def stages(self) -> dict[str, tuple[int, int]]:
        """Stage name (case-folded) → (pipeline id, stage id) in the default pipeline."""
        if self._stages is None:
            pipeline_id: int = self.session.scalar(
                select(Pipeline.id).order_by(Pipeline.is_default.desc(), Pipeline.id).limit(1)
            ) or 0
            rows = (
                self.session.execute(
                    select(PipelineStage.id, PipelineStage.name, PipelineStage.kind, PipelineStage.position,
                           PipelineStage.probability)
                    .where(PipelineStage.pipeline_id == pipeline_id)
                    .order_by(PipelineStage.position)
                ).all()
                if pipeline_id
                else []
            )
            self._stages = {name.strip().casefold(): (pipeline_id, stage_id) for stage_id, name, *_ in rows}
            first_open = next((row for row in rows if row.kind == "open"), rows[0] if rows else None)
            self.default_stage = (pipeline_id, first_open.id) if first_open is not None else None
            self.stage_info = {
                row.id: StageInfo(row.id, pipeline_id, row.position, row.kind, row.probability) for row in rows
            }
            self.stage_names.update({row.id: row.name for row in rows})
            self.first_open = first_open_stage(list(self.stage_info.values()))
        return self._stages

    def deal_states(self, deal_ids: set[int]) -> dict[int, DealState]:
        """Where each deal of ``deal_ids`` stands now (its stage in its own pipeline, close and opening days)."""
        found: dict[int, DealState] = {}
        for batch in _chunks(sorted(deal_ids)):
            rows = self.session.execute(
                select(Opportunity.id, Opportunity.closed_at, Opportunity.created_at, PipelineStage.id,
                       PipelineStage.pipeline_id, PipelineStage.position, PipelineStage.kind,
                       PipelineStage.probability, PipelineStage.name)
                .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
                .where(Opportunity.id.in_(batch))
            ).all()
            for deal_id, closed_at, created_at, stage_id, pipeline_id, position, kind, probability, name in rows:
                self.stage_names[stage_id] = name
                found[deal_id] = DealState(StageInfo(stage_id, pipeline_id, position, kind, probability),
                                           closed_at.date() if closed_at else None, created_at.date())
        return found

    def deal_lines(self, deal_ids: set[int]) -> dict[int, dict[tuple[int, Decimal, Decimal], list[int]]]:
        """Each deal's lines by (product, quantity, unit price) → their ids in position order (visible deals)."""
        found: dict[int, dict[tuple[int, Decimal, Decimal], list[int]]] = {deal_id: {} for deal_id in deal_ids}
        for batch in _chunks(sorted(deal_ids)):
            for line_id, deal_id, product_id, quantity, price in self.session.execute(
                    select(OpportunityLine.id, OpportunityLine.opportunity_id, OpportunityLine.product_id,
                           OpportunityLine.quantity, OpportunityLine.unit_price)
                    .where(OpportunityLine.opportunity_id.in_(batch))
                    .order_by(OpportunityLine.position, OpportunityLine.id)):
                found[deal_id].setdefault(line_key(product_id, quantity, price), []).append(line_id)
        return found

    def custom_fields(self, entity: str) -> dict[str, tuple[str, list[str] | None, bool]]:
        """The entity's custom fields: name → (type, choices, required)."""
        if self._custom_fields is None:
            rows = self.session.execute(
                select(
                    FieldDefinition.name, FieldDefinition.field_type, FieldDefinition.choices,
                    FieldDefinition.required,
                ).where(FieldDefinition.entity == entity)
            ).all()
            self._custom_fields = {
                name: (field_type, choices, bool(required)) for name, field_type, choices, required in rows
            }
        return self._custom_fields

    def customers(self, keys: set[str], by: str = "any") -> dict[str, int | None]:
        """Customer by external id, email or exact name → id (None when several match); ``by`` (name,
        external_id, email) looks at that one only (see ``fields.CUSTOMER_MATCHES``)."""
        found: dict[str, set[int]] = {}
        emails = {normalise_email(key): key for key in keys if "@" in key} if by in ("any", "email") else {}
        for batch in _chunks(sorted(keys)):
            email_batch = [normalise_email(key) for key in batch if "@" in key] if emails else []
            conditions = []
            if by in ("any", "external_id"):
                conditions.append(Customer.external_id.in_(batch))
            if by in ("any", "name"):
                conditions.append(Customer.name.in_(batch))
            if email_batch:
                conditions.append(Customer.email_normalized.in_(email_batch))
            if not conditions:
                continue
            rows = self.session.execute(
                select(Customer.id, Customer.name, Customer.external_id, Customer.email_normalized).where(
                    Customer.archived_at.is_(None), or_(*conditions)
                )
            ).all()
            for customer_id, name, external_id, email in rows:
                for candidate in (external_id if by in ("any", "external_id") else None,
                                  name if by in ("any", "name") else None, emails.get(email) if email else None):
                    if candidate in keys:
                        found.setdefault(candidate, set()).add(customer_id)
        self._merged_customers(keys - set(found), found, by)
        return {key: (next(iter(ids)) if len(ids) == 1 else None) for key, ids in found.items()}

    def _merged_customers(self, keys: set[str], found: dict[str, set[int]], by: str = "any") -> None:
        """Keys that name no live customer but a merged-away one resolve to its survivor (issue 17)."""
        if not keys:
            return
        listed = sorted(keys)
        emails = {normalised: key for key in listed if "@" in key and (normalised := normalise_email(key))}
        looks = {"external_id": (Customer.external_id, listed, None), "name": (Customer.name, listed, None),
                 "email": (Customer.email_normalized, sorted(emails), emails)}
        for kind, (column, values, back) in looks.items():
            if by not in ("any", kind) or not values:
                continue
            for value, survivor_id in live_survivors(self.session, column, values).items():
                key = back[value] if back is not None else value
                if key not in found:
                    found.setdefault(key, set()).add(survivor_id)

    def products(self, keys: set[str]) -> dict[str, tuple[int, float] | None]:
        """Product by external ID, SKU or name → (id, list price) (None when several match)."""
        found: dict[str, dict[int, float]] = {}
        for batch in _chunks(sorted(keys)):
            rows = self.session.execute(
                select(Product.id, Product.external_id, Product.sku, Product.name, Product.unit_price).where(
                    Product.archived_at.is_(None),
                    or_(Product.external_id.in_(batch), Product.sku.in_(batch), Product.name.in_(batch)),
                )
            ).all()
            for product_id, external_id, sku, name, price in rows:
                for candidate in (external_id, sku, name):
                    if candidate in keys:
                        found.setdefault(candidate, {})[product_id] = float(price or 0)
        return {key: (next(iter(ids.items())) if len(ids) == 1 else None) for key, ids in found.items()}

    def by_external_id(self, entity: str, keys: set[str]) -> dict[str, tuple[int, int]]:
        """A live deal's or contact's (``entity``: opportunities, contacts) external ID → (id, its customer's id).

        External IDs are unique per tenant on these tables (migration 0037): one record at most."""
        model = EXTERNAL_ID_MODELS[entity]
        found: dict[str, tuple[int, int]] = {}
        for batch in _chunks(sorted(keys)):
            rows = self.session.execute(
                select(model.external_id, model.id, model.customer_id).where(
                    model.archived_at.is_(None), model.external_id.in_(batch))
            ).all()
            for external_id, record_id, customer_id in rows:
                found[str(external_id)] = (record_id, customer_id)
        return found

    def external_id_holders(self, entity: str, values: set[str]) -> dict[str, int]:
        """External ID → the id of the record of ``entity`` holding it (the lowest when several customers do).

        Archived records and those the importer may not see count (the unique index spans them); of customers, only
        live ones (their IDs are not unique in the database, decision 0042; a merged-away one's leads to its
        survivor, which the row then matches)."""
        table = EXTERNAL_ID_MODELS[entity].__table__  # the table itself: records the importer may not see count
        found: dict[str, int] = {}
        for batch in _chunks(sorted(values)):
            statement = select(table.c.external_id, table.c.id).where(
                table.c.tenant_id == self.actor.tenant_id, table.c.external_id.in_(batch)).order_by(table.c.id)
            if entity == "customers":
                statement = statement.where(table.c.archived_at.is_(None))
            for value, record_id in self.session.execute(statement):
                found.setdefault(str(value), record_id)
        return found

    def owners_of_duplicates(self, entity: str, key: str, values: set[str]) -> dict[str, str]:
        """Key value → the owner's name ('' unowned) of a live customer of the tenant holding it (for a
        contact: of the customer of a live contact holding it), whoever may see it.

        Read from the tables themselves (the duplicate check spans the tenant, as on the form; only the
        owner's name leaves this function, never the record).
        """
        customers, users = Customer.__table__, User.__table__
        if entity == "contacts":
            contacts = Contact.__table__
            column = {"email": contacts.c.email_normalized, "phone": contacts.c.phone_normalized}[key]
            joined = contacts.join(customers, customers.c.id == contacts.c.customer_id).outerjoin(
                users, users.c.id == customers.c.owner_id)
            live = [contacts.c.tenant_id == self.actor.tenant_id, contacts.c.archived_at.is_(None),
                    customers.c.archived_at.is_(None)]
        else:
            column = {"credit_code": customers.c.credit_code, "email": customers.c.email_normalized,
                      "phone": customers.c.phone_normalized, "name": customers.c.name_key}[key]
            joined = customers.outerjoin(users, users.c.id == customers.c.owner_id)
            live = [customers.c.tenant_id == self.actor.tenant_id, customers.c.archived_at.is_(None)]
        found: dict[str, str] = {}
        for batch in _chunks(sorted(values)):
            rows = self.session.execute(
                select(column, users.c.full_name).select_from(joined).where(*live, column.in_(batch))
            ).all()
            for value, owner in rows:
                found.setdefault(str(value), owner or "")
        return found

    def existing(self, entity: str, key: str, values: set[str]) -> dict[str, int]:
        """Match key value → id of the existing record (the lowest id when several)."""
        model, column = MATCH_COLUMNS[entity][key]
        matches: dict[str, int] = {}
        if self.session.get_bind().dialect.name == "sqlite":
            # the whole chunk's values as one JSON parameter: SQLite unpacks it (json_each) without
            # the interpreter's lock, where an IN list costs Python work per value and 900 per statement
            listed: Any = select(literal_column("value")).select_from(func.json_each(bindparam("values")))
            batches: Iterable[Any] = [json.dumps(sorted(values), ensure_ascii=False)]
        else:
            # one statement for every batch (an expanding parameter): compiled once, not built per value
            listed = bindparam("values", expanding=True)
            batches = _chunks(sorted(values))
        statement = select(column, model.id).where(column.in_(listed)).order_by(model.id)
        if hasattr(model, "archived_at"):
            statement = statement.where(model.archived_at.is_(None))
        for batch in batches:
            for value, record_id in self.session.execute(statement, {"values": batch}):
                matches.setdefault(str(value), record_id)
        if entity == "customers" and (left := sorted(values - set(matches))):
            # a key of a customer merged away updates (or, on create, is taken by) its survivor (issue 17)
            for value, survivor_id in live_survivors(self.session, column, left).items():
                matches.setdefault(str(value), survivor_id)
        return matches


EXTERNAL_ID_MODELS: dict[str, Any] = {
    "customers": Customer, "contacts": Contact, "products": Product, "opportunities": Opportunity, "orders": Order}
"""The import entities whose records carry the old system's ID (``external_id``)."""
REFERENCED_BY_EXTERNAL_ID = {"deal": "opportunities", "contact": "contacts"}
"""Reference targets named by external ID only: the entity they look in."""

DUPLICATE_RULE_ENTITIES = {"customers": CUSTOMER, "contacts": CONTACT}
"""The import entities the duplicate rules (查重) apply to, and their rules' entity."""

MATCH_COLUMNS: dict[str, dict[str, tuple[Any, Any]]] = {
    "customers": {
        "external_id": (Customer, Customer.external_id),
        "email": (Customer, Customer.email_normalized),
        "phone": (Customer, Customer.phone_normalized),
        "name": (Customer, Customer.name),
    },
    "contacts": {"external_id": (Contact, Contact.external_id), "email": (Contact, Contact.email),
                 "phone": (Contact, Contact.phone), "name": (Contact, Contact.name)},
    "products": {"external_id": (Product, Product.external_id), "sku": (Product, Product.sku),
                 "name": (Product, Product.name)},
    "opportunities": {"external_id": (Opportunity, Opportunity.external_id), "name": (Opportunity, Opportunity.name)},
    "orders": {"order_number": (Order, Order.order_number), "external_id": (Order, Order.external_id)},
    "tasks": {"title": (Task, Task.title)},
    "activities": {},
    "deal_lines": {},
}


def orphan_label(entity: str, row: dict[str, Any], lang: str, now: dt.datetime) -> str:
    """What an orphan row's customer is named after (a lead's name; a placeholder's, before "(no account)"): a
    contact's or a deal's name, "Order <number>", an activity's summary (60 characters at most) or "Activity of
    <date>". ``row``: the prepared row's ``name``, ``order_number``, ``summary`` and ``occurred_at``."""
    if entity in ("contacts", "opportunities"):
        return str(row["name"])
    if entity == "orders":
        return t("imports.orphan.order", lang, number=row["order_number"])
    summary = " ".join(str(_present(row.get("summary")) or "").split())
    if summary:
        return summary if len(summary) <= 60 else summary[:59] + "…"
    occurred = _present(row.get("occurred_at"))
    return t("imports.orphan.activity", lang,
             date=(dt.datetime.fromisoformat(str(occurred)) if occurred else now).date().isoformat())


def lead_name(entity: str, row: dict[str, Any], lang: str, now: dt.datetime) -> str:
    """The name of the lead an orphan row becomes (:func:`orphan_label`, cut to a customer name's length)."""
    return orphan_label(entity, row, lang, now)[: rules.CUSTOMER["name"].max_length or 200]


def _present(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


CENT = Decimal("0.01")


def line_key(product_id: int, quantity: Any, unit_price: Any) -> tuple[int, Decimal, Decimal]:
    """What makes two deal lines the same line: the product, the quantity and the unit price, to the cent."""
    return (int(product_id), Decimal(str(quantity)).quantize(CENT, rounding=ROUND_HALF_UP),
            Decimal(str(unit_price)).quantize(CENT, rounding=ROUND_HALF_UP))


def _existing_lines(frame: pandas.DataFrame, resolver: Resolver, state: FileState) -> list[Any]:
    """Per row of a deal-lines file, the line of its deal it repeats (product, quantity and price as the writer
    reads them: a blank quantity is 1, a blank price the product's), else None. The deal's lines are read when
    the file first names the deal, so a run's own lines (written after their chunk was judged) never match:
    the dry run and the run give the same verdicts. Equal rows match equal lines one for one."""
    rows = list(zip(frame["deal_id"].tolist(), frame["product_id"].tolist(), frame["quantity"].tolist(),
                    frame["unit_price"].tolist(), frame["product_price"].tolist(), strict=True))
    unseen = {int(deal_id) for deal_id, *_ in rows if deal_id is not None} - set(state.deal_lines)
    if unseen:
        state.deal_lines.update(resolver.deal_lines(unseen))
    matches: list[Any] = []
    for deal_id, product_id, quantity, price, listed in rows:
        if deal_id is None or product_id is None:
            matches.append(None)
            continue
        quantity = 1.0 if quantity != quantity else quantity  # NaN: blank
        price = (listed or 0) if price != price else price
        try:
            key = line_key(product_id, round(float(quantity), 2), round(float(price), 2))
        except (ValueError, ArithmeticError):
            matches.append(None)
            continue
        left = state.deal_lines.get(int(deal_id), {}).get(key)
        matches.append(left.pop(0) if left else None)
    return matches


def owner_key(text: str) -> str:
    """An owner cell as users are looked up by it: NFKC, trimmed, case-folded (an email normalised)."""
    key = unicodedata.normalize("NFKC", text).strip().casefold()
    return (normalise_email(key) or key) if "@" in key else key


def owner_name(text: str) -> str:
    """The name an unknown owner's new user gets: the cell as written, NFKC and trimmed."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def match_value(entity: str, key: str, value: Any) -> str | None:
    """The form a match key is compared in (normalised email/phone for customers)."""
    if value is None:
        return None
    if entity == "customers" and key == "email":
        return normalise_email(str(value))
    if entity == "customers" and key == "phone":
        return normalise_phone(str(value))
    return str(value)


def prepare_chunk(
    raw: pandas.DataFrame,
    *,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    resolver: Resolver,
    state: FileState,
) -> pandas.DataFrame:
    """The prepared frame for one chunk (same index as ``raw``)."""
    import pandas as pd

    frame = pd.DataFrame(index=raw.index)
    frame["_owner_fallback"] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    frame["_owner_new"] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    frame["_owner_inactive"] = pd.Series([None] * len(raw), index=raw.index, dtype=object)
    fallback_owner_id = resolver.fallback_owner(options)
    columns = mapping.field_to_column()
    for spec in fields_of(entity):
        column = columns.get(spec.name)
        if column is None:
            cells: list[str | None] = [None] * len(raw)
        else:
            value_map = {
                unicodedata.normalize("NFKC", k).strip().casefold(): v
                for k, v in mapping.values.get(column, {}).items()
            }
            cells = []
            # a column repeats its values (stages, regions, owners …): each distinct text is cleaned once
            cleaned: dict[str, str | None] = {}
            for value in raw[column].tolist():
                if value.__class__ is str:
                    text = cleaned.get(value, _UNSEEN)
                    if text is not _UNSEEN:
                        cells.append(text)
                        continue
                text = _blank_to_none(value)
                if text is not None and value_map:
                    mapped = value_map.get(text.casefold())
                    text = _blank_to_none(mapped) if mapped is not None else text
                if value.__class__ is str:
                    cleaned[value] = text
                cells.append(text)
        _prepare_field(frame, spec, cells, resolver, customer_match=mapping.customer_match,
                       fallback_owner_id=fallback_owner_id, create_owners=options.create_owners)
    if entity in CUSTOM_FIELD_ENTITIES:
        custom = mapping.custom_columns()
        stored: list[dict[str, Any]] = [{} for _ in range(len(raw))]
        invalid: list[str | None] = [None] * len(raw)
        blank_required: list[str | None] = [None] * len(raw)
        # each value read by its field's type, as the customer form reads it (a field the run
        # creates is text); a value its type or the free-text rules refuse refuses the row. A
        # required field left blank (or not mapped) is marked here; _companions keeps the mark
        # only on rows that create a record, as it does for the entity's own required fields
        types = resolver.custom_fields(CUSTOM_FIELD_ENTITIES[entity])
        required = [name for name, (field_type, _, needed) in types.items() if needed and field_type != "bool"]
        unmapped = [name for name in required if name not in custom]
        columns = {name: raw[column].tolist() for name, column in custom.items()}
        for position in range(len(raw)) if custom or unmapped else ():
            refused = []
            blank = list(unmapped)
            for name, values in columns.items():
                text = _blank_to_none(values[position])
                if text is None:
                    if name in required:
                        blank.append(name)
                    continue
                field_type, choices, _ = types.get(name, ("text", None, False))
                value, problem = read_custom_value(field_type, choices, text, name=name)
                if problem is None:
                    stored[position][name] = value
                else:
                    refused.append(f"{name}: {text}")
            invalid[position] = "; ".join(refused) or None
            blank_required[position] = ", ".join(blank) or None
        frame["_custom"] = stored
        frame["_custom__invalid"] = pd.Series(invalid, index=frame.index, dtype=object)
        frame["_custom__missing"] = pd.Series(blank_required, index=frame.index, dtype=object)
    if entity == "customers":
        _prepare_identity(frame, state)
    if entity == "opportunities" and resolver.actor.is_admin and "closed_at" not in mapping.field_to_column():
        _closed_on_close_date(frame, resolver)
    # a row with more cells than the header: refused as that row (its cells may be shifted)
    extra = raw[EXTRA_COLUMN].tolist() if EXTRA_COLUMN in raw.columns else [""] * len(raw)
    frame["_extra_fields"] = pd.Series([cell or None for cell in extra], index=frame.index, dtype=object)
    _same_customer(frame, entity)
    _companions(frame, entity, mapping, options, resolver, state)
    _row_rules(frame, entity, resolver, options, state)
    return frame


def _closed_on_close_date(frame: pandas.DataFrame, resolver: Resolver) -> None:
    """Salesforce and HubSpot export one "Close Date": the expected one while a deal is open, the day it
    closed once it is won or lost. Without a column of actual close dates, a won or lost row closes on
    its close date when that is not ahead (else today, as before). It writes the past, so only for an
    admin (whose mapping may fill history fields); the row's audit event flags it as any closed_at."""
    import pandas as pd

    resolver.stages()
    today = utcnow().date().isoformat()
    closed = frame["closed_at"].tolist()
    rows = zip(frame["stage_id"].tolist(), frame["expected_close_date"].tolist(), strict=True)
    for position, (stage_id, expected) in enumerate(rows):
        stage = resolver.stage_info.get(stage_id) if stage_id is not None else None
        if stage is not None and stage.kind != "open" and expected and str(expected)[:10] <= today:
            closed[position] = str(expected)[:10]
    frame["closed_at"] = pd.Series(closed, index=frame.index, dtype=object)


def _prepare_number(frame: pandas.DataFrame, spec: FieldSpec, cells: list[str | None]) -> None:
    """The number as a float, ``<field>__invalid`` where a cell is no number (of the field's kind),
    and ``<field>__decimals`` where it has more decimals than the column keeps."""
    import pandas as pd

    values: list[float] = []
    invalid: list[str | None] = []
    decimals: list[str | None] = []
    for cell in cells:
        number, ok = read_number(cell.rstrip("%").strip() if cell and spec.kind == rules.INTEGER else cell)
        if ok and number is not None and rules.not_whole(spec.rule, number) is not None:
            number, ok = None, False
        values.append(float("nan") if number is None else float(number))
        invalid.append(None if ok else cell)
        decimals.append(cell if number is not None and rules.too_many_decimals(spec.rule, number) else None)
    frame[spec.name] = pd.Series(values, index=frame.index, dtype="float64")
    frame[f"{spec.name}__invalid"] = pd.Series(invalid, index=frame.index, dtype=object)
    if spec.rule.scale is not None:
        frame[f"{spec.name}__decimals"] = pd.Series(decimals, index=frame.index, dtype=object)


def _prepare_field(
    frame: pandas.DataFrame, spec: FieldSpec, cells: list[str | None], resolver: Resolver, *,
    customer_match: str = "any", fallback_owner_id: int | None = None, create_owners: bool = False,
) -> None:
    """The field's cleaned column and its companions. A customer reference is looked up by ``customer_match``;
    an owner naming nobody goes to ``fallback_owner_id`` when given (``_owner_fallback`` keeps the name), or with
    ``create_owners`` to the inactive user of that name (``_owner_inactive``: the name), which the writer creates
    when there is none yet (``_owner_new``: the name). An ambiguous name stays refused."""
    import pandas as pd

    name = spec.name
    if spec.kind in (rules.TEXT, rules.EMAIL, rules.PHONE):
        frame[name] = pd.Series(cells, index=frame.index, dtype=object)
        return
    if spec.kind == rules.TAGS:
        frame[name] = pd.Series(
            [store_tags(parse_tags(c)) or None if c else None for c in cells], index=frame.index, dtype=object
        )
        return
    if spec.kind == rules.ENUM:
        lookup = choice_lookup(spec)
        frame[name] = pd.Series(
            [lookup.get(c.casefold(), c) if c else None for c in cells], index=frame.index, dtype=object
        )
        return
    if spec.kind in rules.NUMERIC:
        _prepare_number(frame, spec, cells)
        return
    if spec.kind in (rules.DATE, rules.DATETIME, rules.BOOL):
        values: list[Any] = []
        invalid: list[str | None] = []
        for cell in cells:
            value: Any
            if spec.kind == rules.BOOL:
                value, ok = parse_bool(cell)
            else:
                value, ok = parse_datetime(cell, date_only=spec.kind == rules.DATE)
            values.append(value)
            invalid.append(None if ok else cell)
        frame[name] = pd.Series(values, index=frame.index, dtype=object)
        frame[f"{name}__invalid"] = pd.Series(invalid, index=frame.index, dtype=object)
        return
    if spec.kind == rules.REFERENCE:
        frame[name] = pd.Series(cells, index=frame.index, dtype=object)
        present = {cell for cell in cells if cell}
        ids: list[Any] = []
        unresolved: list[str | None] = []
        extra: list[Any] = []
        if spec.target == "owner":
            fallbacks = frame["_owner_fallback"].tolist()
            new_owners = frame["_owner_new"].tolist()
            inactive = frame["_owner_inactive"].tolist()
            for position, cell in enumerate(cells):
                owner_id = resolver.owner(cell) if cell else None
                if cell and owner_id is None and fallback_owner_id is not None:
                    owner_id = fallback_owner_id
                    fallbacks[position] = fallbacks[position] or cell
                elif cell and owner_id is None and create_owners and not resolver.owner_ambiguous(cell):
                    owner_id = resolver.inactive_owner(cell)
                    inactive[position] = owner_name(cell)
                    if owner_id is None:
                        new_owners[position] = owner_name(cell)
                ids.append(owner_id)
                unresolved.append(cell if cell and owner_id is None and new_owners[position] is None else None)
            frame["_owner_fallback"] = pd.Series(fallbacks, index=frame.index, dtype=object)
            frame["_owner_new"] = pd.Series(new_owners, index=frame.index, dtype=object)
            frame["_owner_inactive"] = pd.Series(inactive, index=frame.index, dtype=object)
        elif spec.target == "customer":
            found = resolver.customers(present, customer_match)
            for cell in cells:
                customer_id = found.get(cell) if cell else None
                ids.append(customer_id)
                unresolved.append(cell if cell and customer_id is None else None)
        elif spec.target == "product":
            products = resolver.products(present)
            for cell in cells:
                hit = products.get(cell) if cell else None
                ids.append(hit[0] if hit else None)
                extra.append(hit[1] if hit else None)
                unresolved.append(cell if cell and hit is None else None)
            frame[f"{name}_price"] = pd.Series(extra, index=frame.index, dtype=object)
        elif spec.target == "stage":
            stages = resolver.stages()
            pipelines = []
            for cell in cells:
                hit = stages.get(cell.casefold()) if cell else resolver.default_stage
                ids.append(hit[1] if hit else None)
                pipelines.append(hit[0] if hit else None)
                unresolved.append(cell if cell and hit is None else None)
            frame["pipeline_id"] = pd.Series(pipelines, index=frame.index, dtype=object)
        elif spec.target in REFERENCED_BY_EXTERNAL_ID:
            records = resolver.by_external_id(REFERENCED_BY_EXTERNAL_ID[spec.target], present)
            for cell in cells:
                hit = records.get(cell) if cell else None
                ids.append(hit[0] if hit else None)
                extra.append(hit[1] if hit else None)
                unresolved.append(cell if cell and hit is None else None)
            frame[f"{name}_customer_id"] = pd.Series(extra, index=frame.index, dtype=object)
        frame[f"{name}_id"] = pd.Series(ids, index=frame.index, dtype=object)
        frame[f"{name}__unresolved"] = pd.Series(unresolved, index=frame.index, dtype=object)


def _same_customer(frame: pandas.DataFrame, entity: str) -> None:
    """``<deal|contact>__other_customer``: the external ID of a deal or contact that belongs to another customer
    than the row's (the activity, order and task services refuse that too)."""
    import pandas as pd

    for spec in fields_of(entity):
        if spec.target not in REFERENCED_BY_EXTERNAL_ID:
            continue
        name = spec.name
        if "customer_id" not in frame.columns:  # a deal's line names only its deal: no customer to differ from
            frame[f"{name}__other_customer"] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
            continue
        rows = zip(frame[name].tolist(), frame[f"{name}_customer_id"].tolist(), frame["customer_id"].tolist(),
                   strict=True)
        frame[f"{name}__other_customer"] = pd.Series(
            [cell if owner is not None and customer is not None and owner != customer else None
             for cell, owner, customer in rows],
            index=frame.index, dtype=object)


def _external_ids(
    frame: pandas.DataFrame, entity: str, options: ImportOptions, resolver: Resolver, state: FileState,
    match_id: list[Any],
) -> None:
    """``external_id__repeated`` (an earlier row of the file has it: "value (= row)"; the lines of one order share
    theirs) and ``external_id__taken`` (another record of the database holds it: on a row that creates a record,
    any holder; on a row matched to a record, a holder other than that record)."""
    import pandas as pd

    values = frame["external_id"].tolist()
    numbers = frame["order_number"].tolist() if entity == "orders" else [None] * len(values)
    repeated: list[str | None] = [None] * len(values)
    if entity != "customers":  # theirs is a hard key (_duplicate_in_file)
        for position, (row_number, value, number) in enumerate(zip(frame.index, values, numbers, strict=True)):
            if value is None:
                continue
            first = state.external_ids.setdefault(str(value), (row_number, number))
            if first[0] != row_number and (number is None or first[1] != number):
                repeated[position] = f"{value} (= {first[0]})"
    frame["external_id__repeated"] = pd.Series(repeated, index=frame.index, dtype=object)
    present = {str(value) for value in values if value is not None}
    holders = resolver.external_id_holders(entity, present) if present else {}
    new_anyway = options.mode == "create" and options.duplicates == "create"
    taken: list[str | None] = [None] * len(values)
    for position, value in enumerate(values):
        holder = holders.get(str(value)) if value is not None else None
        if holder is None or repeated[position] is not None:
            continue  # a repeat is said once (in a run, the record an earlier chunk wrote holds it too)
        target = None if new_anyway else match_id[position]
        if target is None or holder != target:
            taken[position] = str(value)
    frame["external_id__taken"] = pd.Series(taken, index=frame.index, dtype=object)


def _order_total_overflow(frame: pandas.DataFrame, state: FileState) -> list[str | None]:
    """The lines that take their order's total beyond what the column stores (each line may fit on its own)."""
    upper = rules.ORDER_TOTAL.upper
    overflow: list[str | None] = [None] * len(frame)
    if upper is None:
        return overflow
    limit = float(upper)
    prices = frame["unit_price"].tolist()
    for position, (number, quantity, price, listed) in enumerate(
        zip(frame["order_number"].tolist(), frame["quantity"].tolist(), prices, frame["product_price"].tolist(),
            strict=True)
    ):
        if number is None:
            continue
        quantity = 1.0 if quantity != quantity else quantity  # NaN: blank, one piece (as the writer reads it)
        price = listed if price != price else price
        line = float(quantity) * float(price or 0)
        if line != line:
            continue
        total = state.order_totals.get(str(number), 0.0) + line
        state.order_totals[str(number)] = total
        if total > limit:
            overflow[position] = f"{number}: {total:.2f}"
    return overflow


def _companions(
    frame: pandas.DataFrame,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    resolver: Resolver,
    state: FileState,
) -> None:
    import pandas as pd

    index = list(frame.index)
    # hard keys: unique within the file, and (on create) not already in the database
    duplicate: list[str | None] = [None] * len(index)
    hard = HARD_KEYS.get(entity)
    if hard:
        for position, (row_number, value) in enumerate(zip(index, frame[hard].tolist(), strict=True)):
            if value is None:
                continue
            first = state.hard_keys.setdefault(str(value), row_number)
            if first != row_number:
                duplicate[position] = f"{value} (= {first})"
    if entity == "orders":
        # the lines of one order must name the same customer
        for position, (number, customer, customer_id) in enumerate(
            zip(frame["order_number"].tolist(), frame["customer"].tolist(), frame["customer_id"].tolist(), strict=True)
        ):
            if number is None or customer is None:
                continue
            # compared by the customer found (a name and an email may name the same customer)
            identity = f"#{customer_id}" if customer_id is not None else str(customer)
            first_seen = state.order_customers.setdefault(str(number), f"{identity}\t{customer}")
            if first_seen.split("\t")[0] != identity:
                duplicate[position] = f"{number}: {customer} ≠ {first_seen.split(chr(9))[1]}"
    frame["_duplicate_in_file"] = pd.Series(duplicate, index=frame.index, dtype=object)
    if entity == "orders":
        frame["_total_overflow"] = pd.Series(_order_total_overflow(frame, state), index=frame.index, dtype=object)

    taken: list[str | None] = [None] * len(index)
    taken_key = TAKEN_IN_DB.get(entity)
    if taken_key and options.mode == "create":
        values = {str(v) for v in frame[taken_key].tolist() if v is not None}
        existing = resolver.existing(entity, taken_key, values) if values else {}
        taken = [str(v) if v is not None and str(v) in existing else None for v in frame[taken_key].tolist()]
    frame["_key_taken"] = pd.Series(taken, index=frame.index, dtype=object)

    # matching on the chosen keys: the existing record, and earlier rows of the file
    match_keys = [key for key in mapping.match_on if key in frame.columns and key in MATCH_COLUMNS[entity]]
    match_id: list[Any] = [None] * len(index)
    match_on: list[str | None] = [None] * len(index)
    duplicate_of: list[Any] = [None] * len(index)
    for key in match_keys:
        normalised = [match_value(entity, key, value) for value in frame[key].tolist()]
        present = {value for value in normalised if value}
        existing = resolver.existing(entity, key, present) if present else {}
        for position, value in enumerate(normalised):
            if not value:
                continue
            if match_id[position] is None and value in existing:
                match_id[position] = existing[value]
                match_on[position] = key
            first = state.match_keys.setdefault((key, value), index[position])
            if duplicate_of[position] is None and first != index[position]:
                duplicate_of[position] = first
    if entity == "deal_lines":  # a line is matched by what it is, not by a key column
        match_id = _existing_lines(frame, resolver, state)
    frame["_match_id"] = pd.Series(match_id, index=frame.index, dtype=object)
    frame["_match_on"] = pd.Series(match_on, index=frame.index, dtype=object)
    frame["_duplicate_of_row"] = pd.Series(duplicate_of, index=frame.index, dtype=object)
    if entity in EXTERNAL_ID_MODELS:
        _external_ids(frame, entity, options, resolver, state, match_id)
    missing: list[str | None] = [None] * len(index)
    if options.mode == "update":
        for position in range(len(index)):
            if match_id[position] is None:
                keys = [str(frame[key].iat[position]) for key in match_keys if frame[key].iat[position] is not None]
                missing[position] = ", ".join(keys) or "-"
    frame["_match_missing"] = pd.Series(missing, index=frame.index, dtype=object)
    # required fields apply to rows that create a record; an update leaves unmapped fields alone
    creates = [
        options.mode == "create" or (options.mode == "upsert" and match_id[i] is None and duplicate_of[i] is None)
        for i in range(len(index))
    ]
    # a new record without its customer (an empty cell): refused, or attached to a customer the writer makes
    orphan: list[str | None] = [None] * len(index)
    for spec in fields_of(entity):
        if spec.required:
            values = frame[spec.name].tolist()
            missing_value = ["" if creates[i] and values[i] is None else None for i in range(len(index))]
            if spec.name == "customer" and entity in ORPHAN_ENTITIES:
                if options.orphans != "reject":
                    orphan, missing_value = [None if blank is None else options.orphans for blank in missing_value], (
                        [None] * len(index))
                else:
                    orphan = ["reject" if blank is not None else None for blank in missing_value]
            frame[f"{spec.name}__missing"] = pd.Series(missing_value, index=frame.index, dtype=object)
    frame["_orphan"] = pd.Series(orphan, index=frame.index, dtype=object)
    if "_custom__missing" in frame.columns:
        blank = frame["_custom__missing"].tolist()
        frame["_custom__missing"] = pd.Series(
            [blank[i] if creates[i] else None for i in range(len(index))], index=frame.index, dtype=object
        )
    if entity in DUPLICATE_RULE_ENTITIES:
        # a row that writes a new record (not one matched and skipped or merged) meets the blocking rules
        writes_new = [
            creates[i] and (options.mode != "create" or match_id[i] is None or options.duplicates == "create")
            for i in range(len(index))
        ]
        frame["_duplicate_blocked"] = pd.Series(
            _blocked_duplicates(frame, entity, writes_new, resolver, state), index=frame.index, dtype=object)


def _prepare_identity(frame: pandas.DataFrame, state: FileState) -> None:
    """The credit code in its stored form (``credit_code__invalid`` when its check fails), and the region
    text mapped to the province → city → district cascade where it names one place (``_region_match``:
    None blank, '' mapped, 'ambiguous' or 'not_found')."""
    import pandas as pd

    codes: list[str | None] = []
    invalid: list[str | None] = []
    for cell in frame["credit_code"].tolist():
        code = compact_credit_code(cell) or None if cell else None
        codes.append(code)
        invalid.append(cell if code and credit_code_problem(code) is not None else None)
    frame["credit_code"] = pd.Series(codes, index=frame.index, dtype=object)
    frame["credit_code__invalid"] = pd.Series(invalid, index=frame.index, dtype=object)
    levels: list[list[str | None]] = [[], [], [], []]
    for text in frame["region"].tolist():
        if not text:
            for level in levels:
                level.append(None)
            continue
        found = state.addresses.get(text)
        if found is None:
            found = state.addresses[text] = regions.read_address(text)
        for level, value in zip(levels, (found.province_code, found.city_code, found.district_code), strict=False):
            level.append(value or None)
        levels[3].append(found.problem)
    for name, values in zip(("province_code", "city_code", "district_code", "_region_match"), levels, strict=True):
        frame[name] = pd.Series(values, index=frame.index, dtype=object)


def _blocked_duplicates(
    frame: pandas.DataFrame, entity: str, writes_new: list[bool], resolver: Resolver, state: FileState
) -> list[str | None]:
    """Per row: ``<key>: <owner>`` when a blocking duplicate rule finds an existing record of the tenant
    (any owner's, as on the form; a contact at any customer, named by its customer's owner) or an earlier
    row of the file with the same key; else None."""
    rules_entity = DUPLICATE_RULE_ENTITIES[entity]
    blocking = [key for key, action in rule_actions(resolver.session, resolver.actor.tenant_id, rules_entity).items()
                if action == BLOCK]
    blocked: list[str | None] = [None] * len(frame)
    if not blocking or not any(writes_new):
        return blocked
    readers = {"credit_code": lambda v: v, "email": normalise_email, "phone": normalise_phone,
               "name": lambda v: company_key(v) or None}
    row_numbers = list(frame.index)
    for key in blocking:
        values = [readers[key](value) if value and writes_new[i] else None
                  for i, value in enumerate(frame[key].tolist())]
        owners = resolver.owners_of_duplicates(entity, key, {value for value in values if value})
        for position, value in enumerate(values):
            if not value or blocked[position] is not None:
                continue
            if value in owners:
                blocked[position] = f"{key}: {owners[value] or '—'}"
                continue
            first = state.blocked_keys.setdefault((key, value), row_numbers[position])
            if first != row_numbers[position]:
                blocked[position] = f"{key}: = {first}"
    return blocked


FUTURE_TOLERANCE = dt.timedelta(minutes=10)  # clocks differ a little (as for an activity logged by hand)
CONSENT_ROW_RULES = (("consent.import.date_in_future", "email_consent_date"),
                     ("consent.import.no_email", "email_consent"))
"""A consent column's date may not lie ahead, and a row granting or withdrawing needs an email to key the entry
on: its own, or the one of the record it updates (decision 0047)."""
LEAD_BLOCKED = "imports.rule.lead_duplicate_blocked"
"""A row without a customer made a lead (``orphans=lead``) whose lead a blocking duplicate rule refuses."""
LEAD_KEYS = ("name", "email", "phone")  # what a lead carries of the customers' duplicate keys (no credit code)
ROW_RULES: dict[str, tuple[tuple[str, str], ...]] = {
    "customers": (("imports.rule.history_in_future", "created_at"), *CONSENT_ROW_RULES),
    "contacts": (*CONSENT_ROW_RULES, (LEAD_BLOCKED, "customer")),
    "opportunities": (
        ("deal.lost_reason_required", "lost_reason"),
        ("deal.lost_reason_too_long", "lost_reason"),
        ("deal.closed_in_future", "closed_at"),
        ("deal.closed_before_created", "closed_at"),
        ("imports.rule.closed_on_open_stage", "closed_at"),
        ("imports.rule.history_in_future", "created_at"),
        ("imports.rule.stage_transition_refused", "stage"),
        ("imports.rule.closed_date_fixed", "closed_at"),
        (LEAD_BLOCKED, "customer"),
    ),
    "orders": ((LEAD_BLOCKED, "customer"),),
    "tasks": (
        ("imports.rule.completed_not_done", "completed_at"),
        ("imports.rule.history_in_future", "completed_at"),
    ),
    "activities": (("imports.rule.history_in_future", "occurred_at"), (LEAD_BLOCKED, "customer")),
}
"""Per entity, the rules a row must meet as a whole (catalog key, the field it is about): the closing rules
of the deal service (:func:`crm_core.rules.pipeline.closing_problems`, the same function), its transition
table for a row that moves a deal the tenant has (:func:`crm_core.rules.pipeline.transition_allowed`; a
closed deal keeps its close date, see :func:`_deal_rules`), and the dates of the past that may not lie ahead.
:func:`_row_rules` marks each in the column :func:`row_rule_column` names; the suites
(``validations/_rules.row_rules``) expect those columns empty."""


def row_rule_column(key: str) -> str:
    """The companion column that marks the rows breaking the rule ``key``."""
    return "_rule_" + key.replace(".", "_")


def _moment(text: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(str(text)) if text else None


def _row_rules(frame: pandas.DataFrame, entity: str, resolver: Resolver, options: ImportOptions,
               state: FileState) -> None:
    """Mark the rows that break a rule of :data:`ROW_RULES` (the offending value; None for a row that is fine)."""
    import pandas as pd

    checks = ROW_RULES.get(entity)
    if not checks:
        return
    now = utcnow()
    latest = now + FUTURE_TOLERANCE
    marks: dict[str, list[str | None]] = {key: [None] * len(frame) for key, _ in checks}
    for future_key in ("imports.rule.history_in_future", "consent.import.date_in_future"):
        future_field = next((field_name for key, field_name in checks if key == future_key), None)
        for position, moment in enumerate(frame[future_field].tolist() if future_field else ()):
            when = _moment(moment)
            if when is not None and when > latest:
                marks[future_key][position] = str(moment)
    if entity in ("customers", "contacts"):
        # a grant or withdrawal without an email to key it on: the row's own, or the matched record's
        consents = zip(frame["email_consent"].tolist(), frame["email"].tolist(), frame["_match_id"].tolist(),
                       strict=True)
        for position, (consent, email, match_id) in enumerate(consents):
            if consent and consent != CONSENT_NONE and not email and match_id is None:
                marks["consent.import.no_email"][position] = str(consent)
    if entity == "opportunities":
        _deal_rules(frame, marks, resolver, options, state, now)
    if entity in ORPHAN_ENTITIES:
        _lead_rules(frame, marks[LEAD_BLOCKED], entity, resolver, state, now)
    if entity == "tasks":
        for position, (status, completed) in enumerate(
            zip(frame["status"].tolist(), frame["completed_at"].tolist(), strict=True)
        ):
            if completed and status not in (None, "done"):
                marks["imports.rule.completed_not_done"][position] = str(status)
    for key, values in marks.items():
        frame[row_rule_column(key)] = pd.Series(values, index=frame.index, dtype=object)


def _deal_rules(frame: pandas.DataFrame, marks: dict[str, list[str | None]], resolver: Resolver,
                options: ImportOptions, state: FileState, now: dt.datetime) -> None:
    """The deal service's rules for each row: a new deal closes as the service closes one (a lost deal's reason,
    a close date not ahead nor before the opening, none on an open stage); a row that updates a deal (update,
    upsert, create with duplicates merged) moves it only as the board may (:func:`transition_allowed`: a won or
    lost deal goes back to an open stage first), checked from where the deal stands — the database's, or where an
    earlier row of the file left it. A blank stage cell leaves the deal in its stage, and what stays closed keeps
    its close date: an import may change a closed deal's name, amount, owner, reason … (what its form changes)
    and reopen it, but not move it to the other closed stage nor to another close day (another period of the
    reports)."""
    resolver.stages()
    updating = options.mode != "create" or options.duplicates == "merge"
    matched, repeats = frame["_match_id"].tolist(), frame["_duplicate_of_row"].tolist()
    in_database = resolver.deal_states({int(match) for match, repeat in zip(matched, repeats, strict=True)
                                        if match is not None and repeat is None}) if updating else {}
    today = now.date()
    rows = zip(frame.index.tolist(), frame["stage"].tolist(), frame["stage_id"].tolist(),
               frame["lost_reason"].tolist(), frame["closed_at"].tolist(), frame["created_at"].tolist(), matched,
               repeats, strict=True)
    for position, (row_number, stage_cell, stage_id, lost_reason, closed_on, opened, match, repeat) in enumerate(rows):
        first = int(row_number) if repeat is None else int(repeat)
        current = None
        if updating and repeat is not None:
            current = state.deal_states.get(first)
        if updating and current is None and match is not None:
            current = in_database.get(int(match))
        closed_day = dt.date.fromisoformat(str(closed_on)[:10]) if closed_on else None
        opened_at = _moment(opened)
        if current is None:  # a new deal: it closes as the service closes one, opened by the file or that day
            stage = resolver.stage_info.get(stage_id) if stage_id is not None else None
            if stage is None:
                continue  # unresolved: the stage's own expectation says so
            created_on = opened_at.date() if opened_at else (closed_day or today)
            _closing_marks(marks, position, stage, lost_reason, closed_on, closed_day, created_on, today)
            if match is None or updating:  # what a later row of the file updates it from
                state.deal_states.setdefault(first, DealState(
                    stage, None if stage.kind == "open" else closed_day or today, created_on))
            continue
        target = current.stage if stage_cell is None else resolver.stage_info.get(stage_id)
        if target is None:
            continue
        created_on = opened_at.date() if opened_at else current.created_on
        if target.id != current.stage.id:
            if not transition_allowed(current.stage, target):
                names = resolver.stage_names
                marks["imports.rule.stage_transition_refused"][position] = (
                    f"{names.get(current.stage.id, current.stage.id)} → {names.get(target.id, target.id)}")
                continue
            _closing_marks(marks, position, target, lost_reason, closed_on, closed_day, created_on, today)
            state.deal_states[first] = DealState(target, None if target.kind == "open" else closed_day or today,
                                                 created_on)
            continue
        # the deal stays in its stage: nothing closes (its reason is already there), nothing moves in time
        if target.kind == "open" and closed_day is not None:
            marks["imports.rule.closed_on_open_stage"][position] = str(closed_on)
        elif target.kind != "open" and closed_day is not None and closed_day != current.closed_on:
            marks["imports.rule.closed_date_fixed"][position] = f"{current.closed_on} → {closed_day}"
        elif target.kind == "lost" and lost_reason and len(str(lost_reason).strip()) > LOST_REASON_MAX:
            marks["deal.lost_reason_too_long"][position] = str(lost_reason)
        state.deal_states[first] = DealState(target, current.closed_on, created_on)


def _closing_marks(marks: dict[str, list[str | None]], position: int, stage: StageInfo, lost_reason: Any,
                   closed_on: Any, closed_day: dt.date | None, created_on: dt.date, today: dt.date) -> None:
    """Mark what closing in ``stage`` still needs (:func:`closing_problems`), or a close date on an open stage."""
    if stage.kind == "open":
        if closed_day is not None:
            marks["imports.rule.closed_on_open_stage"][position] = str(closed_on)
        return
    problems = closing_problems(stage.kind, lost_reason=lost_reason, closed_on=closed_day, created_on=created_on,
                                today=today)
    for key in problems.values():
        marks[key][position] = str(closed_on or lost_reason or "")


def _lead_rules(frame: pandas.DataFrame, blocked: list[str | None], entity: str, resolver: Resolver,
                state: FileState, now: dt.datetime) -> None:
    """A row made a lead (``orphans=lead``) writes a new customer: the tenant's blocking customer rules refuse it as
    they refuse one typed on the form or read from a customers file — a live customer of the tenant (anyone's)
    holding its name key, or for a contact's lead its email or phone, or an earlier row's lead doing so
    (``<key>: <owner>`` or ``<key>: = <row>``, as :func:`_blocked_duplicates` marks). The lines of one order make
    one lead. A placeholder is no lead: one per row, named "(no account)", by the importer's choice."""
    rows = [position for position, policy in enumerate(frame["_orphan"].tolist()) if policy == "lead"]
    if not rows:
        return
    blocking = [key for key, action in rule_actions(resolver.session, resolver.actor.tenant_id, CUSTOMER).items()
                if action == BLOCK and key in LEAD_KEYS and (key == "name" or entity == "contacts")]
    if not blocking:
        return
    row_numbers = list(frame.index)
    if entity == "orders":  # an order's lines share its lead: the first line of each order stands for it
        rows = [position for position in rows if state.blocked_keys.setdefault(
            ("lead-order", str(frame["order_number"].iat[position])), row_numbers[position]) == row_numbers[position]]
    columns = [name for name in ("name", "order_number", "summary", "occurred_at", "email", "phone")
               if name in frame.columns]
    readers = {"name": lambda row: company_key(lead_name(entity, row, resolver.actor.language, now)) or None,
               "email": lambda row: normalise_email(row.get("email")),
               "phone": lambda row: normalise_phone(row.get("phone"))}
    leads = {position: {name: frame[name].iat[position] for name in columns} for position in rows}
    for key in blocking:
        values = {position: readers[key](row) for position, row in leads.items()}
        owners = resolver.owners_of_duplicates("customers", key, {value for value in values.values() if value})
        for position, value in values.items():
            if not value or blocked[position] is not None:
                continue
            if value in owners:
                blocked[position] = f"{key}: {owners[value] or '—'}"
                continue
            first = state.blocked_keys.setdefault((f"lead:{key}", value), row_numbers[position])
            if first != row_numbers[position]:
                blocked[position] = f"{key}: = {first}"
