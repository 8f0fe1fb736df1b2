"""AfterCommit hooks: one defined while a commit's hooks run (a module imported for the first time inside a send,
as the job kinds are in the web host) neither breaks that commit nor is lost for the next."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from crm_core.jobs import after_commit
from crm_core.jobs.after_commit import AfterCommit


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AfterCommit]]:
    monkeypatch.delenv("CRM_JOBS_INLINE", raising=False)
    before = list(after_commit._ALL)
    yield after_commit._ALL
    after_commit._ALL[:] = before


def test_a_hook_defined_during_a_commit_leaves_the_commit_whole(hooks: list[AfterCommit]) -> None:
    engine = create_engine("sqlite://")
    sent: list[tuple[str, int]] = []
    late: list[AfterCommit] = []

    def first_send(_db: object, tenant_id: int) -> None:
        sent.append(("first", tenant_id))
        late.append(AfterCommit("test_late", lambda _db, tenant: sent.append(("late", tenant))))

    first = AfterCommit("test_first", first_send)
    with Session(engine) as session:
        first.mark(session, 7)
        session.commit()  # raised "deque mutated during iteration" when each hook was a listener of its own
        late[0].mark(session, 8)
        session.commit()
    assert sent == [("first", 7), ("late", 8)]
    assert late[0] in hooks


def test_calls_after_a_commit_run_once_on_commit_never_on_rollback_and_a_failing_one_is_only_logged(
        caplog: pytest.LogCaptureFixture) -> None:
    engine = create_engine("sqlite://")
    called: list[str] = []

    def fails() -> None:
        raise OSError("disk gone")

    with Session(engine) as session:
        session.execute(text("SELECT 1"))  # a transaction under way, as in every unit of work
        after_commit.call_after_commit(session, lambda: called.append("rolled back"))
        session.rollback()
        after_commit.call_after_commit(session, fails)
        after_commit.call_after_commit(session, lambda: called.append("committed"))
        session.commit()
        session.commit()  # the next commit calls nothing again
    assert called == ["committed"]
    assert "a call after the commit failed" in caplog.text
