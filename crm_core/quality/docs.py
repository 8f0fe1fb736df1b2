"""Our Data Docs: the newest result of every database suite, rendered in the reader's language.

Great Expectations validates each run (``crm_core.quality.runs``) and its result is stored with
the run (``check_runs.results``); this module renders those same results the way GX's Data Docs
do — the suite, when and by whom it ran, the statistics, then every expectation with what it
expects and what it observed — but in English or Chinese, in the product's look, with no
external stylesheet, logo or footer (decision 0018). The HTML is one self-contained fragment
whose styles are scoped to it: the page shows it inline and offers it as a file.

Every value that comes from data (example records) is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core import formatting
from crm_core.i18n import t
from crm_core.quality.history import CheckRunRow, check_run_details, list_check_runs
from crm_core.quality.runs import database_suites


@dataclass(frozen=True)
class SuiteDocs:
    """The newest run of one suite and its per-check results."""

    run: CheckRunRow
    checks: list[dict[str, Any]]

    @property
    def failed(self) -> int:
        return sum(1 for check in self.checks if not check.get("success"))


def latest_suite_docs(session: Session, suites: list[str] | None = None) -> list[SuiteDocs]:
    """The newest run of each suite (in suite order) that has run at all, for the session's tenant."""
    found = []
    for suite in suites if suites is not None else database_suites():
        runs = list_check_runs(session, suite=suite, limit=1)
        if runs:
            found.append(SuiteDocs(runs[0], check_run_details(session, runs[0].run_id)))
    return found


# on a phone the examples column goes and long words (an expectation's name) break: the table fits 390 px
STYLES = """
.kdocs{font-family:inherit;color:#31333f;line-height:1.5}
.kdocs h2{font-size:1.35rem;margin:1.2rem 0 .25rem}
.kdocs .kdocs-meta{color:#6b6f7b;font-size:.875rem;margin:0 0 .75rem}
.kdocs .kdocs-badge{display:inline-block;border-radius:.5rem;padding:.05rem .55rem;font-size:.8rem;font-weight:600;
  margin-left:.5rem;vertical-align:middle}
.kdocs .kdocs-passed{background:#e6f4ea;color:#1e6b34}.kdocs .kdocs-failed{background:#fdecea;color:#a4262c}
.kdocs .kdocs-stats{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;margin:.25rem 0 .75rem}
.kdocs .kdocs-stats div{min-width:7rem}.kdocs .kdocs-stats b{display:block;font-size:1.25rem}
.kdocs .kdocs-stats span{color:#6b6f7b;font-size:.8rem}
.kdocs .kdocs-table{width:100%;overflow-x:auto}
.kdocs table{border-collapse:collapse;width:100%;font-size:.875rem}
.kdocs th{text-align:left;font-weight:600;border-bottom:2px solid #e6e6ea;padding:.4rem .5rem;white-space:nowrap}
.kdocs td{border-bottom:1px solid #eeeef2;padding:.45rem .5rem;vertical-align:top}
.kdocs td.kdocs-number{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.kdocs code{font-size:.75rem;color:#6b6f7b;background:#f6f6f8;border-radius:.25rem;padding:0 .25rem}
.kdocs .kdocs-examples{color:#6b6f7b;font-size:.8rem}
@media (max-width:640px){.kdocs .kdocs-hide-narrow{display:none}
  .kdocs td,.kdocs code{overflow-wrap:anywhere}.kdocs td:first-child{white-space:nowrap}}
"""


def render_data_docs(docs: list[SuiteDocs], lang: str) -> str:
    """The Data Docs of ``docs`` as one HTML fragment in ``lang`` (styles scoped to ``.kdocs``)."""
    parts = [f"<style>{STYLES}</style>", '<div class="kdocs">']
    for suite in docs:
        parts.append(_suite_section(suite, lang))
    parts.append("</div>")
    return "".join(parts)


def render_data_docs_file(docs: list[SuiteDocs], lang: str, *, generated_at: dt.datetime) -> str:
    """A standalone HTML document of the same Data Docs, to download and open anywhere."""
    title = _text(t("docs.title", lang))
    generated = _text(t("docs.generated", lang, when=formatting.when(generated_at, lang)))
    html_lang = "zh-CN" if lang.startswith("zh") else "en"
    return (
        f'<!DOCTYPE html><html lang="{html_lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>'
        '<style>body{font-family:"Source Sans Pro","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",'
        "sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem}</style></head><body>"
        f'<h1>{title}</h1><p class="kdocs-meta">{generated}</p>'
        f"{render_data_docs(docs, lang)}</body></html>"
    )


def _suite_section(suite: SuiteDocs, lang: str) -> str:
    run = suite.run
    passed = run.status == "passed"
    total = len(suite.checks)
    successful = total - suite.failed
    badge_class = "kdocs-passed" if passed else "kdocs-failed"
    run_by = run.run_by or t(f"quality.trigger.{run.trigger}", lang)
    meta = t("docs.ran", lang, when=formatting.when(run.started_at, lang), who=run_by)
    statistics = [
        (formatting.number(total, lang), t("docs.evaluated", lang)),
        (formatting.number(successful, lang), t("docs.successful", lang)),
        (formatting.number(suite.failed, lang), t("docs.unsuccessful", lang)),
        (formatting.percent(successful / total if total else None, lang), t("docs.success_percent", lang)),
    ]
    rows = "".join(_check_row(check, lang) for check in suite.checks)
    return (
        f"<section><h2>{_text(t(f'quality.suite.{run.suite}', lang))}"
        f'<span class="kdocs-badge {badge_class}">{_text(t(f"quality.status.{run.status}", lang))}</span></h2>'
        f'<p class="kdocs-meta">{_text(meta)}</p>'
        '<div class="kdocs-stats">'
        + "".join(f"<div><b>{_text(value)}</b><span>{_text(label)}</span></div>" for value, label in statistics)
        + "</div>"
        '<div class="kdocs-table"><table><thead><tr>'
        f"<th>{_text(t('docs.status', lang))}</th><th>{_text(t('docs.expectation', lang))}</th>"
        f"<th>{_text(t('docs.observed', lang))}</th>"
        f"<th class=\"kdocs-hide-narrow\">{_text(t('docs.examples', lang))}</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _check_row(check: dict[str, Any], lang: str) -> str:
    name = str(check.get("check", ""))
    success = bool(check.get("success"))
    entity = t(f"quality.entity.{check.get('entity', '')}", lang)
    expectation = str(check.get("expectation") or "")
    examples = "; ".join(
        f"#{example.get('id')} {example.get('label') or ''}".strip() for example in check.get("examples") or []
    )
    status = t("quality.status.passed" if success else "quality.status.failed", lang)
    return (
        "<tr>"
        f"<td>{'✅' if success else '❌'} {_text(status)}</td>"
        f"<td>{_text(t(f'quality.check.{name}', lang))}<br>"
        f"<span class=\"kdocs-examples\">{_text(t('docs.expects_none', lang, entity=entity))}</span> "
        f"<code>{_text(expectation)}</code></td>"
        f"<td class=\"kdocs-number\">{_text(formatting.number(check.get('violations', 0), lang))}</td>"
        f"<td class=\"kdocs-examples kdocs-hide-narrow\">{_text(examples or formatting.EMPTY)}</td>"
        "</tr>"
    )


def _text(value: str) -> str:
    return html.escape(value, quote=True)
