"""Our Data Docs: the newest run of each suite, of the reader's tenant only, in their language, data escaped."""

from __future__ import annotations

import datetime as dt
import html
import re

import pytest

from crm_core.db import Database
from crm_core.errors import AccessDenied
from crm_core.models.checks import CheckRun
from crm_core.quality.docs import latest_suite_docs, render_data_docs, render_data_docs_file
from tests.factories import World, build_world

HOSTILE = '<img src=x onerror="alert(1)">张三'


def _results(*, failing: bool) -> list[dict[str, object]]:
    return [
        {"check": "customers_without_owner", "entity": "customer", "expectation": "expect_column_values_to_be_between",
         "success": not failing, "violations": 1 if failing else 0,
         "examples": [{"id": 7, "label": HOSTILE}] if failing else []},
        {"check": "duplicate_emails", "entity": "customer", "expectation": "expect_column_values_to_be_between",
         "success": True, "violations": 0, "examples": []},
    ]


def _record(db: Database, world: World, *, tenant_id: int, suite: str, when: dt.datetime, failing: bool) -> None:
    with db.system_transaction("test: check runs") as session:
        session.add(CheckRun(
            tenant_id=tenant_id, suite=suite, trigger="page", user_id=world.admin.user_id, started_at=when,
            finished_at=when, status="failed" if failing else "passed", expectations_total=2,
            expectations_failed=1 if failing else 0, violations=1 if failing else 0,
            results=_results(failing=failing),
        ))


@pytest.fixture
def world_with_runs(db: Database) -> World:
    world = build_world(db)
    early, late = dt.datetime(2026, 12, 1, 9, 0), dt.datetime(2026, 12, 2, 10, 30)
    _record(db, world, tenant_id=world.admin.tenant_id, suite="db_customers", when=early, failing=False)
    _record(db, world, tenant_id=world.admin.tenant_id, suite="db_customers", when=late, failing=True)
    _record(db, world, tenant_id=world.other_admin.tenant_id, suite="db_sales", when=late, failing=True)
    return world


def test_the_docs_hold_the_newest_run_of_each_suite_of_the_readers_tenant(db: Database, world_with_runs: World) -> None:
    with db.session(world_with_runs.admin) as session:
        docs = latest_suite_docs(session, ["db_customers", "db_integrity", "db_sales"])
    assert [(suite.run.suite, suite.run.started_at, suite.failed) for suite in docs] == [
        ("db_customers", dt.datetime(2026, 12, 2, 10, 30), 1)  # not the earlier run, not the other tenant's suite
    ]
    with db.session(world_with_runs.other_admin) as session:
        assert [suite.run.suite for suite in latest_suite_docs(session, ["db_customers", "db_sales"])] == ["db_sales"]


def test_only_an_admin_reads_the_docs(db: Database, world_with_runs: World) -> None:
    with db.session(world_with_runs.rep) as session, pytest.raises(AccessDenied):
        latest_suite_docs(session, ["db_customers"])


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("en", ["Customers: owners, duplicates, lifecycle", "Failed", "Run 2 Dec 2026, 10:30 (UTC) by",
                "Expected: no customers break it.", "50.0%"]),
        ("zh-CN", ["未通过", "于 2026年12月2日 10:30（UTC）运行", "期望：没有任何客户违反此项。", "50.0%",
                   "违反的记录数"]),
    ],
)
def test_the_docs_read_in_the_users_language_and_escape_data(
    db: Database, world_with_runs: World, lang: str, expected: list[str]
) -> None:
    with db.session(world_with_runs.admin) as session:
        docs = latest_suite_docs(session, ["db_customers"])
    fragment = render_data_docs(docs, lang)
    for text in expected:
        assert text in fragment, text
    assert "<img" not in fragment and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;张三" in fragment
    assert "greatexpectations.io" not in fragment and "http" not in fragment  # no CDN, logo or newsletter
    page = render_data_docs_file(docs, lang, generated_at=dt.datetime(2026, 12, 4, 8, 0))
    assert page.startswith("<!DOCTYPE html>") and fragment in page


def test_the_chinese_docs_have_no_english_words_but_names(db: Database, world_with_runs: World) -> None:
    with db.session(world_with_runs.admin) as session:
        docs = latest_suite_docs(session, ["db_customers"])
    fragment = render_data_docs(docs, "zh-CN")
    text = html.unescape(re.sub(r"<style>.*?</style>|<[^>]+>", " ", fragment, flags=re.S))
    for data in (world_with_runs.admin.full_name, HOSTILE):  # records' and people's names are data
        text = text.replace(data, " ")
    # the expectation's GX name stays as it is, as a code (GX's own identifier)
    words = set(re.findall(r"[A-Za-z]{2,}", text)) - {"UTC", "expect", "column", "values", "to", "be", "between"}
    assert words == set(), words
