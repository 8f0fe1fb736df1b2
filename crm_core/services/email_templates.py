"""Marketing email templates (decision 0046, 0048): admins and managers create, edit and archive their tenant's
templates (the write rule is :data:`crm_core.access.MANAGER_WRITES`, asked first and applied again at flush;
audited like every write). A template is checked when saved — a syntax error with its line, a variable no
template may use, names unique in the tenant, a language of :data:`rules.email_templates.LANGUAGES` — and can be
previewed over a real contact: the rendered subject and body, or the variable that contact lacks (the reason
the send would be skipped)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.config import public_url
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.marketing.sender import marketing_settings, sender_address, template_context
from crm_core.models import Contact, Customer, utcnow
from crm_core.models.marketing import EmailTemplate
from crm_core.rules.email_templates import (
    BODY_LENGTH,
    LANGUAGES,
    SUBJECT_LENGTH,
    VARIABLES,
    MissingVariable,
    TemplateProblem,
    render,
    syntax_problem,
    unknown_variables,
)
from crm_core.rules.fields import clean_text, free_text_problem
from crm_core.services.editing import check_version, translate_stale

NAME_LENGTH = 120
PREVIEW_TOKEN = "preview"  # the links a preview shows lead nowhere


@dataclass(frozen=True)
class TemplateInput:
    name: str
    language: str
    subject: str
    body: str


def _require_keeper(actor: Actor) -> None:
    if not access.may_write(actor, EmailTemplate):
        raise AccessDenied("only a manager or admin may change email templates")


def _problem(field: str, text: str) -> tuple[str, dict[str, object]] | None:
    problem = syntax_problem(text)
    if problem is not None:
        return ("marketing_mail.templates.syntax", {"line": problem.line or 1, "detail": problem.detail})
    unknown = unknown_variables(text)
    if unknown:
        return ("marketing_mail.templates.unknown_variable", {"names": ", ".join(unknown),
                                                               "known": ", ".join(VARIABLES)})
    return None


def _checked(session: Session, form: TemplateInput, template_id: int | None) -> TemplateInput:
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    name = clean_text(form.name) or ""
    subject = " ".join((form.subject or "").split())
    body = (form.body or "").replace("\r\n", "\n").strip("\n")
    if not name:
        errors["name"] = ("validation.required", {})
    elif (problem := free_text_problem("name", name, NAME_LENGTH)) is not None:
        errors["name"] = problem
    if form.language not in LANGUAGES:
        errors["language"] = ("validation.choice", {})
    for field, text, limit in (("subject", subject, SUBJECT_LENGTH), ("body", body, BODY_LENGTH)):
        if not text.strip():
            errors[field] = ("validation.required", {})
        elif len(text) > limit:
            errors[field] = ("validation.too_long", {"max": limit})
        elif (found := _problem(field, text)) is not None:
            errors[field] = found
    if "name" not in errors:
        clash = session.scalar(select(EmailTemplate.id).where(EmailTemplate.name == name))
        if clash is not None and clash != template_id:
            errors["name"] = ("marketing_mail.templates.name_taken", {})
    if errors:
        raise ValidationFailed(errors)
    return TemplateInput(name, form.language, subject, body)


def save_template(db: Database, actor: Actor, form: TemplateInput, *, template_id: int | None = None,
                  expected_version: int | None = None) -> int:
    """Create a template (``template_id`` None) or save an edit made on ``expected_version``; its id. Raises
    AccessDenied (a rep, an analyst), ValidationFailed (every field's problem at once), NotFound, StaleRecord."""
    _require_keeper(actor)

    def work() -> int:
        with db.transaction(actor) as session:
            clean = _checked(session, form, template_id)
            if template_id is None:
                template = EmailTemplate(tenant_id=actor.tenant_id, created_by_id=actor.user_id, name=clean.name,
                                         language=clean.language, subject=clean.subject, body=clean.body)
                session.add(template)
            else:
                found = session.get(EmailTemplate, template_id)
                if found is None:
                    raise NotFound("email_template")
                check_version(session, found, "email_template", expected_version or 0)
                template = found
                template.name, template.language = clean.name, clean.language
                template.subject, template.body = clean.subject, clean.body
            session.flush()
            return template.id

    return translate_stale(db, actor, "email_template", template_id or 0, work)


def archive_template(db: Database, actor: Actor, template_id: int, *, archived: bool = True,
                     now: dt.datetime | None = None) -> None:
    """Archive a template (steps using it then skip with ``blocked:no_template``) or restore it."""
    _require_keeper(actor)
    with db.transaction(actor) as session:
        template = session.get(EmailTemplate, template_id)
        if template is None:
            raise NotFound("email_template")
        template.archived_at = (now or utcnow()) if archived else None


@dataclass(frozen=True)
class Preview:
    subject: str
    body: str
    missing: str | None  # the variable this contact lacks (the send would be skipped), else None
    problem: str | None  # the template cannot be rendered at all


def preview(db: Database, actor: Actor, form: TemplateInput, *, customer_id: int,
            contact_id: int | None = None) -> Preview:
    """``form`` rendered over a real customer (and one of its contacts) the actor may see, as a send would."""
    with db.session(actor) as session:
        customer = session.get(Customer, customer_id)
        if customer is None:
            raise NotFound("customer")
        contact = session.get(Contact, contact_id) if contact_id is not None else None
        if contact_id is not None and (contact is None or contact.customer_id != customer.id):
            raise NotFound("contact")
        settings = marketing_settings(session, actor.tenant_id)
        sender = sender_address(session, actor.tenant_id, settings)
        context = template_context(session, customer, contact, settings, sender,
                                   PREVIEW_TOKEN if public_url() is not None else None)
    try:
        rendered = render(form.subject, form.body, context)
    except MissingVariable as missing:
        return Preview("", "", missing.name, None)
    except TemplateProblem as problem:
        return Preview("", "", None, problem.detail)
    return Preview(rendered.subject, rendered.body, None, None)


def list_templates(db: Database, actor: Actor, *, archived: bool = False) -> list[EmailTemplate]:
    """The tenant's templates by name (the archived ones with ``archived``)."""
    with db.session(actor) as session:
        statement = select(EmailTemplate).order_by(EmailTemplate.name)
        statement = statement.where(EmailTemplate.archived_at.is_not(None) if archived
                                    else EmailTemplate.archived_at.is_(None))
        rows = list(session.scalars(statement))
        session.expunge_all()
        return rows
