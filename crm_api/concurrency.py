"""Optimistic locking over HTTP: ``ETag`` carries a record's ``version``; ``If-Match`` sends it back.

Every record has ``version`` (in its body too). A GET answers ``ETag: "<version>"``. PATCH,
DELETE (archive) and restore need the version the client last saw: ``If-Match: "<version>"``,
or — for PATCH only — ``version`` in the body. With neither (or ``*``), the answer is 428 (a
write that would silently overwrite someone's change is never guessed at); a header that is
not a quoted version is 400, a weak tag 412. A stale version is a 412 with
who changed the record, when and what (``problems.domain_error``); the record is not written.
"""

from __future__ import annotations

from crm_api.problems import ApiProblem


def etag(version: int) -> str:
    """The entity tag of a record at ``version``."""
    return f'"{version}"'


def expected_version(if_match: str | None, body_version: int | None = None) -> int:
    """The version a write is made against: If-Match's, else the body's; 428 with neither, 412 if they differ."""
    if if_match is None or not if_match.strip():
        if body_version is None:
            raise ApiProblem(428, "precondition_required", "api.error.precondition_required")
        return body_version
    tag = if_match.strip()
    if tag == "*":  # "any version" would overwrite whatever is there: a write names the version it read
        raise ApiProblem(428, "precondition_required", "api.error.precondition_required")
    weak = tag.startswith("W/")
    quoted = tag.removeprefix("W/")
    if len(quoted) < 3 or not (quoted[0] == quoted[-1] == '"') or not quoted[1:-1].isascii() \
            or not quoted[1:-1].isdigit():
        raise ApiProblem(400, "malformed_if_match", "api.error.bad_etag")
    if weak:  # a weak tag never matches for a write (RFC 9110 §13.1.1)
        raise ApiProblem(412, "precondition_failed", "api.error.weak_etag")
    version = int(quoted[1:-1])
    if body_version is not None and body_version != version:
        raise ApiProblem(412, "precondition_failed", "api.error.version_mismatch")
    return version
