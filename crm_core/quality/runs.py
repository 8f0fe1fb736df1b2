"""Running the database suites: measure in SQL, validate with Great Expectations, keep the history.

Use cases: :func:`run_suite_for_tenant` (an admin on the Data quality page) and
:func:`run_suite_for_all_tenants` (``python -m crm_core check``, a system job). Both go through
:func:`_validate_tenant`, so a page run and a CLI run of the same data give the same result.
Each run is one ``check_runs`` row per tenant, which ``crm_core.quality.docs`` renders as our Data
Docs; with ``data_docs=True`` it also lands in the tenant's own Great Expectations Data Docs site
(``data/gx/tenant_<id>/``: tenants never share one), offered as a download.

GX is imported only inside the functions that validate (it costs about 3 s).
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied
from crm_core.models import Tenant, utcnow
from crm_core.models.checks import CheckRun
from crm_core.quality.checks import CHECKS, CheckMeasure, measure
from crm_core.validation import UnknownSuite, available_suites, gx_directory

SUITE_PREFIX = "db_"


@dataclass
class CheckResult:
    """One check of a run: whether its expectation held, how many rows broke it, and examples."""

    check: str
    entity: str
    success: bool
    violations: int
    examples: list[dict[str, Any]] = field(default_factory=list)
    expectation: str = "expect_column_values_to_be_between"

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "entity": self.entity, "expectation": self.expectation,
                "success": self.success, "violations": self.violations, "examples": self.examples}


@dataclass
class SuiteRun:
    """One suite run against one tenant."""

    suite: str
    tenant_id: int
    success: bool
    checks: list[CheckResult]
    started_at: dt.datetime
    seconds: float
    run_id: int | None = None

    @property
    def failures(self) -> list[CheckResult]:
        return [check for check in self.checks if not check.success]

    @property
    def violations(self) -> int:
        return sum(check.violations for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of one run."""
        return {
            "suite": self.suite, "tenant_id": self.tenant_id, "success": self.success, "run_id": self.run_id,
            "started_at": self.started_at.isoformat(timespec="seconds"), "seconds": round(self.seconds, 3),
            "expectations": len(self.checks), "failed": len(self.failures), "violations": self.violations,
            "checks": [check.as_dict() for check in self.checks],
        }


def database_suites() -> list[str]:
    """The names of the suites that run against the live database (``validations/db_*.py``)."""
    return [name for name in available_suites() if name.startswith(SUITE_PREFIX)]


def suite_checks(suite: str) -> list[str]:
    """The checks of ``suite``, in order (reads the suite module, not GX)."""
    if suite not in database_suites():
        raise UnknownSuite(suite)
    checks: list[str] = list(importlib.import_module(f"validations.{suite}").CHECKS)
    unknown = [name for name in checks if name not in CHECKS]
    if unknown:
        raise ValueError(f"suite {suite} names unknown checks: {unknown}")
    return checks


def tenant_violations(session: Session, tenant_id: int) -> dict[tuple[str, str], int]:
    """(suite, check) → the tenant's violating rows, for every check of the database suites, measured in
    ``session`` (its uncommitted writes count: an import's dry run measures what the import would leave)."""
    counts: dict[tuple[str, str], int] = {}
    for suite in database_suites():
        for name, found in _measure_suite(session, suite, tenant_id).items():
            counts[(suite, name)] = found.violations
        for name in suite_checks(suite):
            counts.setdefault((suite, name), 0)
    return counts


def newest_violations(session: Session, tenant_id: int, check: str, limit: int = 5) -> list[str]:
    """The labels of the latest rows (highest ids) breaking ``check`` in the tenant: a new record's first."""
    violations = CHECKS[check].violations().subquery()
    return [str(label) for label in session.scalars(
        select(violations.c.label).where(violations.c.tenant_id == tenant_id)
        .order_by(violations.c.id.desc()).limit(limit))]


def tenant_docs_directory(tenant_id: int) -> Path:
    """The GX project (and Data Docs site) of one tenant."""
    return gx_directory() / f"tenant_{int(tenant_id)}"


def _measure_suite(session: Session, suite: str, tenant_id: int) -> dict[str, CheckMeasure]:
    """The suite's checks that ``tenant_id`` breaks, by check."""
    found: dict[str, CheckMeasure] = {}
    for name in suite_checks(suite):
        measured = measure(session, CHECKS[name], tenant_id).get(tenant_id)
        if measured is not None:
            found[name] = measured
    return found


