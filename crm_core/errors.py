"""Named domain errors. Pages turn each into a message in the user's language.

Every error carries a catalog key (``message_key``) and its parameters, so the
view layer can call ``t(error.message_key, **error.params)`` without knowing
which use case raised it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


class DomainError(Exception):
    """Base of every error a user can be told about."""

    message_key = "error.generic"

    def __init__(self, message: str = "", **params: Any) -> None:
        super().__init__(message or self.message_key)
        self.params = params


class AccessDenied(DomainError):
    """The acting user may not see or change this record."""

    message_key = "error.access_denied"


class NotFound(DomainError):
    """The record does not exist, or is outside the user's scope (which must look the same)."""

    message_key = "error.not_found"


class ValidationFailed(DomainError):
    """Input was refused; ``errors`` maps each field to a catalog key (with params)."""

    message_key = "error.validation_failed"

    def __init__(self, errors: dict[str, tuple[str, dict[str, Any]]]) -> None:
        super().__init__("validation failed: " + ", ".join(sorted(errors)))
        self.errors = errors


class DuplicateRecord(DomainError):
    """A record the tenant's duplicate rules (查重) call the same one already exists.

    ``existing_id`` and ``existing_name`` are 0 and "" when the actor may not see it; the owner is
    named anyway (the rep knows whom to ask). ``action`` is the matching rule's "warn" or "block"
    (crm_core.rules.duplicates); ``record_id`` the real id, for an access request only, never shown.
    """

    entity = "customer"

    def __init__(
        self, existing_id: int, existing_name: str, matched_on: str, owner_name: str = "", *, action: str = "warn",
        **params: Any,
    ) -> None:
        super().__init__(
            f"duplicate of {self.entity} {existing_id} on {matched_on}",
            name=existing_name,
            matched_on=matched_on,
            owner=owner_name or "—",
            **params,
        )
        self.existing_id = existing_id
        self.existing_name = existing_name
        self.matched_on = matched_on
        self.action = action
        self.record_id = existing_id


class DuplicateCustomer(DuplicateRecord):
    """A customer with the same credit code, normalised email, phone or company-name key already exists."""

    message_key = "error.duplicate_customer"

    def __init__(
        self, existing_id: int, existing_name: str, matched_on: str, owner_name: str = "", *, action: str = "warn"
    ) -> None:
        if action == "block":  # the tenant's duplicate rules block it: confirming does not help a rep
            self.message_key = "error.duplicate_customer_blocked"
        super().__init__(existing_id, existing_name, matched_on, owner_name, action=action)


class DuplicateContact(DuplicateRecord):
    """A contact of the tenant (at any customer) has the same normalised email or phone.

    Its name and its customer's are only given when the actor may see that customer; the
    customer's owner is always named."""

    entity = "contact"
    message_key = "error.duplicate_contact"

    def __init__(
        self, existing_id: int, existing_name: str, matched_on: str, owner_name: str = "", *, action: str = "warn",
        customer_id: int = 0, customer_name: str = "",
    ) -> None:
        hidden = "" if existing_id else "_hidden"
        self.message_key = f"error.duplicate_contact{'_blocked' if action == 'block' else ''}{hidden}"
        super().__init__(existing_id, existing_name, matched_on, owner_name, action=action, customer=customer_name)
        self.customer_id = customer_id  # 0 when hidden
        self.customer_name = customer_name


class StaleRecord(DomainError):
    """Someone else saved the record after it was loaded; nothing was overwritten."""

    message_key = "error.stale_record"

    def __init__(
        self,
        entity: str,
        entity_id: int,
        changed_by: str | None = None,
        changed_at: dt.datetime | None = None,
    ) -> None:
        super().__init__(
            f"{entity} {entity_id} was changed by {changed_by} at {changed_at}",
            changed_by=changed_by or "?",
            changed_at=changed_at.strftime("%Y-%m-%d %H:%M") if changed_at else "?",
        )
        self.entity = entity
        self.entity_id = entity_id
        self.changed_by = changed_by
        self.changed_at = changed_at


class LoginRefused(DomainError):
    """Wrong credentials, a locked account, or a revoked session."""

    message_key = "login.failed"


class StageTransitionRefused(DomainError):
    """A deal may not move from its stage to that one (see crm_core.rules.pipeline)."""

    message_key = "deal.transition_refused"

    def __init__(self, from_stage: str, to_stage: str) -> None:
        super().__init__(
            f"cannot move a deal from {from_stage} to {to_stage}", from_stage=from_stage, to_stage=to_stage
        )


