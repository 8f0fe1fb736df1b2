"""Both catalogs are complete, and every key the code asks for exists in them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crm_core.i18n import LANGUAGES, catalog, t
from crm_core.quality.checks import CHECKS as QUALITY_CHECKS

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "crm_ui").glob("*.py"),
           *(ROOT / "crm_core").rglob("*.py")]
LITERAL_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_.]+)["']""")
ERROR_KEY = re.compile(r"""\(["']([a-z_]+\.[a-z_]+)["'],\s*\{""")
MESSAGE_KEY = re.compile(r"""message_key = ["']([a-z_.]+)["']""")
# keys built at run time from a domain value: prefix -> the values that complete it
DYNAMIC = {
    "role.": ["admin", "manager", "rep", "analyst"],
    "stage.": ["prospect", "intent", "customer", "churned"],
    "kind.": ["company", "person"],
    "field.": ["email", "phone", "name", "credit_code"],
    # deals, funnel, dashboard (sales_deals.json)
    "export.deal.": ["id", "name", "customer_name", "owner_name", "stage_name", "amount", "currency", "probability",
                     "weighted_amount", "expected_close_date", "closed_at", "lost_reason", "created_at"],
    "funnel.column.": ["stage", "kind", "count", "amount", "reached", "reached_amount", "conversion_to_next"],
    "funnel.kind.": ["open", "won", "lost"],
    "dashboard.period_": ["month", "quarter", "year"],
    "tasks.scope.": ["mine", "team", "everyone"],
    "tasks.view.": ["overdue", "today", "upcoming", "open", "done"],
    "tasks.empty.": ["overdue", "today", "upcoming", "open", "done"],
    "tasks.priority.": ["low", "normal", "high"],
    "tasks.activity.": ["call", "meeting", "email", "visit", "note"],
    "followups.default.": [f"{key}{suffix}" for key in ("intent_quiet", "churned_win_back", "customer_deal_idle",
                                                         "customer_churn_risk") for suffix in ("", ".task")]
    + ["prospect_cold"],
    "automation.trigger.": ["entered_stage", "no_activity", "deal_idle", "churn_risk"],
    "automation.trigger_text.": ["entered_stage", "no_activity", "deal_idle", "churn_risk"],
    "automation.action.": ["create_task", "add_tag", "enroll_campaign"],
    "automation.action_text.": ["create_task", "add_tag", "enroll_campaign"],
    "automation.assign_to.": ["owner", "team"],
    "automation.field.": ["kind", "industry", "region", "source", "tags", "lifecycle_stage"],
    "automation.op.": ["equals", "not_equals", "in", "contains", "is_empty", "not_empty"],
    "automation.method.": ["round_robin", "least_busy"],
    # data quality: every check, suite, example entity and run status the page may name
    "quality.check.": sorted(QUALITY_CHECKS),
    "quality.suite.": ["db_customers", "db_sales", "db_integrity"],
    "quality.entity.": sorted({check.entity for check in QUALITY_CHECKS.values()}),
    "quality.status.": ["passed", "failed"],
    "quality.trigger.": ["cli", "page"],
    "migration.check.": ["row_count", "money_sum", "checksum", "primary_key_unique", "foreign_key_resolves"],
    # segments: fields, operators, RFM segments, scorers and their features, choices
    "segments.field.": [
        "created_at", "email", "industry", "kind", "last_contacted_at", "lifecycle_stage", "name", "next_follow_up_at",
        "owner", "region", "rfm_frequency", "rfm_monetary", "rfm_recency", "rfm_segment", "score", "source", "tags",
        "team",
    ],
    "segments.op.": [
        "after", "before", "between", "contains", "eq", "equals", "gt", "gte", "has", "has_any", "has_not", "in",
        "is_empty", "is_false", "is_not_empty", "is_true", "lt", "lte", "more_than_days_ago", "ne", "not_equals",
        "not_in", "starts_with", "within_last_days",
    ],
    "rfm.": [
        "about_to_sleep", "at_risk", "cant_lose", "champions", "hibernating", "lost", "loyal", "need_attention",
        "new_customer", "potential_loyalist", "promising",
    ],
    "scoring.scorer.": ["churn_risk", "deal_win"],
    "scoring.feature.": [
        "activities_90d", "amount_log", "cases_365d", "customer_age_days", "customer_kind", "days_since_purchase",
        "days_since_touch", "deal_activities", "has_owner", "industry", "kind", "manual_probability_set", "orders_log",
        "source", "tenure_days",
    ],
    "segments.match_": ["all", "any"],
    "segments.sharing_": ["private", "team", "tenant"],
    "segments.priority.": ["low", "normal", "high"],
    "segments.method_": ["logistic", "fallback"],
    "segments.error.": ["bad_match", "too_many_conditions", "no_conditions", "team_required", "not_your_team"],
    "score.cli.": ["trained", "trained_fallback"],
    "segments.explain_": ["raises", "lowers"],
}


def keys_used_in_code() -> set[str]:
    keys: set[str] = set()
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for pattern in (LITERAL_KEY, ERROR_KEY, MESSAGE_KEY):
            keys.update(pattern.findall(text))
    for prefix, values in DYNAMIC.items():
        keys.update(prefix + value for value in values)
    return keys


def test_english_and_chinese_catalogs_have_the_same_keys() -> None:
    assert set(catalog("en")) == set(catalog("zh-CN"))


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_every_key_used_in_the_code_is_translated(lang: str) -> None:
    missing = sorted(key for key in keys_used_in_code() if key not in catalog(lang))
    assert missing == []


def test_placeholders_match_between_languages() -> None:
    placeholder = re.compile(r"\{(\w+)\}")
    for key, english in catalog("en").items():
        assert set(placeholder.findall(english)) == set(placeholder.findall(catalog("zh-CN")[key])), key


def test_translation_formats_parameters_and_falls_back_to_the_key() -> None:
    assert t("customers.created", "zh-CN", name="张三科技") == "客户“张三科技”已创建。"
    assert t("no.such.key", "zh-CN") == "no.such.key"
