"""The pure webhook rules: retry schedule, disabling, event types of a change, targets, payloads."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from crm_core.rules.webhooks import (
    EVENT_TYPES,
    event_types_for,
    is_private_address,
    is_success,
    next_attempt_at,
    should_disable,
    url_problem,
    valid_event_types,
    wants,
)
from crm_core.webhooks.payloads import event_body, is_public
from crm_core.webhooks.sending import signature_headers

T0 = dt.datetime(2026, 12, 5, 10, 0, 0)
S, M, H = 1, 60, 3600


@pytest.mark.parametrize(
    ("failed_attempts", "delay_seconds"),
    [(0, 0), (1, 5 * S), (2, 5 * M), (3, 30 * M), (4, 2 * H), (5, 5 * H), (6, 10 * H), (7, 10 * H), (8, None),
     (9, None)],
)
def test_retries_follow_the_schedule_then_give_up(failed_attempts: int, delay_seconds: int | None) -> None:
    expected = None if delay_seconds is None else T0 + dt.timedelta(seconds=delay_seconds)
    assert next_attempt_at(failed_attempts, T0) == expected


def test_the_whole_schedule_spans_about_27_and_a_half_hours() -> None:
    moment, attempts = T0, 0
    while (following := next_attempt_at(attempts, moment)) is not None:
        moment, attempts = following, attempts + 1
    assert attempts == 8
    assert moment - T0 == dt.timedelta(hours=27, minutes=35, seconds=5)


@pytest.mark.parametrize(
    ("failing_for", "disabled"),
    [(None, False), (dt.timedelta(0), False), (dt.timedelta(days=4, hours=23, minutes=59), False),
     (dt.timedelta(days=5), True), (dt.timedelta(days=9), True)],
)
def test_an_endpoint_is_disabled_after_five_days_of_failures(failing_for: dt.timedelta | None, disabled: bool) -> None:
    since = None if failing_for is None else T0 - failing_for
    assert should_disable(since, T0) is disabled


@pytest.mark.parametrize(("status", "success"), [(200, True), (204, True), (299, True), (301, False),
                                                 (404, False), (500, False), (None, False)])
def test_only_a_2xx_answer_is_a_delivery(status: int | None, success: bool) -> None:
    assert is_success(status) is success


@pytest.mark.parametrize(
    ("entity", "action", "changes", "stage_kind", "events"),
    [
        ("customer", "create", {"name": [None, "A"]}, None, ["customer.created"]),
        ("customer", "update", {"name": ["A", "B"]}, None, ["customer.updated"]),
        ("customer", "update", {"lifecycle_stage": ["prospect", "customer"]}, None,
         ["customer.updated", "lifecycle.changed"]),
        ("customer", "update", {"_source": ["", "x"]}, None, []),
        ("customer", "archive", {"archived_at": [None, "2026-12-05"]}, None, ["customer.archived"]),
        ("contact", "create", {"name": [None, "C"]}, None, ["contact.created"]),
        ("contact", "delete", {}, None, ["contact.deleted"]),
        ("opportunity", "create", {}, None, ["deal.created"]),
        ("opportunity", "update", {"stage_id": [1, 2]}, "open", ["deal.stage_changed"]),
        ("opportunity", "update", {"stage_id": [1, 3]}, "won", ["deal.stage_changed", "deal.won"]),
        ("opportunity", "update", {"stage_id": [1, 4], "lost_reason": [None, "price"]}, "lost",
         ["deal.stage_changed", "deal.lost"]),
        ("opportunity", "update", {"amount": ["1", "2"]}, None, []),
        ("order", "create", {}, None, ["order.created"]),
        ("order", "update", {"status": ["draft", "confirmed"]}, None, []),
        ("task", "update", {"status": ["open", "done"]}, None, ["task.completed"]),
        ("task", "update", {"status": ["open", "cancelled"]}, None, []),
        ("case", "create", {}, None, ["case.created"]),
        ("case", "update", {"status": ["open", "resolved"]}, None, ["case.updated"]),
        ("import_run", "create", {"status": [None, "validating"]}, None, []),
        ("import_run", "update", {"status": ["validating", "imported"]}, None, ["import.finished"]),
        ("import_run", "create", {"status": [None, "rejected"]}, None, ["import.finished"]),
        ("user", "update", {"full_name": ["a", "b"]}, None, []),
    ],
)
def test_which_change_makes_which_event(
    entity: str, action: str, changes: dict[str, list[object]], stage_kind: str | None, events: list[str]
) -> None:
    assert event_types_for(entity, action, changes, stage_kind=stage_kind) == events
    assert set(events) <= set(EVENT_TYPES)


@pytest.mark.parametrize(
    ("subscribed", "event_type", "wanted"),
    [(["customer.created"], "customer.created", True), (["customer.created"], "customer.updated", False),
     (["contact.*"], "contact.deleted", True), (["contact.*"], "customer.created", False), ([], "deal.won", False)],
)
def test_a_subscription_wants_its_types_and_wildcards(subscribed: list[str], event_type: str, wanted: bool) -> None:
    assert wants(subscribed, event_type) is wanted


def test_only_known_event_types_and_object_wildcards_are_valid() -> None:
    assert valid_event_types(["deal.won", "contact.*", "deal.exploded", "nothing.*"]) == ["deal.won", "contact.*"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://hooks.example.com/kestrel", None),
        ("http://example.com:8080/x?y=1", None),
        ("", "webhooks.error.url_required"),
        ("ftp://example.com/", "webhooks.error.url_scheme"),
        ("javascript:alert(1)", "webhooks.error.url_scheme"),
        ("https://", "webhooks.error.url_invalid"),
        ("https://user:pw@example.com/", "webhooks.error.url_credentials"),
        ("https://example.com:99999/", "webhooks.error.url_invalid"),
        ("https://exa mple.com/", "webhooks.error.url_invalid"),
        ("https://example.com/" + "a" * 2000, "webhooks.error.url_too_long"),
    ],
)
def test_what_a_target_url_must_look_like(url: str, problem: str | None) -> None:
    assert url_problem(url) == problem


@pytest.mark.parametrize(
    ("address", "private"),
    [("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
     ("169.254.169.254", True), ("0.0.0.0", True), ("100.64.0.1", True), ("::1", True), ("fe80::1", True),
     ("fd00::1", True), ("::ffff:127.0.0.1", True), ("224.0.0.1", True),
     ("93.184.216.34", False), ("8.8.8.8", False), ("2606:4700:4700::1111", False)],
)
def test_private_loopback_and_link_local_addresses_are_recognised(address: str, private: bool) -> None:
    assert is_private_address(address) is private


def test_a_payload_carries_type_timestamp_ids_and_public_fields_only() -> None:
    body = event_body("customer.updated", T0, tenant_id=3, entity="customer", record_id=42,
                      record={"name": "<b>张三</b> \"x\""},
                      changes={"name": ["a", "b"], "password": ["***", "***"], "_source": ["", "job"]})
    decoded = json.loads(body)
    assert decoded == {"type": "customer.updated", "timestamp": "2026-12-05T10:00:00Z",
                       "data": {"object": "customer", "id": 42, "tenant_id": 3,
                                "record": {"name": "<b>张三</b> \"x\""}, "changes": {"name": ["a", "b"]}}}
    assert [column for column in ("password_hash", "secret_hash", "signing_secret", "token", "name")
            if is_public(column)] == ["name"]


def test_signature_headers_carry_one_signature_per_secret() -> None:
    from standardwebhooks.webhooks import Webhook

    first, second = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_" + "dGVzdHNlY3JldHRlc3RzZWNyZXQ="
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    headers = signature_headers("msg_1", '{"a":1}', now, [first, second])
    assert headers["webhook-id"] == "msg_1"
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(first).verify('{"a":1}', headers) == {"a": 1}
    assert Webhook(second).verify('{"a":1}', headers) == {"a": 1}
