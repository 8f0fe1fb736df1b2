"""Stage automation rules, pure: what a valid rule is.

A rule is ``stage + trigger (+ threshold) → action``. :func:`automation_rule_problems` runs
before a rule is saved, so a stored rule always runs. No rule can loop: every action
(create a task, add a tag, enrol in a campaign) leaves untouched what the triggers read
(lifecycle stage and its transitions, activities, deals, churn scores), and each firing is
recorded per occurrence, so a rule fires once per event and never because of its own action.
"""

from __future__ import annotations

from typing import Any

from crm_core.models import LifecycleStage, Priority
from crm_core.models.automation import AutomationAction, AutomationTrigger

STAGES = tuple(stage.value for stage in LifecycleStage)
PRIORITIES = tuple(priority.value for priority in Priority)
ASSIGN_TO = ("owner", "team")
MAX_DAYS = 3650
MAX_DUE_DAYS = 365

Problems = dict[str, tuple[str, dict[str, Any]]]


def automation_rule_problems(
    *,
    name: str,
    stage: str,
    trigger: str,
    threshold: int | None,
    action: str,
    task_title: str = "",
    due_in_days: int = 1,
    priority: str = "normal",
    assign_to: str = "owner",
    tag: str = "",
    campaign_id: int | None = None,
) -> Problems:
    """Field → (catalog key, params) for every reason the rule cannot be saved."""
    problems: Problems = {}
    if not name.strip():
        problems["name"] = ("validation.required", {})
    elif len(name.strip()) > 120:
        problems["name"] = ("validation.too_long", {"max": 120})
    if stage not in STAGES:
        problems["stage"] = ("validation.choice", {})
    if trigger not in AutomationTrigger.ALL:
        problems["trigger"] = ("validation.choice", {})
    elif trigger in (AutomationTrigger.NO_ACTIVITY, AutomationTrigger.DEAL_IDLE):
        if threshold is None or not 1 <= threshold <= MAX_DAYS:
            problems["threshold"] = ("followups.rule.days_range", {"min": 1, "max": MAX_DAYS})
    elif trigger == AutomationTrigger.CHURN_RISK and (threshold is None or not 1 <= threshold <= 99):
        problems["threshold"] = ("followups.rule.percent_range", {"min": 1, "max": 99})
    if action not in AutomationAction.ALL:
        problems["action"] = ("validation.choice", {})
    elif action == AutomationAction.CREATE_TASK:
        if not task_title.strip():
            problems["task_title"] = ("validation.required", {})
        elif len(task_title.strip()) > 200:
            problems["task_title"] = ("validation.too_long", {"max": 200})
        elif "{" in task_title.replace("{name}", "") or "}" in task_title.replace("{name}", ""):
            problems["task_title"] = ("followups.rule.bad_placeholder", {})
        if not 0 <= due_in_days <= MAX_DUE_DAYS:
            problems["due_in_days"] = ("followups.rule.days_range", {"min": 0, "max": MAX_DUE_DAYS})
        if priority not in PRIORITIES:
            problems["priority"] = ("validation.choice", {})
        if assign_to not in ASSIGN_TO:
            problems["assign_to"] = ("validation.choice", {})
    elif action == AutomationAction.ADD_TAG:
        cleaned = tag.strip()
        if not cleaned:
            problems["tag"] = ("validation.required", {})
        elif "," in cleaned or "，" in cleaned:
            problems["tag"] = ("followups.rule.one_tag", {})
        elif len(cleaned) > 60:
            problems["tag"] = ("validation.too_long", {"max": 60})
    elif action == AutomationAction.ENROLL_CAMPAIGN and campaign_id is None:
        problems["campaign_id"] = ("validation.required", {})
    return problems


def render_task_title(template: str, customer_name: str) -> str:
    """The task title for one customer: ``{name}`` replaced, cut to the column's 200 characters."""
    return template.replace("{name}", customer_name)[:200]
