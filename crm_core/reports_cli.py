"""``python -m crm_core report funnel|dashboard``: the funnel and dashboard figures on the terminal.

The commands call the same query functions as the pages (:func:`crm_core.queries.reports.funnel`
and :func:`~crm_core.queries.reports.dashboard`) in a session scoped to a user, so they print
exactly what that user sees. ``--as USERNAME`` picks the user; without it the report runs as
the first active administrator (lowest id) of the first tenant — the workspace ``init``
created — which sees the whole tenant. With several tenants, pass ``--as``.

``--owner``, ``--team``, ``--product`` and ``--pipeline`` accept an id or a name
(username, team name, SKU, pipeline name).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from sqlalchemy import select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.formatting import EMPTY, date, money, number, percent
from crm_core.i18n import t
from crm_core.models import Pipeline, Product, Role, Team, Tenant, User


class ReportUsageError(Exception):
    """A report argument that names nothing (exit code 2)."""


def add_commands(commands: Any) -> None:
    """Register ``report funnel`` and ``report dashboard`` on the CLI's subparsers."""
    report = commands.add_parser("report", help="funnel and dashboard figures (as the pages show them)")
    kinds = report.add_subparsers(dest="action", required=True)

    funnel = kinds.add_parser("funnel", help="deals by stage, conversion, win rate, deal size, cycle")
    funnel.add_argument("--since", help="deals created on or after YYYY-MM-DD")
    funnel.add_argument("--until", help="deals created on or before YYYY-MM-DD")
    funnel.add_argument("--owner", help="owner username or id")
    funnel.add_argument("--team", help="team name or id (deals of its members)")
    funnel.add_argument("--product", help="product SKU or id (deals that led to an order with it)")
    funnel.add_argument("--pipeline", help="pipeline name or id (default pipeline when omitted)")
    funnel.add_argument("--as", dest="as_user", help="username whose view to report (default: first admin)")
    funnel.add_argument("--json", action="store_true")
    funnel.set_defaults(handler=cmd_report_funnel)

    board = kinds.add_parser("dashboard", help="KPIs, revenue by month, leaderboard, deals closing this month")
    board.add_argument("--period", choices=["month", "quarter", "year"], default="month")
    board.add_argument("--today", help="the day to report for, YYYY-MM-DD (default: today, UTC)")
    board.add_argument("--as", dest="as_user", help="username whose view to report (default: first admin)")
    board.add_argument("--json", action="store_true")
    board.set_defaults(handler=cmd_report_dashboard)


def report_actor(db: Database, username: str | None, lang: str) -> Actor:
    """The actor a report runs as: ``username``, else the first tenant's first active admin."""
    from crm_core.services.auth import load_actor

    if username is None:
        with db.system_session("report: default user") as session:
            username = session.scalars(
                select(User.username)
                .join(Tenant, Tenant.id == User.tenant_id)
                .where(User.role == Role.ADMIN.value, User.is_active.is_(True), Tenant.is_active.is_(True))
                .order_by(Tenant.id, User.id)
                .limit(1)
            ).first()
        if username is None:
            raise ReportUsageError(t("cli.report.no_admin", lang))
    actor = load_actor(db, username.strip().lower())
    if actor is None:
        raise ReportUsageError(t("cli.report.unknown_user", lang, username=username))
    return actor