class PipelineInUse(DomainError):
    """A pipeline or stage still holds deals and cannot be removed."""

    message_key = "pipeline.in_use"

    def __init__(self, name: str, deals: int) -> None:
        super().__init__(f"{name} still holds {deals} deals", name=name, deals=deals)


class MigrationRefused(DomainError):
    """``migrate`` will not start: nothing was written to the target."""

    message_key = "migration.refused"


class TargetNotEmpty(MigrationRefused):
    """The migration target already holds data (and ``--resume`` was not asked for)."""

    message_key = "migration.target_not_empty"


class SourceSchemaOutdated(MigrationRefused):
    """The migration source is not at the newest schema revision."""

    message_key = "migration.source_outdated"


class DatabaseUnreachable(MigrationRefused):
    """A migration database could not be opened."""

    message_key = "migration.unreachable"


class ResumeFromOtherSource(MigrationRefused):
    """``--resume`` on a target that a different source was being copied into."""

    message_key = "migration.resume_other_source"


class ImportFileRefused(DomainError):
    """An import file cannot be read (empty, unknown encoding, duplicated headers …): nothing was written.

    ``reason_key`` is the catalog key that explains why (``imports.error.*``).
    """

    message_key = "imports.error.unreadable"

    def __init__(self, reason_key: str, **params: object) -> None:
        super().__init__(reason_key, **params)
        self.message_key = reason_key


class ImportNotAllowed(DomainError):
    """The mapping or options of an import are not usable (unknown field, no match key for update …)."""

    message_key = "imports.error.bad_options"

    def __init__(self, reason_key: str, **params: object) -> None:
        super().__init__(reason_key, **params)
        self.message_key = reason_key


class SegmentNameTaken(DomainError):
    """Another saved segment of the tenant already has this name."""

    message_key = "segments.error.name_taken"


class SegmentTooLarge(DomainError):
    """A bulk action on a segment bigger than the limit: nothing was created."""

    message_key = "segments.error.too_large"


class QueueUnavailable(DomainError):
    """The job queue (its SQLite file or Redis) did not answer; nothing was started."""

    message_key = "jobs.error.queue_unavailable"


class JobNotCancellable(DomainError):
    """The job has already finished (or is being retried): there is nothing to cancel."""

    message_key = "jobs.error.not_cancellable"


class JobNotRetryable(DomainError):
    """Only a failed, cancelled or interrupted job can be retried."""

    message_key = "jobs.error.not_retryable"


class UnknownJobKind(DomainError):
    """No job of that kind exists."""

    message_key = "jobs.error.unknown_kind"


class InvalidSchedule(DomainError):
    """A schedule field is not a crontab expression (numbers, ``*``, ``*/n``, ranges, lists)."""

    message_key = "jobs.error.invalid_schedule"


class RequesterInactive(DomainError):
    """The user who asked for a job was deactivated before it ran."""

    message_key = "jobs.error.requester_inactive"


class PoolRefused(DomainError):
    """The customer pool refuses a claim, release or direct take; ``message_key`` names the rule.

    Keys: ``pool.error.claim_required`` (a rep sets themselves as owner of a pooled customer
    instead of claiming it), ``pool.error.not_in_pool``, ``pool.error.daily_cap``,
    ``pool.error.held_cap``, ``pool.error.cooldown``, ``pool.error.not_owned``.
    """

    def __init__(self, key: str, **params: Any) -> None:
        self.message_key = key
        super().__init__(key, **params)


class MergeRefused(DomainError):
    """A merge that cannot be made; ``message_key`` names why. Nothing was changed.

    Keys: ``merge.error.same_record``, ``merge.error.already_merged`` (the record to merge away
    was merged before), ``merge.error.survivor_merged``, ``merge.error.archived``,
    ``merge.error.other_customer`` (two contacts of different customers); for cases also
    ``case_merge.error.other_customer`` and ``case_merge.error.survivor_closed``.
    """

    def __init__(self, key: str, **params: Any) -> None:
        self.message_key = key
        super().__init__(key, **params)


class MailFetchFailed(DomainError):
    """The tenant's IMAP mailbox could not be read: ``error`` is what the server or the connection said."""

    message_key = "mail.inbox.failed"


class MailTestFailed(DomainError):
    """The test message of the mail settings was not accepted; ``error`` is what the SMTP server or the
    connection said (``mail.test.not_configured`` when no server is set at all)."""

    message_key = "mail.test.failed"