def _validate_tenant(
    suite: str, tenant_id: int, measures: dict[str, CheckMeasure], *, data_docs: bool
) -> tuple[bool, list[CheckResult]]:
    """Validate one tenant's counts with the suite's expectations (one row, one column per check)."""
    import pandas as pd  # type: ignore[import-untyped]

    from crm_core.validation import file_context, run_suite

    names = suite_checks(suite)
    frame = pd.DataFrame([{name: measures[name].violations if name in measures else 0 for name in names}],
                         index=[tenant_id])
    context = file_context(tenant_docs_directory(tenant_id)) if data_docs else None
    result = run_suite(suite, frame, context=context)
    outcomes = {outcome.column: outcome for outcome in result.outcomes}
    checks = []
    for name in names:
        found = measures.get(name)
        outcome = outcomes.get(name)
        checks.append(CheckResult(
            check=name,
            entity=CHECKS[name].entity,
            success=bool(outcome.success) if outcome is not None else False,
            violations=found.violations if found else 0,
            examples=found.examples if found else [],
            expectation=outcome.expectation if outcome is not None else "missing",
        ))
    return result.success, checks


def _record(session: Session, run: SuiteRun, *, trigger: str, user_id: int | None) -> int:
    row = CheckRun(
        tenant_id=run.tenant_id,
        suite=run.suite,
        trigger=trigger,
        user_id=user_id,
        started_at=run.started_at,
        finished_at=utcnow(),
        status="passed" if run.success else "failed",
        expectations_total=len(run.checks),
        expectations_failed=len(run.failures),
        violations=run.violations,
        results=[check.as_dict() for check in run.checks],
    )
    session.add(row)
    session.flush()
    return row.id


def run_suite_for_tenant(db: Database, actor: Actor, suite: str, *, data_docs: bool = True) -> SuiteRun:
    """Run ``suite`` against the admin's tenant and record it in the history."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may run data-quality checks")
    started_at, clock = utcnow(), time.perf_counter()
    with db.session(actor) as session:
        measures = _measure_suite(session, suite, actor.tenant_id)
    success, checks = _validate_tenant(suite, actor.tenant_id, measures, data_docs=data_docs)
    run = SuiteRun(suite, actor.tenant_id, success, checks, started_at, time.perf_counter() - clock)
    with db.transaction(actor) as session:
        run.run_id = _record(session, run, trigger="page", user_id=actor.user_id)
    return run


def run_suite_for_all_tenants(
    db: Database, suite: str, *, tenant_slug: str | None = None, data_docs: bool = False
) -> list[SuiteRun]:
    """Run ``suite`` against every tenant (or the one with ``tenant_slug``), tenant by tenant (each statement
    names its tenant: decision 0057); one history row each."""
    started_at, clock = utcnow(), time.perf_counter()
    with db.system_session(f"data-quality suite {suite}") as session:
        tenants_query = select(Tenant.id).order_by(Tenant.id)
        if tenant_slug:
            tenants_query = tenants_query.where(Tenant.slug == tenant_slug)
        tenant_ids = list(session.scalars(tenants_query))
    runs = []
    for tenant_id in tenant_ids:
        with db.system_session(f"data-quality suite {suite}", tenant_id=tenant_id) as session:
            measured = _measure_suite(session, suite, tenant_id)
        success, checks = _validate_tenant(suite, tenant_id, measured, data_docs=data_docs)
        runs.append(SuiteRun(suite, tenant_id, success, checks, started_at, time.perf_counter() - clock))
    with db.system_transaction(f"data-quality suite {suite}") as session:
        for run in runs:
            run.run_id = _record(session, run, trigger="cli", user_id=None)
    return runs


# --- Data Docs ---------------------------------------------------------------------


def data_docs_index(tenant_id: int) -> Path | None:
    """The tenant's Data Docs ``index.html`` when a run has built it."""
    from crm_core.validation import data_docs_index as index_of

    return index_of(tenant_docs_directory(tenant_id))


def data_docs_zip(tenant_id: int) -> bytes | None:
    """The tenant's Data Docs site as a zip (open ``index.html`` inside), or None before any run."""
    index = data_docs_index(tenant_id)
    if index is None:
        return None
    site = index.parent
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(site.rglob("*")):
            if path.is_file():
                archive.write(path, Path("data_docs") / path.relative_to(site))
    return buffer.getvalue()
