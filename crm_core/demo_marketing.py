"""The demo's marketing story (issue 14): two campaigns with sequences over the last 90 days, so a fresh
``make run`` shows campaign results, attribution and touches on the 360 timeline.

- **Lifecycle nurture** (launched 85 days ago, 90-day attribution window): email, wait 3 days, branch on
  an open within 7 days (opened → the call task; else a follow-up email first), goal: a deal won.
- **Win-back** (launched 45 days ago, 60-day window): email, wait 5 business days, a visit task, goal:
  the lifecycle stage reaches customer.

Each has an email template in English and one in Chinese; the steps send the tenant's language. Members
are drawn among the customers, a third of them among those with a deal created or won after the launch
(so some won deals are influenced). Each member's address has a consent grant with its basis (most of
them) or none (the send is skipped: "no lawful basis recorded"); a member without any address is
skipped for that. Delivered, bounced, opened, clicked, replied and unsubscribed follow fixed rates, each
at its moment; the member's state (active on a step, exited, completed, goal) follows from its touches.

Everything is drawn from the generator handed in (the demo's own, spawned per tenant) in a fixed order,
and written through the demo's bulk writer; ids are assigned here like the demo's other tables.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DAY = 86_400
NO_BASIS = "no lawful basis recorded"
NO_ADDRESS = "no email address"
MEMBERS_CAP = 5_000  # per campaign: a story, not a load test (benchmarks/campaign_results.py is that)

TEXTS: dict[str, dict[str, Any]] = {
    "en": {
        "campaigns": ["Lifecycle nurture", "Win-back"],
        "tasks": ["Call after the nurture emails", "Visit a customer we are winning back"],
    },
    "zh": {
        "campaigns": ["线索培育计划", "老客户唤回"],
        "tasks": ["培育邮件后电话跟进", "上门拜访唤回客户"],
    },
}
TEMPLATES = [  # (key, language, name, subject, body): a pair per email step
    ("welcome", "en", "Nurture welcome", "{{ customer.name }}, three ideas for this quarter",
     "Dear {{ contact.name }},\n\nHere are three ways teams like yours save time with Kestrel.\n\n"
     "{{ owner.full_name }}"),
    ("welcome", "zh-CN", "培育欢迎邮件", "{{ customer.name }}，本季度的三个建议",
     "{{ contact.name }} 您好：\n\n与您类似的团队用红隼节省时间的三种方法。\n\n{{ owner.full_name }}"),
    ("follow_up", "en", "Nurture follow-up", "A customer story for {{ customer.name }}",
     "Dear {{ contact.name }},\n\nHow one of our customers cut their quote time in half.\n\n{{ owner.full_name }}"),
    ("follow_up", "zh-CN", "培育跟进邮件", "给{{ customer.name }}的客户案例",
     "{{ contact.name }} 您好：\n\n一位客户如何把报价时间缩短一半。\n\n{{ owner.full_name }}"),
    ("win_back", "en", "Win-back offer", "We miss you, {{ customer.name }}",
     "Dear {{ contact.name }},\n\nA year of updates is waiting for you; here is what is new.\n\n"
     "{{ owner.full_name }}"),
    ("win_back", "zh-CN", "唤回优惠邮件", "{{ customer.name }}，好久不见",
     "{{ contact.name }} 您好：\n\n这一年我们做了许多更新，欢迎回来看看。\n\n{{ owner.full_name }}"),
]
BASES = (("consent", 0.6), ("legitimate_interest", 0.3), ("contract", 0.1))
PROOFS = (("form", "newsletter form"), ("import", "trade-show import"), ("manual", "asked on the phone"))


@dataclass(frozen=True)
class Customers:
    """What the story needs of the tenant's drawn customers (arrays indexed by customer position)."""

    ids: np.ndarray
    emails: np.ndarray  # normalised customer email or None
    contact_id: np.ndarray  # the primary contact with an email, or -1
    contact_email: np.ndarray  # its normalised email or None
    worker: np.ndarray  # who works the customer (the owner, or a rep of its team)
    deal_customer: np.ndarray  # per deal: the customer's position
    deal_kind: np.ndarray
    deal_created: np.ndarray  # seconds relative to the reference midnight
    deal_closed: np.ndarray


@dataclass
class _Rows:
    """Column lists per table, filled member by member."""

    tables: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def add(self, table: str, **values: Any) -> None:
        columns = self.tables.setdefault(table, {})
        for name, value in values.items():
            columns.setdefault(name, []).append(value)

    def size(self, table: str) -> int:
        columns = self.tables.get(table)
        return len(next(iter(columns.values()))) if columns else 0


