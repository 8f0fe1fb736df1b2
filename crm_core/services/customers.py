"""Customer use cases: create and edit customers, with validation, duplicate detection
and optimistic locking. Each opens its own transaction; access rules and the audit
trail are applied by the session (see :mod:`crm_core.access`).

A valid customer is what :data:`crm_core.rules.fields.CUSTOMER` says — the table the
import and its GX suite read too — so the form refuses exactly what an import refuses."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import DuplicateCustomer, NotFound, ValidationFailed
from crm_core.models import Customer, CustomerKind, FieldDefinition, LifecycleStage, User, utcnow
from crm_core.queries.customers import custom_field_definitions
from crm_core.rules import fields as rules
from crm_core.rules.contact_details import (
    company_key,
    normalise_email,
    normalise_phone,
    parse_tags,
    store_tags,
)
from crm_core.rules.custom_fields import read_custom_value
from crm_core.rules.duplicates import CUSTOMER, CUSTOMER_KEYS, may_override
from crm_core.rules.fields import clean_text
from crm_core.rules.identifiers import compact_credit_code, credit_code_problem, region_problem
from crm_core.rules.regions import cascade_problems, region_label
from crm_core.services.duplicate_rules import match_by_rules
from crm_core.services.editing import check_version, stale_record_error, translate_stale
from crm_core.services.followups import on_customers_created

Errors = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class CustomerInput:
    """The fields of the customer form, as the user typed them."""

    name: str
    kind: str = CustomerKind.COMPANY.value
    industry: str = ""
    region: str = ""
    source: str = ""
    owner_id: int | None = None
    lifecycle_stage: str = LifecycleStage.PROSPECT.value
    tags: str = ""
    email: str = ""
    phone: str = ""
    external_id: str = ""
    custom_fields: dict[str, Any] = field(default_factory=dict)
    credit_code: str = ""
    province_code: str = ""
    city_code: str = ""
    district_code: str = ""


def _values(form: CustomerInput) -> dict[str, Any]:
    """The form's fields in their stored form (cleaned text, tags as ``,a,b,``), as the rules see them."""
    return {
        "name": clean_text(form.name),
        "kind": form.kind,
        "industry": clean_text(form.industry),
        "region": clean_text(form.region),
        "source": clean_text(form.source),
        "lifecycle_stage": form.lifecycle_stage,
        "tags": store_tags(parse_tags(form.tags)),
        "email": clean_text(form.email),
        "phone": clean_text(form.phone),
        "external_id": clean_text(form.external_id),
    }


def _identity(form: CustomerInput) -> dict[str, str]:
    """The credit code (compact) and the region codes as stored ('' when blank)."""
    return {
        "credit_code": compact_credit_code(form.credit_code),
        "province_code": (form.province_code or "").strip(),
        "city_code": (form.city_code or "").strip(),
        "district_code": (form.district_code or "").strip(),
    }


def identity_problems(form: CustomerInput) -> Errors:
    """The credit code's check digit, the cascade's consistency, and the code's region against the cascade."""
    identity = _identity(form)
    errors: Errors = {}
    if problem := credit_code_problem(identity["credit_code"]):
        errors["credit_code"] = problem
    cascade = cascade_problems(identity["province_code"], identity["city_code"], identity["district_code"])
    errors.update({name: (key, {}) for name, key in cascade.items()})
    if not errors and (problem := region_problem(identity["credit_code"], identity["province_code"],
                                                 identity["city_code"])):
        errors["credit_code"] = (problem[0], {**problem[1], "region": region_label(
            identity["province_code"], identity["city_code"], "")})
    return errors


def _validate(form: CustomerInput, definitions: list[FieldDefinition]) -> tuple[Errors, dict[str, Any]]:
    errors: Errors = rules.check_values(rules.CUSTOMER, _values(form))
    errors.update(identity_problems(form))
    custom, custom_errors = validate_custom_fields(form.custom_fields, definitions)
    errors.update(custom_errors)
    return errors, custom


