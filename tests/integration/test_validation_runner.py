"""The GX runner: a suite from validations/ over a DataFrame, as plain results, and Data Docs on disk."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_core import validation
from crm_core.validation import (
    UnknownSuite,
    available_suites,
    build_data_docs,
    ephemeral_context,
    file_context,
    run_suite,
)


def frame() -> pd.DataFrame:
    # the markers the import's prepare step adds follow the fields
    columns = ["name", "kind", "lifecycle_stage", "email", "phone", "owner", "owner__unresolved", "industry",
               "region", "source", "external_id", "tags", "_duplicate_in_file", "_key_taken", "_match_missing",
               "name__missing", "_extra_fields", "_custom__invalid", "_custom__missing", "credit_code",
               "credit_code__invalid", "_duplicate_blocked", "created_at__invalid",
               "_rule_imports_rule_history_in_future", "external_id__taken", "email_consent", "email_consent_source",
               "email_consent_date__invalid", "_rule_consent_import_date_in_future", "_rule_consent_import_no_email"]
    rows = [
        {"name": "张三科技", "kind": "company", "lifecycle_stage": "prospect", "email": "a@b.cn"},
        {"name__missing": "", "kind": "compny", "lifecycle_stage": "prospect", "email": "bad"},
        {"name": "Acme", "kind": "person", "lifecycle_stage": "intent", "owner__unresolved": "bob"},
    ]
    return pd.DataFrame(rows, columns=columns, index=[2, 3, 4])


def test_run_suite_reports_each_failing_expectation_with_rows_examples_and_a_message() -> None:
    result = run_suite("customers", frame())
    assert not result.success and result.row_count == 3
    failures = {(outcome.expectation, outcome.column): outcome for outcome in result.failures}
    email = failures[("expect_column_values_to_match_regex", "email")]
    assert (email.unexpected_count, email.unexpected_rows, email.examples) == (1, [3], ["bad"])
    assert email.message_key == "imports.rule.email"
    assert email.message("en") == "email is not a valid email address."
    assert email.message("zh-CN") == "email不是有效的邮箱地址。"
    assert failures[("expect_column_values_to_be_in_set", "kind")].examples == ["compny"]
    assert failures[("expect_column_values_to_be_null", "owner__unresolved")].unexpected_rows == [4]
    assert sorted(result.failed_rows()) == [3, 4]
    assert result.as_dict()["outcomes"][0]["expectation"].startswith("expect_")


def test_a_clean_frame_passes_every_expectation() -> None:
    clean = frame().iloc[[0]]
    assert run_suite("customers", clean).success


def test_the_in_memory_runs_keep_nothing_behind() -> None:
    """The host and the worker validate every import chunk in the process-wide context: no result may pile up."""
    results_store = ephemeral_context().validation_results_store
    run_suite("customers", frame())
    kept = len(results_store.list_keys())
    for _ in range(3):
        run_suite("customers", frame())
    assert len(results_store.list_keys()) == kept == 0


@pytest.mark.parametrize("suite", ["customers", "opportunities", "tasks"])
def test_expectations_answered_without_gx_are_answered_as_gx_answers_them(
    suite: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Column-map expectations over all-null columns skip GX's per-expectation cost; the outcomes stay GX's own."""
    columns = list(frame().columns) if suite == "customers" else []
    sample = frame() if suite == "customers" else pd.DataFrame({"name": ["a", None], "status": [None, None]})
    for expectation in validation.load_expectations(suite):
        column = getattr(expectation, "column", None)
        if column and column not in sample.columns and column not in columns:
            sample[column] = None
    skipped = validation.vacuous_expectations(validation.load_expectations(suite), sample)
    assert len(skipped) >= 5  # the case this is for: most fields unmapped, most rules unbroken
    kinds = {type(validation.load_expectations(suite)[index]).__name__ for index in skipped}
    assert "ExpectColumnValuesToNotBeNull" not in kinds  # an empty required column fails, GX says so

    shortcut = run_suite(suite, sample)
    monkeypatch.setattr(validation, "vacuous_expectations", lambda expectations, frame: set())
    assert run_suite(suite, sample) == shortcut


def test_unknown_suites_are_refused_by_name() -> None:
    assert {"customers", "orders", "products"} <= set(available_suites())
    with pytest.raises(UnknownSuite):
        run_suite("../etc/passwd", frame())
    with pytest.raises(UnknownSuite):
        run_suite("no_such_suite", frame())


def test_a_file_context_keeps_results_and_builds_data_docs(tmp_path: Path) -> None:
    context = file_context(tmp_path / "gx")
    result = run_suite("customers", frame(), context=context)
    assert not result.success
    index = build_data_docs(context)
    assert index is not None and index.name == "index.html" and index.exists()
    assert "customers" in index.read_text(encoding="utf-8")
