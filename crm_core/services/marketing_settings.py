"""A tenant's marketing settings (admins; decision 0048): open/click tracking on or off, each sender's daily cap,
the sender's name and address and the postal address every marketing email carries (Advertising Law art. 43).
Saved all at once or not at all; audited like every admin setting."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models.marketing import MarketingSettings
from crm_core.rules.contact_details import is_valid_email, normalise_email
from crm_core.rules.fields import clean_text, free_text_problem
from crm_core.services.editing import check_version, translate_stale

MAX_DAILY_CAP = 1_000_000


@dataclass(frozen=True)
class MarketingSettingsInput:
    tracking_enabled: bool
    daily_cap_per_sender: int
    sender_name: str
    sender_address: str
    postal_address: str


@dataclass(frozen=True)
class MarketingSettingsView:
    tracking_enabled: bool
    daily_cap_per_sender: int
    sender_name: str
    sender_address: str
    postal_address: str
    version: int | None  # None: never saved (the defaults)


def marketing_settings_view(db: Database, actor: Actor) -> MarketingSettingsView:
    """The tenant's settings, or the defaults when none were saved."""
    with db.session(actor) as session:
        row = session.scalars(select(MarketingSettings)).first()
    if row is None:
        return MarketingSettingsView(True, 2000, "", "", "", None)
    return MarketingSettingsView(row.tracking_enabled, row.daily_cap_per_sender, row.sender_name, row.sender_address,
                                 row.postal_address, row.version)


def save_marketing_settings(db: Database, actor: Actor, form: MarketingSettingsInput, *,
                            expected_version: int | None = None) -> None:
    """Save the settings (admins); ValidationFailed names every field's problem, StaleRecord a concurrent save."""
    if not access.may_write(actor, MarketingSettings):
        raise AccessDenied("only an admin changes marketing settings")
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    name = clean_text(form.sender_name) or ""
    address = normalise_email(form.sender_address) or ""
    postal = " ".join((form.postal_address or "").split())
    if isinstance(form.daily_cap_per_sender, bool) or not 1 <= int(form.daily_cap_per_sender) <= MAX_DAILY_CAP:
        errors["daily_cap_per_sender"] = ("marketing_mail.settings.bad_cap", {"max": MAX_DAILY_CAP})
    if (problem := free_text_problem("sender_name", name, 200)) is not None:
        errors["sender_name"] = problem
    if address and not is_valid_email(address):
        errors["sender_address"] = ("validation.email", {})
    if (problem := free_text_problem("postal_address", postal, 500)) is not None:
        errors["postal_address"] = problem
    if errors:
        raise ValidationFailed(errors)

    def work() -> None:
        with db.transaction(actor) as session:
            row = session.scalars(select(MarketingSettings)).first()
            if row is None:
                row = MarketingSettings(tenant_id=actor.tenant_id)
                session.add(row)
            elif expected_version is not None:
                check_version(session, row, "marketing_settings", expected_version)
            row.tracking_enabled = bool(form.tracking_enabled)
            row.daily_cap_per_sender = int(form.daily_cap_per_sender)
            row.sender_name, row.sender_address, row.postal_address = name, address, postal

    translate_stale(db, actor, "marketing_settings", 0, work)
