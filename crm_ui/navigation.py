"""Which pages exist, in which menu section, and which roles may open them.

``app.py`` builds ``st.navigation`` from this table; add a page by adding a line.
Hiding a page is convenience only: every rule is enforced again in ``crm_core``.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_core.models import Role

ALL_ROLES = frozenset(Role)
SALES = frozenset({Role.ADMIN, Role.MANAGER, Role.REP})
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class PageSpec:
    """One screen: its file, menu title key, icon, url path, section key and allowed roles."""

    path: str
    title_key: str
    icon: str
    url_path: str
    section_key: str
    roles: frozenset[Role] = ALL_ROLES


PAGES: list[PageSpec] = [
    PageSpec("pages/dashboard.py", "nav.dashboard", "📊", "dashboard", "nav.section.sales"),
    PageSpec("pages/customers.py", "nav.customers", "👥", "customers", "nav.section.sales"),
    PageSpec("pages/customer_profile.py", "nav.customer_profile", "🪪", "customer", "nav.section.sales"),
    PageSpec("pages/products.py", "nav.products", "📦", "products", "nav.section.sales"),
    PageSpec("pages/pipeline.py", "nav.pipeline", "📋", "pipeline", "nav.section.sales"),
    PageSpec("pages/tasks.py", "nav.tasks", "✅", "tasks", "nav.section.sales", SALES),
    PageSpec("pages/pool.py", "nav.pool", "🌊", "pool", "nav.section.sales", SALES),
    PageSpec("pages/service_queue.py", "nav.service_queue", "🎧", "service", "nav.section.service"),
    PageSpec("pages/case.py", "nav.case", "🎫", "case", "nav.section.service"),
    # macros are the tenant's shared replies: team leads keep them, not only admins (decision 0031, amendment)
    PageSpec("pages/macros.py", "nav.macros", "💬", "macros", "nav.section.service",
             frozenset({Role.ADMIN, Role.MANAGER})),
    PageSpec("pages/service_dashboard.py", "nav.service_dashboard", "📈", "service-dashboard", "nav.section.service",
             frozenset({Role.ADMIN, Role.MANAGER, Role.ANALYST})),
    PageSpec("pages/segments.py", "nav.segments", "🎯", "segments", "nav.section.analytics",
             frozenset({Role.ADMIN, Role.MANAGER, Role.ANALYST})),
    PageSpec("pages/funnel.py", "nav.funnel", "🔻", "funnel", "nav.section.analytics"),
    # marketing (issue 14): campaigns and their sequences, what they achieved, and who may not be contacted
    PageSpec("pages/campaigns.py", "nav.campaigns", "📣", "campaigns", "nav.section.marketing",
             frozenset({Role.ADMIN, Role.MANAGER, Role.ANALYST})),
    PageSpec("pages/campaign_results.py", "nav.campaign_results", "💹", "campaign-results", "nav.section.marketing",
             frozenset({Role.ADMIN, Role.MANAGER, Role.ANALYST})),
    PageSpec("pages/email_templates.py", "nav.email_templates", "📧", "email-templates", "nav.section.marketing",
             frozenset({Role.ADMIN, Role.MANAGER})),
    # anyone who works with customers adds an address; managers and admins take one off (decision 0046)
    PageSpec("pages/do_not_contact.py", "nav.do_not_contact", "🚫", "do-not-contact", "nav.section.marketing", SALES),
    PageSpec("pages/users.py", "nav.users", "🔑", "users", "nav.section.admin", ADMINS),
    PageSpec("pages/automation_admin.py", "nav.automation", "⚙️", "automation", "nav.section.admin", ADMINS),
    PageSpec("pages/data_quality.py", "nav.data_quality", "🧪", "data-quality", "nav.section.admin", ADMINS),
    PageSpec("pages/imports.py", "nav.imports", "📥", "imports", "nav.section.admin",
             frozenset({Role.ADMIN, Role.MANAGER})),
    PageSpec("pages/sla_settings.py", "nav.sla_settings", "⏲️", "sla-settings", "nav.section.admin", ADMINS),
    PageSpec("pages/mail_settings.py", "nav.mail_settings", "✉️", "mail-settings", "nav.section.admin", ADMINS),
    PageSpec("pages/custom_fields.py", "nav.custom_fields", "🧩", "custom-fields", "nav.section.admin", ADMINS),
    PageSpec("pages/duplicate_rules.py", "nav.duplicate_rules", "🧬", "duplicate-rules", "nav.section.admin", ADMINS),
    PageSpec("pages/pipelines_admin.py", "nav.pipelines", "🛠️", "pipelines", "nav.section.admin", ADMINS),
    PageSpec("pages/webhooks.py", "nav.webhooks", "🪝", "webhooks", "nav.section.admin", ADMINS),
    PageSpec("pages/system.py", "nav.system", "🩺", "system", "nav.section.admin", ADMINS),
    # every role starts jobs (imports, checks, refreshes); the access rules show each user their own
    PageSpec("pages/jobs.py", "nav.jobs", "⏱️", "jobs", "nav.section.workspace"),
    PageSpec("pages/notifications.py", "nav.notifications", "🔔", "notifications", "nav.section.workspace"),
    PageSpec("pages/account.py", "nav.account", "👤", "account", "nav.section.workspace"),
]


def pages_for(role: Role) -> list[PageSpec]:
    """The pages ``role`` may open, in menu order."""
    return [page for page in PAGES if role in page.roles]


def page_at(address: str | None) -> str | None:
    """The ``url_path`` of the page a browser address opens: the last path segment, as this table names it
    or as Streamlit names a file of ``pages/`` before the frame has run (``customer_profile``)."""
    from pathlib import PurePosixPath
    from urllib.parse import urlsplit

    segment = urlsplit(address or "").path.strip("/").rsplit("/", 1)[-1]
    return next((page.url_path for page in PAGES if segment in (page.url_path, PurePosixPath(page.path).stem)), None)
