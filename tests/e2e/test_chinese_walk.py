"""In Chromium, in 中文: every role opens every page it has, and no English UI string shows.

The world's data is Chinese (names, teams, stages, products), so any English word on a page
is interface text: the page's own, or Streamlit's (menus, uploaders, date boxes, empty cells).
A short list of proper nouns and technical names is allowed. Each page is also pictured at
1280 and 390 px (``artifacts/screenshots/zh-walk-*``).

The world also holds hostile values (issue 19): a customer, its tags and industry, a deal, a
product, a task and a segment whose names carry Markdown images and links, HTML, colour and bold
markup. On every page view of every role the page must show them as text: no image or link
built from them, nothing bold or coloured from them, no Content-Security-Policy violation and
no request for any address outside the app.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.i18n import t
from crm_core.models import (
    Customer,
    Opportunity,
    Pipeline,
    PipelineStage,
    Product,
    Role,
    Task,
    Team,
    Tenant,
    User,
)
from crm_core.models.segments import Segment, SegmentSharing
from crm_ui.navigation import pages_for
from tests.e2e.conftest import (
    SIDEWAYS_SCROLLERS,
    TABLES_DRAWN,
    Server,
    actor_of,
    log_in,
    prepare_database,
    screenshot,
    serving,
    watched_page,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e
TIMEOUT = 45_000
WIDTHS = (1280, 390)

ALLOWED = frozenset({
    # brand and product names, formats and protocols a Chinese interface writes in Latin letters
    "Kestrel", "CRM", "SLA", "CSV", "XLSX", "Excel", "WPS", "API", "UTF", "GBK", "GB18030", "BOM", "Tab", "PNG", "ZIP",
    "zip", "JSON", "HTML", "URL", "HTTP", "HTTPS", "https", "http", "SKU", "RFM", "AUC", "UTC", "ID", "Data",
    "Docs", "Great", "Expectations", "GX", "Webhook", "Webhooks", "Standard", "POST", "ping", "Redis", "SQLite",
    "PostgreSQL", "MariaDB", "Huey", "Streamlit", "Chromium", "vip", "VIP", "CNY", "USD", "MB", "KB", "GB", "AM",
    "PM", "Markdown", "crontab", "cron", "python", "crm_core", "init", "worker", "score", "train", "apply",
    "segments", "snapshot", "mailto", "tel", "Enter", "Bearer", "Authorization",
    # the System page's backup command (a command is typed as written) and the platform it names
    "backup", "create", "verify", "Kubernetes", "CronJob",
    # the Mail page's protocols and the setting it names
    "SMTP", "STARTTLS", "IMAP", "TLS", "CRM_SECRET_KEY",
    # the language box is labelled in both languages, so that anyone can find it
    "Language",
})
WORD = re.compile(r"[A-Za-z][A-Za-z_]+")

ZH_TENANT = "红隼贸易"
ZH_TEAMS = {"East": "华东", "West": "华西"}
ZH_STAGES = {"Lead": "线索", "Qualified": "已确认", "Proposal": "方案", "Negotiation": "谈判", "Won": "赢单",
             "Lost": "输单"}
HOSTILE = ("红隼 ![图](http://tracker.example/p.png) [点击](http://phish.example) :red[红色] **加粗** "
           "<img src=x onerror=alert(1)>")
HOSTILE_WORDS = set(WORD.findall(HOSTILE))  # data, not interface text
# what the hostile values would become if anything rendered them as Markdown or HTML
RENDERED_FROM_DATA = """() => [
  ...[...document.querySelectorAll('img')].filter(img => /tracker\\.example|^x$/.test(img.getAttribute('src') || ''))
     .map(img => 'img ' + img.getAttribute('src')),
  ...[...document.querySelectorAll('a')].filter(a => (a.getAttribute('href') || '').includes('phish.example'))
     .map(a => 'link ' + a.getAttribute('href')),
  ...[...document.querySelectorAll('strong, b, span, em')]
     .filter(el => ['加粗', '红色'].includes(el.textContent.trim()))
     .map(el => el.tagName.toLowerCase() + ' ' + el.textContent.trim()),
]"""
ZH_USERS = {"Mia Manager": "王经理", "Rita Rep": "李销售", "Tom Teammate": "张同事", "Fay Faraway": "赵远方",
            "Ann Analyst": "钱分析"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The host over a world whose data is Chinese, every user preferring 中文."""
    prepared = prepare_database(tmp_path_factory, "zh-walk")
    world = prepared.world
    with prepared.db.system_transaction("zh walk world") as session:
        for tenant in session.scalars(select(Tenant)):
            tenant.name = ZH_TENANT if tenant.id == world.admin.tenant_id else "贝塔公司"
        for team in session.scalars(select(Team)):
            team.name = ZH_TEAMS.get(team.name, team.name)
            team.region = team.name
        for user in session.scalars(select(User)):
            user.full_name = ZH_USERS.get(user.full_name, "管理员")
            user.language = "zh-CN"
        for pipeline in session.scalars(select(Pipeline)):
            pipeline.name = "默认销售流程"
        for stage in session.scalars(select(PipelineStage)):
            stage.name = ZH_STAGES.get(stage.name, stage.name)
        for number, customer in enumerate(session.scalars(select(Customer).order_by(Customer.id))):
            customer.name = ["张三科技有限公司", "北京红星贸易", "上海浦江物流"][number % 3]
            customer.email = f"kehu{number}@example.cn"
        customer_ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
        tenant_id = world.admin.tenant_id
        stages = {stage.name: stage for stage in session.scalars(
            select(PipelineStage).where(PipelineStage.tenant_id == tenant_id))}
        session.add(Product(tenant_id=tenant_id, sku="KX1", name="红隼专业版", unit_price=Decimal("6800")))
        today = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        for deal_name, stage_name, amount in (("年度合同", "谈判", "128000"), ("试点项目", "线索", "9800"),
                                              ("续约", "赢单", "56000")):
            session.add(Opportunity(
                tenant_id=tenant_id, customer_id=customer_ids[0], owner_id=world.rep.user_id,
                pipeline_id=stages[stage_name].pipeline_id, stage_id=stages[stage_name].id, name=deal_name,
                amount=Decimal(amount), currency="CNY", expected_close_date=today.date(),
                closed_at=today if stage_name == "赢单" else None,
            ))
        session.add(Task(tenant_id=tenant_id, title="回访客户", assignee_id=world.rep.user_id,
                         customer_id=customer_ids[0], due_at=today - dt.timedelta(days=1), status="open"))
        # hostile values in every kind of name the pages show (issue 19)
        hostile = session.get(Customer, customer_ids[1])
        assert hostile is not None
        hostile.name, hostile.industry, hostile.tags = HOSTILE, HOSTILE[:80], "**加粗**,:red[红色]"
        session.add(Product(tenant_id=tenant_id, sku="HOSTILE1", name=HOSTILE, unit_price=Decimal("1")))
        session.add(Opportunity(
            tenant_id=tenant_id, customer_id=customer_ids[1], owner_id=hostile.owner_id or world.rep.user_id,
            pipeline_id=stages["方案"].pipeline_id, stage_id=stages["方案"].id, name=HOSTILE,
            amount=Decimal("100"), currency="CNY", expected_close_date=today.date(),
        ))
        session.add(Task(tenant_id=tenant_id, title=HOSTILE, assignee_id=world.rep.user_id,
                         customer_id=customer_ids[1], due_at=today, status="open"))
        session.add(Segment(tenant_id=tenant_id, name=HOSTILE[:120], description=HOSTILE,
                            conditions={"match": "all", "conditions": []}, owner_id=world.manager.user_id,
                            sharing=SegmentSharing.TENANT))
    with serving(prepared) as running:
        yield running


