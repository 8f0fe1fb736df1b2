"""The service benchmark runs end to end at a tiny size and reports both measurements with their ratios."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import service


def test_the_service_benchmark_reports_the_queue_and_the_dashboard(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'bench.db'}"
    assert service.main(["--cases", "400", "--customers", "200", "--repeat", "1", "--database-url", url]) == 0
    printed = capsys.readouterr().out
    assert "200 customers, 400 cases" in printed
    for name in ("queue", "dashboard"):
        assert re.search(rf"^{name} +[0-9.]+ ms +raw SQL +[0-9.]+ ms +ratio +[0-9.]+x", printed, re.M), printed
