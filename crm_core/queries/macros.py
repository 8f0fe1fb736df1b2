"""Read side of case macros: the list, and a macro rendered for one case and agent."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.models import Contact
from crm_core.models.service import CaseMacro
from crm_core.queries.cases import get_case
from crm_core.rules.macros import render_macro


def list_macros(session: Session, *, language: str | None = None) -> list[CaseMacro]:
    """The tenant's macros (of one language when given), by language and name."""
    statement = select(CaseMacro).order_by(CaseMacro.language, CaseMacro.name)
    if language is not None:
        statement = statement.where(CaseMacro.language == language)
    return list(session.scalars(statement))


def macro_for_case(session: Session, actor: Actor, macro_id: int, case_id: int) -> str | None:
    """The macro's text with the case's variables filled in (plain text); None when either is not visible."""
    macro = session.get(CaseMacro, macro_id)
    case = get_case(session, case_id)
    if macro is None or case is None:
        return None
    contact = session.get(Contact, case.contact_id) if case.contact_id is not None else None
    return render_macro(macro.body, {
        "customer_name": case.customer_name or "", "contact_name": contact.name if contact is not None else "",
        "case_number": str(case.id), "agent_name": actor.full_name or actor.username,
    })
