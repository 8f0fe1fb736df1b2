"""The GX runner: a suite from validations/ over a DataFrame, as plain results, and Data Docs on disk."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from crm_core import validation
from crm_core.validation import UnknownSuite, available_suites, build_data_docs, file_context, run_suite


def frame() -> pd.DataFrame:
    columns = ["name", "kind", "lifecycle_stage", "email", "phone", "owner", "owner__unresolved", "industry",
               "region", "source", "external_id", "tags", "_duplicate_in_file", "_key_taken", "_match_missing",
               "name__missing"]
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


def test_the_worker_process_gives_what_this_process_gives_and_raises_what_it_raises() -> None:
    pid = validation.warm_up_worker()
    assert pid is not None and pid != os.getpid()  # the test machine has a core to spare
    pending = [validation.submit_suite("customers", frame()) for _ in range(3)]  # queued, answered in order
    assert [item.result() for item in pending] == [run_suite("customers", frame())] * 3
    with pytest.raises(UnknownSuite):
        validation.submit_suite("no_such_suite", frame()).result()


def test_a_killed_worker_is_replaced_and_the_run_in_flight_finishes_here() -> None:
    pid = validation.warm_up_worker()
    assert pid is not None
    big = pd.concat([frame()] * 20_000, ignore_index=True)  # long enough to be in flight when killed
    pending = validation.submit_suite("customers", big)
    os.kill(pid, signal.SIGKILL)
    result = pending.result()  # judged in this process instead
    assert result.row_count == 60_000 and result.failed_rows()
    assert validation.warm_up_worker() not in (None, pid)  # a new worker for the next run


def test_no_worker_when_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(validation.WORKER_ENV, "0")
    assert validation.warm_up_worker() is None
    assert validation.submit_suite("customers", frame()).result() == run_suite("customers", frame())