def validate_custom_fields(
    values: dict[str, Any], definitions: list[FieldDefinition]
) -> tuple[dict[str, Any], Errors]:
    """Check and convert custom field values against the tenant's definitions."""
    errors: Errors = {}
    cleaned: dict[str, Any] = {}
    for definition in definitions:
        key = f"custom.{definition.name}"
        raw = values.get(definition.name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if definition.required and definition.field_type != "bool":
                errors[key] = ("validation.required", {})
            continue
        # one reading of a custom field for the form, the API and the import (crm_core.rules.custom_fields)
        value, problem = read_custom_value(definition.field_type, definition.choices, raw, name=definition.name)
        if problem is not None:
            errors[key] = problem
            continue
        cleaned[definition.name] = value
    return cleaned, errors


def find_duplicate(
    db: Database,
    actor: Actor,
    *,
    name: str,
    email: str,
    phone: str,
    credit_code: str = "",
    exclude_id: int | None = None,
    keys: Collection[str] | None = None,
    within: Session | None = None,
) -> DuplicateCustomer | None:
    """A customer of the tenant that the tenant's duplicate rules say is the same one, if any.

    Each key (credit code, email, phone, company-name key) is compared as its rule says
    (:mod:`crm_core.rules.duplicates`: off, warn, block); a blocking match wins over a warning
    one. ``keys`` limits the check to some keys (an edit checks only what it changes).
    Duplicates are searched across the whole tenant (a rep must not recreate a colleague's
    customer), but the existing record is only revealed when the actor may see it: otherwise
    the refusal names its owner, nothing else. ``within``: the unit of work the check belongs to, whose
    connection it uses (``beside`` of :meth:`.Database.system_session`).
    """
    values = {
        "credit_code": compact_credit_code(credit_code) or None,
        "email": normalise_email(email),
        "phone": normalise_phone(phone),
        "name": company_key(name) or None,
    }
    columns = {"credit_code": Customer.credit_code, "email": Customer.email_normalized,
               "phone": Customer.phone_normalized, "name": Customer.name_key}
    with db.system_session("duplicate check", tenant_id=actor.tenant_id, beside=within) as session:
        match = match_by_rules(session, actor.tenant_id, CUSTOMER, Customer, values, columns,
                               live=lambda arm: arm.where(Customer.archived_at.is_(None)),
                               exclude_id=exclude_id, keys=keys)
        if match is None:
            return None
        existing = match.record
        visible = access.can_view(
            actor, tenant_id=existing.tenant_id, owner_id=existing.owner_id, team_id=existing.team_id
        )
        owner = session.get(User, existing.owner_id) if existing.owner_id is not None else None
        duplicate = DuplicateCustomer(existing.id if visible else 0, existing.name if visible else "", match.key,
                                      owner.full_name if owner is not None else "", action=match.action)
        duplicate.record_id = existing.id  # for an access request (services.access_requests), never shown
        return duplicate


def _check_duplicate(
    db: Database, actor: Actor, form: CustomerInput, within: Session, *, allow_duplicate: bool,
    exclude_id: int | None = None, keys: Collection[str] | None = None,
) -> None:
    """Raise the duplicate the rules find, unless the user confirmed and may override its action."""
    values = _values(form)
    duplicate = find_duplicate(
        db, actor, name=values["name"] or "", email=values["email"] or "", phone=values["phone"] or "",
        credit_code=form.credit_code, exclude_id=exclude_id, keys=keys, within=within,
    )
    if duplicate is not None and not (allow_duplicate and may_override(actor.role, duplicate.action)):
        raise duplicate


def create_customer(db: Database, actor: Actor, form: CustomerInput, *, allow_duplicate: bool = False) -> int:
    """Create a customer; raises ValidationFailed, DuplicateCustomer or AccessDenied.

    ``allow_duplicate``: the user confirmed that a duplicate the rules warn about is another
    customer; a blocking rule yields to it only for managers and admins.
    """
    with db.transaction(actor) as session:
        errors, custom = _validate(form, custom_field_definitions(session))
        if form.owner_id is not None and session.get(User, form.owner_id) is None:
            errors["owner_id"] = ("validation.choice", {})
        if errors:
            raise ValidationFailed(errors)
        _check_duplicate(db, actor, form, session, allow_duplicate=allow_duplicate)
        customer = Customer(owner_id=form.owner_id)
        _apply(customer, form, custom)
        session.add(customer)
        session.flush()
        on_customers_created(session, actor, [customer.id])
        return customer.id


def update_customer(
    db: Database, actor: Actor, customer_id: int, form: CustomerInput, *, expected_version: int,
    allow_duplicate: bool = False,
) -> int:
    """Save an edit made on version ``expected_version``; raises StaleRecord if someone saved since.

    A changed name, email, phone or credit code is checked against the duplicate rules as on create.
    """
    return translate_stale(
        db, actor, "customer", customer_id,
        lambda: _update_customer(db, actor, customer_id, form, expected_version, allow_duplicate),
    )


def _changed_keys(customer: Customer, form: CustomerInput) -> list[str]:
    """The duplicate keys an edit changes: only those are checked (an old pair must not block every edit)."""
    values = _values(form)
    new = {"name": company_key(values["name"]) or None, "email": normalise_email(values["email"]),
           "phone": normalise_phone(values["phone"]), "credit_code": compact_credit_code(form.credit_code) or None}
    old = {"name": customer.name_key, "email": customer.email_normalized, "phone": customer.phone_normalized,
           "credit_code": customer.credit_code}
    return [key for key in CUSTOMER_KEYS if new[key] and new[key] != old[key]]


def _update_customer(
    db: Database, actor: Actor, customer_id: int, form: CustomerInput, expected_version: int,
    allow_duplicate: bool = False,
) -> int:
    with db.transaction(actor) as session:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.archived_at is not None:
            raise NotFound("customer")
        check_version(session, customer, "customer", expected_version)
        errors, custom = _validate(form, custom_field_definitions(session))
        if form.owner_id is not None and session.get(User, form.owner_id) is None:
            errors["owner_id"] = ("validation.choice", {})
        if errors:
            raise ValidationFailed(errors)
        if changed := _changed_keys(customer, form):
            _check_duplicate(db, actor, form, session, allow_duplicate=allow_duplicate, exclude_id=customer_id,
                             keys=changed)
        customer.owner_id = form.owner_id
        _apply(customer, form, custom)
        session.flush()
        return customer.version


def _apply(customer: Customer, form: CustomerInput, custom: dict[str, Any]) -> None:
    values = _values(form)
    customer.name = values["name"]
    customer.kind = form.kind
    customer.industry = values["industry"]
    customer.region = values["region"]
    customer.source = values["source"]
    customer.lifecycle_stage = form.lifecycle_stage
    customer.tags = values["tags"]
    customer.email = values["email"]
    customer.email_normalized = normalise_email(values["email"])
    customer.phone = values["phone"]
    customer.phone_normalized = normalise_phone(values["phone"])
    customer.external_id = values["external_id"]
    customer.custom_fields = custom
    for name, value in _identity(form).items():
        setattr(customer, name, value or None)


__all__ = ["stale_record_error"]  # re-exported: older callers import it from here


def archive_customer(db: Database, actor: Actor, customer_id: int, *, expected_version: int) -> None:
    """Take a customer out of every list; it stays in history and can be restored."""
    _set_archived(db, actor, customer_id, expected_version, archived=True)


def restore_customer(db: Database, actor: Actor, customer_id: int, *, expected_version: int) -> None:
    """Bring an archived customer back into the lists."""
    _set_archived(db, actor, customer_id, expected_version, archived=False)


def _set_archived(db: Database, actor: Actor, customer_id: int, expected_version: int, *, archived: bool) -> None:
    def work() -> None:
        with db.transaction(actor) as session:
            customer = session.get(Customer, customer_id)
            if customer is None:
                raise NotFound("customer")
            check_version(session, customer, "customer", expected_version)
            if (customer.archived_at is not None) == archived:
                return
            customer.archived_at = utcnow() if archived else None

    translate_stale(db, actor, "customer", customer_id, work)


BULK_LIMIT = 1000
"""At most this many customers per bulk action (one transaction, one audit row each)."""


@dataclass(frozen=True)
class BulkResult:
    """How many of the selected customers a bulk action changed, and how many already matched."""

    changed: int
    unchanged: int


def bulk_reassign_owner(db: Database, actor: Actor, customer_ids: list[int], owner_id: int | None) -> BulkResult:
    """Give every selected customer to ``owner_id`` (None: unassigned). All or nothing."""

    def load_owner(session: Session) -> None:
        if owner_id is not None and session.get(User, owner_id) is None:
            raise ValidationFailed({"owner_id": ("validation.choice", {})})

    def apply(customer: Customer) -> bool:
        if customer.owner_id == owner_id:
            return False
        customer.owner_id = owner_id
        return True

    return _bulk(db, actor, customer_ids, apply, before=load_owner)


def bulk_add_tag(db: Database, actor: Actor, customer_ids: list[int], tag: str) -> BulkResult:
    """Add ``tag`` to every selected customer that lacks it. All or nothing."""
    tags = parse_tags(tag)
    if len(tags) != 1:
        raise ValidationFailed({"tags": ("validation.required", {})})
    new_tag = tags[0]
    tags_rule = rules.CUSTOMER["tags"]
    if (problem := rules.check(tags_rule, store_tags(tags))) is not None:
        raise ValidationFailed({"tags": problem})

    def apply(customer: Customer) -> bool:
        current = customer.tag_list
        if new_tag in current:
            return False
        stored = store_tags([*current, new_tag])
        if (problem := rules.too_long(tags_rule, stored)) is not None:
            raise ValidationFailed({"tags": problem})
        customer.tags = stored
        return True

    return _bulk(db, actor, customer_ids, apply)


def bulk_change_stage(db: Database, actor: Actor, customer_ids: list[int], lifecycle_stage: str) -> BulkResult:
    """Move every selected customer to ``lifecycle_stage``. All or nothing."""
    if (problem := rules.check(rules.CUSTOMER["lifecycle_stage"], lifecycle_stage)) is not None:
        raise ValidationFailed({"lifecycle_stage": problem})

    def apply(customer: Customer) -> bool:
        if customer.lifecycle_stage == lifecycle_stage:
            return False
        customer.lifecycle_stage = lifecycle_stage
        return True

    return _bulk(db, actor, customer_ids, apply)


def _bulk(
    db: Database,
    actor: Actor,
    customer_ids: list[int],
    apply: Any,
    *,
    before: Any = None,
) -> BulkResult:
    wanted = sorted(set(customer_ids))
    if not wanted:
        raise ValidationFailed({"selection": ("bulk.nothing_selected", {})})
    if len(wanted) > BULK_LIMIT:
        raise ValidationFailed({"selection": ("bulk.too_many", {"max": BULK_LIMIT})})
    with db.transaction(actor) as session:
        if before is not None:
            before(session)
        customers = list(
            session.scalars(select(Customer).where(Customer.id.in_(wanted), Customer.archived_at.is_(None)))
        )
        if len(customers) != len(wanted):
            # a selected row was archived or left the actor's scope meanwhile: change nothing
            raise NotFound("customer")
        changed = sum(1 for customer in customers if apply(customer))
        session.flush()
    return BulkResult(changed=changed, unchanged=len(wanted) - changed)