def log_in_chinese(page: object, server: Server, username: str) -> None:
    """Log in on the Chinese login form (the browser asks for zh-CN)."""
    page.goto(server.url)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name=t("login.username", "zh-CN")).fill(username)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name=t("login.password", "zh-CN")).fill(PASSWORD)  # type: ignore[attr-defined]
    page.get_by_role("button", name=t("login.submit", "zh-CN")).click()  # type: ignore[attr-defined]
    page.get_by_role("button", name=t("login.logout", "zh-CN")).wait_for(timeout=TIMEOUT)  # type: ignore[attr-defined]


def wait_until_settled(page: object) -> None:
    """The script has finished its run and no element of an earlier run is left on the page."""
    page.wait_for_function(  # type: ignore[attr-defined]
        """() => {
          const app = document.querySelector('[data-testid="stApp"]');
          const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
          return app && app.getAttribute('data-test-script-state') === 'notRunning'
            && !document.querySelector('[data-stale="true"]') && document.querySelector('h1')
            && charts.every(chart => chart.querySelector('.main-svg'));  // plotly has drawn
        }""",
        timeout=TIMEOUT,
    )


def open_from_menu(page: object, title: str, url_path: str, *, default: bool = False) -> None:
    """Click ``title`` in the menu (the session stays the same) and wait for that page's run.

    The role's ``default`` page (the first of its menu) lives at the app's root, not at its own path.
    """
    nav = page.locator('[data-testid="stSidebarNav"]')  # type: ignore[attr-defined]
    link = nav.get_by_role("link", name=title, exact=True)
    assert link.is_visible(), f"{title} is not visible in the menu"  # no "View more" hides it
    for _ in range(3):  # a click that lands during the run after login is dropped: click again
        link.click()
        try:
            where = "" if default else re.escape(url_path)
            page.wait_for_url(re.compile(rf"/{where}(\?.*)?$"), timeout=10_000)  # type: ignore[attr-defined]
            break
        except Exception:
            continue
    wait_until_settled(page)


