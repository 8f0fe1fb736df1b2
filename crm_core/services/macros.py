"""Case macros (canned replies, :mod:`crm_core.rules.macros`): admins and managers (team leads) save and
delete their tenant's macros — reps and analysts use them only. The write rule is
:data:`crm_core.access.MANAGER_WRITES`, asked first (:func:`crm_core.access.may_write`: a rep is refused
before the form is checked) and applied again to every row at flush; audited like every write."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models.service import CaseMacro
from crm_core.rules.fields import clean_text, free_text_problem
from crm_core.rules.macros import LANGUAGES, VARIABLES, unknown_variables
from crm_core.services.editing import check_version, translate_stale

NAME_LENGTH = 120
BODY_LENGTH = 4000


def _require_keeper(actor: Actor) -> None:
    if not access.may_write(actor, CaseMacro):
        raise AccessDenied("only a manager or admin may change macros")


def _checked(session: Session, name: str, language: str, body: str, macro_id: int | None) -> tuple[str, str]:
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    cleaned_name = clean_text(name) or ""
    text = (body or "").strip()
    if not cleaned_name:
        errors["name"] = ("validation.required", {})
    elif (problem := free_text_problem("name", cleaned_name, NAME_LENGTH)) is not None:
        errors["name"] = problem
    if language not in LANGUAGES:
        errors["language"] = ("validation.choice", {})
    if not text:
        errors["body"] = ("validation.required", {})
    elif (problem := free_text_problem("body", text, BODY_LENGTH)) is not None:
        errors["body"] = problem
    elif unknown := unknown_variables(text):
        errors["body"] = ("macros.unknown_variable", {"names": ", ".join(unknown),
                                                      "known": ", ".join("{" + v + "}" for v in VARIABLES)})
    if "name" not in errors and "language" not in errors:
        clash = session.scalar(select(CaseMacro.id).where(CaseMacro.name == cleaned_name,
                                                          CaseMacro.language == language))
        if clash is not None and clash != macro_id:
            errors["name"] = ("macros.name_taken", {})
    if errors:
        raise ValidationFailed(errors)
    return cleaned_name, text


def save_macro(db: Database, actor: Actor, *, name: str, language: str, body: str, macro_id: int | None = None,
               expected_version: int | None = None) -> int:
    """Create a macro (``macro_id`` None) or save an edit made on ``expected_version``; returns its id.
    Raises AccessDenied for a rep or analyst, ValidationFailed, NotFound or StaleRecord."""
    _require_keeper(actor)

    def work() -> int:
        with db.transaction(actor) as session:
            cleaned_name, text = _checked(session, name, language, body, macro_id)
            if macro_id is None:
                macro = CaseMacro(tenant_id=actor.tenant_id, name=cleaned_name, language=language, body=text)
                session.add(macro)
            else:
                found = session.get(CaseMacro, macro_id)
                if found is None:
                    raise NotFound("macro")
                check_version(session, found, "macro", expected_version or 0)
                macro = found
                macro.name, macro.language, macro.body = cleaned_name, language, text
            session.flush()
            return macro.id

    return translate_stale(db, actor, "macro", macro_id or 0, work)


def delete_macro(db: Database, actor: Actor, macro_id: int) -> None:
    """Delete a macro (replies already sent keep their text); AccessDenied for a rep or analyst."""
    _require_keeper(actor)
    with db.transaction(actor) as session:
        macro = session.get(CaseMacro, macro_id)
        if macro is None:
            raise NotFound("macro")
        session.delete(macro)