def _token(tenant_id: int, message_id: int) -> str:
    return hashlib.sha256(f"kestrel-demo:{tenant_id}:{message_id}".encode()).hexdigest()[:40]


def marketing_story(  # noqa: PLR0915 - one story told in order; split, its steps would pass a dozen arrays around
    insert: Callable[[str, int, dict[str, Any]], None],
    next_id: Callable[[str], int],
    stamp: Callable[[int], Any],
    rng: np.random.Generator,
    *,
    tenant_id: int,
    zh: bool,
    customers: Customers,
    now: int,
) -> dict[str, int]:
    """Draw and insert the story of one tenant; returns the rows written per table.

    ``insert(table, size, columns)`` writes rows, ``next_id(table)`` gives the first free id, ``stamp(seconds)``
    turns a relative second count into the stored timestamp.
    """
    n = customers.ids.shape[0]
    texts = TEXTS["zh" if zh else "en"]
    language = "zh-CN" if zh else "en"
    ids = {table: next_id(table) for table in ("campaigns", "email_templates", "campaign_steps", "campaign_members",
                                                "marketing_messages", "marketing_events", "consent_records")}
    rows = _Rows()
    launched = [now - 85 * DAY, now - 45 * DAY]
    campaign_ids = [ids["campaigns"], ids["campaigns"] + 1]
    for index, campaign_id in enumerate(campaign_ids):
        created = launched[index] - 7 * DAY
        rows.add("campaigns", id=campaign_id, tenant_id=tenant_id, name=texts["campaigns"][index], channel="email",
                 status="running", starts_on=None, ends_on=None, budget="0.00",
                 target_kind="lifecycle", lifecycle_stage=("prospect", "churned")[index], entry_mode="dynamic",
                 allow_reentry=False,
                 goal='{"kind": "deal_won"}' if index == 0 else '{"kind": "lifecycle", "stage": "customer"}',
                 exit_on='["replied", "unsubscribed"]', attribution_days=(90, 60)[index],
                 launched_at=stamp(launched[index]), created_at=stamp(created), updated_at=stamp(launched[index]),
                 version=1)
    template_of: dict[str, int] = {}
    for offset, (key, template_language, name, subject, body) in enumerate(TEMPLATES):
        template_id = ids["email_templates"] + offset
        if template_language == language:
            template_of[key] = template_id
        rows.add("email_templates", id=template_id, tenant_id=tenant_id, name=name, language=template_language,
                 subject=subject, body=body, archived_at=None, created_by_id=None,
                 created_at=stamp(launched[0] - 10 * DAY), updated_at=stamp(launched[0] - 10 * DAY), version=1)
    step = ids["campaign_steps"]
    nurture = {"welcome": step, "wait": step + 1, "branch": step + 2, "follow_up": step + 3, "task": step + 4,
               "goal": step + 5}
    win_back = {"win_back": step + 6, "wait": step + 7, "task": step + 8, "goal": step + 9}
    configs: list[tuple[int, int, int, str, str]] = [
        (nurture["welcome"], campaign_ids[0], 1, "email", f'{{"template_id": {template_of["welcome"]}}}'),
        (nurture["wait"], campaign_ids[0], 2, "wait", '{"days": 3, "business_days": false}'),
        (nurture["branch"], campaign_ids[0], 3, "branch",
         f'{{"event": "opened", "within_days": 7, "then_step": {nurture["task"]}, "else_step": null}}'),
        (nurture["follow_up"], campaign_ids[0], 4, "email", f'{{"template_id": {template_of["follow_up"]}}}'),
        (nurture["task"], campaign_ids[0], 5, "task",
         json.dumps({"activity_kind": "call", "title": texts["tasks"][0], "due_days": 2}, ensure_ascii=False)),
        (nurture["goal"], campaign_ids[0], 6, "goal", '{"kind": "deal_won"}'),
        (win_back["win_back"], campaign_ids[1], 1, "email", f'{{"template_id": {template_of["win_back"]}}}'),
        (win_back["wait"], campaign_ids[1], 2, "wait", '{"days": 5, "business_days": true}'),
        (win_back["task"], campaign_ids[1], 3, "task",
         json.dumps({"activity_kind": "visit", "title": texts["tasks"][1], "due_days": 5}, ensure_ascii=False)),
        (win_back["goal"], campaign_ids[1], 4, "goal", '{"kind": "lifecycle", "stage": "customer"}'),
    ]
    for step_id, campaign_id, position, kind, config in configs:
        at = stamp(launched[0 if campaign_id == campaign_ids[0] else 1] - DAY)
        rows.add("campaign_steps", id=step_id, tenant_id=tenant_id, campaign_id=campaign_id, position=position,
                 kind=kind, config=config, archived_at=None, created_at=at, updated_at=at, version=1)

    consent_of: dict[str, int | None] = {}  # address → its grant's id, or None: no basis (one decision per address)

    def grant(address: str, position: int, contact: int | None, before: int) -> int | None:
        if address in consent_of:
            return consent_of[address]
        if rng.random() >= 0.85:
            consent_of[address] = None
            return None
        record_id = ids["consent_records"] + rows.size("consent_records")
        basis = BASES[int(rng.choice(3, p=[share for _, share in BASES]))][0]
        proof_kind, proof = PROOFS[int(rng.integers(0, 3))]
        at = before - int(rng.integers(5, 400)) * DAY
        rows.add("consent_records", id=record_id, tenant_id=tenant_id, channel="email", address=address,
                 customer_id=int(customers.ids[position]), contact_id=contact, action="grant", basis=basis,
                 proof_kind=proof_kind, proof=proof, recorded_at=stamp(at), recorded_by_id=None,
                 created_at=stamp(at), updated_at=stamp(at))
        consent_of[address] = record_id
        return record_id

    def event(campaign_id: int, step_id: int | None, member_id: int, position: int, contact: int | None, kind: str,
              at: int, message: int | None = None, detail: str = "") -> None:
        rows.add("marketing_events", id=ids["marketing_events"] + rows.size("marketing_events"), tenant_id=tenant_id,
                 campaign_id=campaign_id, step_id=step_id, member_id=member_id, message_id=message,
                 customer_id=int(customers.ids[position]), contact_id=contact, cycle=1, kind=kind,
                 occurred_at=stamp(at), detail=detail, created_at=stamp(at), updated_at=stamp(at))

    # members: a third among customers with a deal created or won after the launch, the rest at random
    recent = np.flatnonzero((customers.deal_kind != "lost") & (
        (customers.deal_created > launched[0] + 10 * DAY) | (customers.deal_closed > launched[0] + 10 * DAY)))
    recent_customers = np.unique(customers.deal_customer[recent]) if recent.size else np.zeros(0, np.int64)
    size = min(n, MEMBERS_CAP, max(40, n // 8))
    # each customer's won deals' close times, grouped by customer: a member's are a slice (a mask over every deal
    # per member cost minutes at 10M customers)
    won_deals = np.flatnonzero(customers.deal_kind == "won")
    won_deals = won_deals[np.argsort(customers.deal_customer[won_deals], kind="stable")]
    won_closed = customers.deal_closed[won_deals]
    won_start = np.searchsorted(customers.deal_customer[won_deals], np.arange(n + 1))
    for campaign_index, campaign_id in enumerate(campaign_ids):
        if size == 0:
            break
        from_deals = rng.permutation(recent_customers)[: size // 3]
        others = rng.permutation(np.setdiff1d(np.arange(n), from_deals))[: size - from_deals.shape[0]]
        members = np.concatenate([from_deals, others]).astype(np.int64)
        steps = nurture if campaign_index == 0 else win_back
        emails = ["welcome", "follow_up"] if campaign_index == 0 else ["win_back"]
        for position in members.tolist():
            member_id = ids["campaign_members"] + rows.size("campaign_members")
            entered = launched[campaign_index] + int(rng.integers(0, 20 * DAY))
            has_contact = customers.contact_id[position] >= 0
            contact = int(customers.contact_id[position]) if has_contact else None
            address = customers.contact_email[position] if has_contact else customers.emails[position]
            event(campaign_id, steps["welcome" if campaign_index == 0 else "win_back"], member_id, position, contact,
                  "entered", entered)
            state, finished, exit_reason, at_step, at = "active", None, None, steps[emails[0]], entered
            opened_any = False
            for email_index, key in enumerate(emails):
                if campaign_index == 0 and email_index == 1 and opened_any:
                    break  # the branch sends openers straight to the call
                send_at = entered if email_index == 0 else entered + 3 * DAY + 7 * DAY
                if send_at > now:
                    break
                at_step, at = steps[key], send_at
                message_id = ids["marketing_messages"] + rows.size("marketing_messages")
                record = grant(address, position, contact, send_at) if address else None
                status, reason = ("sent", f"basis recorded (ledger entry {record})") if record else (
                    "skipped", NO_BASIS if address else NO_ADDRESS)
                bounced = status == "sent" and rng.random() < 0.03
                rows.add("marketing_messages", id=message_id, tenant_id=tenant_id, campaign_id=campaign_id,
                         step_id=steps[key], member_id=member_id, cycle=1, customer_id=int(customers.ids[position]),
                         contact_id=contact, template_id=template_of[key], language=language,
                         to_address=address or "", from_address="marketing@kestrel-demo.example",
                         subject="", body="", status="bounced" if bounced else status, reason=reason,
                         consent_record_id=record, token=_token(tenant_id, message_id),
                         message_id=f"<demo-{tenant_id}-{message_id}@kestrel-demo.example>", attempts=1,
                         last_error="550 no such mailbox" if bounced else None, queued_at=stamp(send_at),
                         claimed_at=stamp(send_at) if status == "sent" else None,
                         sent_at=stamp(send_at + 5) if status == "sent" else None,
                         created_at=stamp(send_at), updated_at=stamp(send_at + 5))
                if status == "skipped":
                    event(campaign_id, steps[key], member_id, position, contact, "skipped", send_at, message_id,
                          reason)
                    continue
                event(campaign_id, steps[key], member_id, position, contact, "sent", send_at + 5, message_id)
                if bounced:
                    event(campaign_id, steps[key], member_id, position, contact, "bounced", send_at + 60, message_id,
                          "550 no such mailbox")
                    continue
                if rng.random() < 0.45:
                    opened_any = True
                    opened = send_at + int(rng.integers(600, 3 * DAY))
                    for _ in range(int(rng.integers(1, 4))):
                        event(campaign_id, steps[key], member_id, position, contact, "opened",
                              min(opened + int(rng.integers(0, DAY)), now), message_id)
                    if rng.random() < 0.35:
                        event(campaign_id, steps[key], member_id, position, contact, "clicked",
                              min(opened + 120, now), message_id, "https://kestrel-demo.example/offer")
                    if rng.random() < 0.1:
                        event(campaign_id, steps[key], member_id, position, contact, "replied",
                              min(opened + 3600, now), message_id)
                        state, finished, exit_reason = "exited", min(opened + 3600, now), "replied"
                        break
                if rng.random() < 0.02:
                    gone = min(send_at + int(rng.integers(3600, 2 * DAY)), now)
                    event(campaign_id, steps[key], member_id, position, contact, "unsubscribed", gone, message_id)
                    rows.add("consent_records", id=ids["consent_records"] + rows.size("consent_records"),
                             tenant_id=tenant_id, channel="email", address=address,
                             customer_id=int(customers.ids[position]), contact_id=contact, action="withdraw",
                             basis=None, proof_kind="unsubscribe", proof=f"message {message_id}",
                             recorded_at=stamp(gone), recorded_by_id=None, created_at=stamp(gone),
                             updated_at=stamp(gone))
                    state, finished, exit_reason = "exited", gone, "unsubscribed"
                    break
            if state == "exited" and finished is not None:
                event(campaign_id, at_step, member_id, position, contact, "exited", finished, detail=exit_reason or "")
            else:
                task_at = entered + (10 if campaign_index == 0 else 7) * DAY
                if task_at <= now:
                    at_step, at = steps["task"], task_at
                    event(campaign_id, steps["task"], member_id, position, contact, "task", task_at,
                          detail=texts["tasks"][campaign_index])
                    won = won_closed[won_start[position]:won_start[position + 1]]
                    won = won[(won > task_at) & (won <= now)]
                    if won.size:
                        state, finished, at_step = "goal", int(won.min()), steps["goal"]
                        event(campaign_id, steps["goal"], member_id, position, contact, "goal", finished)
                    elif task_at + 2 * DAY <= now:
                        state, finished, at_step = "completed", task_at + 2 * DAY, steps["goal"]
                        event(campaign_id, steps["goal"], member_id, position, contact, "completed", finished)
            rows.add("campaign_members", id=member_id, tenant_id=tenant_id, campaign_id=campaign_id,
                     customer_id=int(customers.ids[position]), source=f"rule:lifecycle-{campaign_index + 1}",
                     enrolled_by_id=None, enrolled_at=stamp(entered), contact_id=contact, state=state,
                     step_id=at_step, step_entered_at=stamp(at),
                     next_run_at=None if state != "active" else stamp(max(at + DAY, now + 3600)), cycle=1,
                     finished_at=stamp(finished) if finished is not None else None, exit_reason=exit_reason,
                     created_at=stamp(entered), updated_at=stamp(max(entered, finished or entered)))
    counts = {}
    for table in ("campaigns", "email_templates", "campaign_steps", "consent_records", "campaign_members",
                  "marketing_messages", "marketing_events"):
        columns = rows.tables.get(table, {})
        size_of = rows.size(table)
        insert(table, size_of, columns)
        counts[table] = size_of
    return counts