# what a reader sees: rendered text (icon ligatures such as "expand_more" are pictures, not words),
# the generated text of ::before/::after, the hints of empty boxes, and tooltips of visible elements
SHOWN_TEXT = """() => {
  const texts = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const element = node.parentElement;
    if (!element || element.closest('[data-testid="stIconMaterial"], script, style, noscript')) continue;
    if (!element.checkVisibility({opacityProperty: true, visibilityProperty: true})) continue;
    if (parseFloat(getComputedStyle(element).fontSize) === 0) continue;  // written over (see app.py)
    texts.push(node.textContent);
  }
  for (const element of document.querySelectorAll('body *')) {
    for (const pseudo of ['::before', '::after']) {
      const content = getComputedStyle(element, pseudo).content;
      // icon fonts draw escaped private-use glyphs ("\\f0bb"): only plain generated text counts
      if (content && content.startsWith('"') && !content.includes('\\\\')) texts.push(JSON.parse(content));
    }
  }
  for (const input of document.querySelectorAll('input, textarea')) {
    if (input.checkVisibility() && input.placeholder && !input.value) texts.push(input.placeholder);
  }
  for (const element of document.querySelectorAll('[title]')) {
    if (element.tagName !== 'IFRAME' && element.checkVisibility()) texts.push(element.getAttribute('title'));
  }
  return texts.join('\\n');
}"""
URL_OR_PATH = re.compile(r"\S*[/@]\S*|\{\w+\}")  # addresses, paths and template fields ({name})


def english_words(text: str, data_words: set[str]) -> list[str]:
    """Latin words in ``text`` that are neither allowed names nor the world's data (usernames, e-mails)."""
    text = URL_OR_PATH.sub(" ", text)  # /api/docs, name@example.cn and {name} are not prose
    return sorted({word for word in WORD.findall(text) if word not in ALLOWED and word not in data_words})


