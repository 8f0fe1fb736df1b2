"""The /readyz checks in-process: the queue check's failures, and the guard that keeps a hung check bounded."""

from __future__ import annotations

import sys
import threading
import time
import types

import anyio
import pytest

from server import CheckResult, GuardedCheck, check_queue


def test_the_queue_check_reports_a_missing_queue_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "crm_core.jobs.queue", None)  # importing it now raises ImportError
    results: dict[str, CheckResult] = {}
    check_queue(results)
    assert results == {"queue": CheckResult(False, "queue module unavailable")}


@pytest.mark.parametrize(("answer", "expected"), [
    (True, CheckResult(True)),
    (False, CheckResult(False, "the job queue did not answer")),
    (ConnectionError("refused"), CheckResult(False, "the job queue check raised ConnectionError")),
])
def test_the_queue_check_reports_what_queue_reachable_says(
        monkeypatch: pytest.MonkeyPatch, answer: bool | Exception, expected: CheckResult) -> None:
    def queue_reachable() -> bool:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setitem(sys.modules, "crm_core.jobs.queue", types.SimpleNamespace(queue_reachable=queue_reachable))
    results: dict[str, CheckResult] = {}
    check_queue(results)
    assert results == {"queue": expected}


def test_a_hung_check_times_out_and_no_second_thread_starts_until_it_returns() -> None:
    release = threading.Event()
    started = []

    def hangs_until_released(results: dict[str, CheckResult]) -> None:
        started.append(threading.get_ident())
        results["first"] = CheckResult(True)
        release.wait(timeout=30)
        results["second"] = CheckResult(True)

    check = GuardedCheck(("first", "second", "third"), hangs_until_released)
    timed_out = anyio.run(check.results, 0.2)
    assert timed_out == {"first": CheckResult(True),
                         "second": CheckResult(False, "no answer within 0.2 s"),
                         "third": CheckResult(False, "not checked: an earlier check hung")}
    still_running = anyio.run(check.results, 0.2)
    assert still_running == dict.fromkeys(("first", "second", "third"),
                                          CheckResult(False, "an earlier check has not returned yet"))
    assert len(started) == 1

    release.set()
    deadline = time.monotonic() + 10
    while check.running and time.monotonic() < deadline:  # the abandoned thread returns and frees the guard
        time.sleep(0.01)
    answered = anyio.run(check.results, 5.0)
    assert answered == {"first": CheckResult(True), "second": CheckResult(True),
                        "third": CheckResult(False, "the check gave no answer")}
    assert len(started) == 2


def test_a_check_that_raises_reports_every_name_it_had_not_answered() -> None:
    def breaks_after_the_first(results: dict[str, CheckResult]) -> None:
        results["first"] = CheckResult(True)
        raise RuntimeError("boom")

    answered = anyio.run(GuardedCheck(("first", "second"), breaks_after_the_first).results, 5.0)
    assert answered == {"first": CheckResult(True), "second": CheckResult(False, "the check raised RuntimeError")}