def _date(value: str | None, lang: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ReportUsageError(t("cli.report.bad_date", lang, value=value)) from None


def _resolve(session: Any, value: str | None, model: Any, name_column: Any, lang: str) -> int | None:
    """An id from an id or a name, within the actor's tenant (the session is scoped)."""
    if value is None:
        return None
    statement = select(model.id).where(name_column == value.strip())
    if value.strip().isdigit():
        statement = select(model.id).where((model.id == int(value)) | (name_column == value.strip()))
    found = session.scalars(statement.limit(1)).first()
    if found is None:
        raise ReportUsageError(t("cli.report.not_found", lang, value=value))
    return int(found)


def cmd_report_funnel(args: argparse.Namespace, db: Database) -> int:
    """Print the funnel exactly as the Funnel page computes it."""
    from crm_core.cli import UsageError, cli_language
    from crm_core.queries.reports import ReportFilters, funnel, tenant_currency

    lang = cli_language()
    try:
        actor = report_actor(db, args.as_user, lang)
        with db.session(actor) as session:
            filters = ReportFilters(
                since=_date(args.since, lang),
                until=_date(args.until, lang),
                owner_id=_resolve(session, args.owner, User, User.username, lang),
                team_id=_resolve(session, args.team, Team, Team.name, lang),
                product_id=_resolve(session, args.product, Product, Product.sku, lang),
                pipeline_id=_resolve(session, args.pipeline, Pipeline, Pipeline.name, lang),
            )
            result = funnel(session, filters=filters)
            currency = tenant_currency(session)
    except ReportUsageError as error:
        raise UsageError(str(error)) from None
    if result is None:
        raise UsageError(t("board.no_pipeline", lang))
    payload = {"status": "ok", "as": actor.username, "role": actor.role.value, **result.as_dict()}
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    print(t("cli.report.as_user", lang, name=actor.full_name, role=t(f"role.{actor.role.value}", lang)))
    print(f"{t('board.pipeline', lang)}: {result.pipeline.name}")
    for step in result.steps:
        conversion = "" if step.conversion_to_next is None else f"  → {percent(step.conversion_to_next, lang)}"
        print(f"  {step.stage.name:<20} {number(step.reached, lang):>8} "
              f"{money(step.reached_amount, lang, currency=currency):>18}{conversion}")
    print(f"{t('funnel.win_rate', lang)}: {percent(result.win_rate, lang)}")
    print(f"{t('funnel.average_deal_size', lang)}: {money(result.average_deal_size, lang, currency=currency)}")
    cycle = result.average_cycle_days
    print(f"{t('funnel.average_cycle', lang)}: "
          f"{EMPTY if cycle is None else t('funnel.days', lang, days=number(cycle, lang, digits=1))}")
    return 0


def cmd_report_dashboard(args: argparse.Namespace, db: Database) -> int:
    """Print the dashboard exactly as the Dashboard page computes it."""
    from crm_core.cli import UsageError, cli_language
    from crm_core.queries.reports import dashboard, tenant_currency

    lang = cli_language()
    try:
        actor = report_actor(db, args.as_user, lang)
        today = _date(args.today, lang)
    except ReportUsageError as error:
        raise UsageError(str(error)) from None
    with db.session(actor) as session:
        figures = dashboard(session, today=today, period=args.period)
        currency = tenant_currency(session)
    payload = {"status": "ok", "as": actor.username, "role": actor.role.value, **figures.as_dict()}
    if args.json:
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    period = t(f"dashboard.period_{args.period}", lang)

    def amount(value: object) -> str:
        return money(value, lang, currency=currency)

    window = figures.window
    print(t("cli.report.as_user", lang, name=actor.full_name, role=t(f"role.{actor.role.value}", lang)))
    print(t("dashboard.compared_range", lang, start=date(window.start, lang), end=date(window.last_day, lang),
            previous_start=date(window.previous_start, lang), previous_end=date(window.previous_last_day, lang)))
    print(f"{t('dashboard.open_pipeline', lang)}: {amount(figures.open_amount)} ({number(figures.open_count, lang)})")
    print(f"{t('dashboard.weighted_forecast', lang)}: {amount(figures.weighted_forecast)}")
    print(f"{t('dashboard.won_period', lang, period=period)}: {amount(figures.won_amount)} "
          f"({number(figures.won_count, lang)}); "
          f"{t('dashboard.same_days_value', lang, value=amount(figures.previous_won_amount))}")
    print(f"{t('dashboard.new_customers', lang)}: {number(figures.new_customers, lang)}; "
          f"{t('dashboard.same_days_value', lang, value=number(figures.previous_new_customers, lang))}")
    print(f"{t('dashboard.overdue_tasks', lang)}: {number(figures.overdue_tasks, lang)}")
    print(t("dashboard.revenue_trend", lang) + ":")
    for month in figures.revenue_by_month:
        print(f"  {month.month}  {amount(month.amount):>18}  ({number(month.orders, lang)})")
    print(t("dashboard.leaderboard", lang, period=period) + ":")
    for row in figures.leaderboard:
        print(f"  {row.owner_name or EMPTY:<24} {row.won_count:>5} {amount(row.won_amount):>18} {row.lost_count:>5}")
    print(t("dashboard.closing_summary", lang, count=number(figures.closing_count, lang),
            amount=amount(figures.closing_amount)))
    for deal in figures.closing_deals:
        print(f"  {deal.name[:40]:<40} {amount(deal.amount):>16}  {date(deal.expected_close_date, lang)}")
    return 0