@pytest.mark.parametrize("role", [Role.ADMIN, Role.MANAGER, Role.REP, Role.ANALYST])
def test_every_page_of_every_role_reads_in_chinese(server: Server, browser, role: Role) -> None:  # type: ignore[no-untyped-def]
    actor = actor_of(server.world, role)
    data_words = set(WORD.findall(" ".join(
        [actor.username, "example", "cn", "kehu", *(user.username for user in _users(server))])))
    data_words |= HOSTILE_WORDS
    watched = watched_page(browser, server, viewport={"width": WIDTHS[0], "height": 1000}, locale="zh-CN")
    context, page = watched.context, watched.page
    log_in_chinese(page, server, actor.username)
    found: dict[str, list[str]] = {}
    rendered: dict[str, list[str]] = {}
    sideways: dict[str, list[str]] = {}
    wait_until_settled(page)
    for index, spec in enumerate(pages_for(role)):
        open_from_menu(page, t(spec.title_key, "zh-CN"), spec.url_path, default=index == 0)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1000 if width > 500 else 844})
            wait_until_settled(page)
            screenshot(page, f"zh-walk-{role.value}-{spec.url_path}-{width}")
            shown = page.evaluate(SHOWN_TEXT)
            words = english_words(shown, data_words)
            if words:
                found[f"{spec.url_path}@{width}"] = [in_context(word, shown) for word in words]
            if from_data := page.evaluate(RENDERED_FROM_DATA) + watched.violations():
                rendered[f"{spec.url_path}@{width}"] = from_data
            if width < 500 and (spec.section_key == "nav.section.admin" or spec.url_path in ("macros", "jobs")):
                # an admin page on a phone: cards, not tables that scroll sideways (test_phone_admin, in English)
                page.wait_for_function(TABLES_DRAWN, timeout=TIMEOUT)
                if scrolling := page.evaluate(SIDEWAYS_SCROLLERS):
                    sideways[spec.url_path] = scrolling
        page.set_viewport_size({"width": WIDTHS[0], "height": 1000})
    context.close()
    assert not rendered, f"data rendered as markup, or the policy refused something: {rendered}"
    assert watched.outside == [], f"requests outside the app: {watched.outside}"
    assert not sideways, f"sideways scrolling at 390 px: {sideways}"
    report = "\n".join(f"{where}: {' | '.join(words)}" for where, words in found.items())
    assert not found, f"English on {len(found)} page views:\n{report}"


@pytest.mark.parametrize("role", [Role.ADMIN, Role.REP])
def test_every_page_shows_the_hostile_names_as_text_in_english(  # type: ignore[no-untyped-def]
    server: Server, browser, role: Role
) -> None:
    """The same walk in English, one width, as the admin (every page) and a rep (the rep's own pages and
    records); the Chinese walk above covers every role: the hostile names stay text, nothing loads from outside."""
    from crm_core.services import auth

    actor = actor_of(server.world, role)
    auth.set_language(server.db, actor.username, "en")
    watched = watched_page(browser, server, viewport={"width": WIDTHS[0], "height": 1000}, locale="en-US")
    context, page = watched.context, watched.page
    rendered: dict[str, list[str]] = {}
    try:
        log_in(page, server, actor.username)
        wait_until_settled(page)
        for index, spec in enumerate(pages_for(role)):
            open_from_menu(page, t(spec.title_key, "en"), spec.url_path, default=index == 0)
            if from_data := page.evaluate(RENDERED_FROM_DATA) + watched.violations():
                rendered[spec.url_path] = from_data
        shown = page.evaluate(SHOWN_TEXT)
    finally:
        auth.set_language(server.db, actor.username, "zh-CN")
        context.close()
    assert not rendered, f"data rendered as markup, or the policy refused something: {rendered}"
    assert watched.outside == [], f"requests outside the app: {watched.outside}"
    assert shown  # the last page was drawn


def in_context(word: str, text: str) -> str:
    """``word`` with a little of the text around it, to find it on the page."""
    match = re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", text)
    start = match.start() if match else 0
    return f"{word} in {text[max(0, start - 25):start + len(word) + 25]!r}"


def _users(server: Server) -> list[User]:
    with server.db.system_session("test") as session:
        return list(session.scalars(select(User)))
