"""Demo data generator: one or more demo tenants with realistic, related CRM records.

Speed is the point: a million customers with every related table load into SQLite in
well under five minutes. So nothing here builds one ORM object per row. Every column
is drawn as a numpy array up front (Faker only fills small name pools, which are then
combined by index), primary keys are assigned here (max(id)+1…), and rows go to the
database through the raw DBAPI cursor in chunks: ``executemany`` on SQLite and
MariaDB, ``COPY`` on PostgreSQL. Only the handful of setup rows (tenant, pipeline,
teams, users) use the ORM, inside the same transaction, so a failed run leaves nothing.

Determinism: the same seed gives the same rows. All dates are relative to
:data:`REFERENCE_DATE` (or the ``today`` argument), never to the wall clock, and every
random draw comes from one ``numpy.random.default_rng(seed)`` in a fixed order.

Lifecycle stages are derived from the generated records (see :func:`lifecycle_stages`):
``customer`` when a deal was won or a non-cancelled order placed within the tenant's
churn window (180 days), or when an earlier buyer was contacted within it; ``churned``
when an earlier buyer was not contacted within it; ``intent`` when the customer has an
open deal; ``prospect`` otherwise.

Cases span the last two years; about 40% of the resolved and closed ones carry the customer's CSAT
rating (:func:`_case_ratings`: mostly good, a slow case more often bad, some with a comment, now and
then in the tenant's other language), so the service dashboard's CSAT has a history.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from faker import Faker
from sqlalchemy import Connection, func, select, update
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.db import Database, run_catalog_ddl
from crm_core.demo_marketing import Customers, marketing_story
from crm_core.fulltext import fulltext_indexes, index_rows_from, insert_triggers_dropped
from crm_core.models import (
    AuditEvent,
    Base,
    PipelineStage,
    Role,
    StageKind,
    Team,
    Tenant,
    User,
)
from crm_core.models.pool import PoolRule
from crm_core.partitions import ensure_partitions
from crm_core.rules import regions
from crm_core.rules.contact_details import company_key, store_tags
from crm_core.services.auth import hash_password
from crm_core.services.tenants import add_default_pipeline

DEMO_PASSWORD = "Kestrel-demo-2026"  # documented in the README; demo tenants only
REFERENCE_DATE = dt.date(2026, 11, 1)
DEMO_SLUG = "demo"
CHUNK_ROWS = 50_000
CHURN_WINDOW_DAYS = 180  # the Tenant.churn_window_days default

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoProfile:
    """How much history each customer gets: the standard demo, or issue 15's scale set (per 10M customers
    30M activities and 5M audit events, beside the 3M deals and 3M orders both profiles draw)."""

    activities_per_customer: float = 1.0
    audit_events_per_customer: float = 0.0  # the load's own event only; the app writes the rest as it is used


PROFILES = {"standard": DemoProfile(), "scale": DemoProfile(activities_per_customer=3.0, audit_events_per_customer=0.5)}

_DAY = 86_400
HISTORY_START = -3 * 365 * _DAY - _DAY  # the tenants' founding: no generated row is older
_NULL = np.iinfo(np.int64).min  # "no timestamp" in the int64 second arrays


@dataclass(frozen=True)
class DemoSummary:
    """How many rows one :func:`generate_demo` call wrote, and how long it took."""

    tenants: int
    users: int
    customers: int
    contacts: int
    opportunities: int
    opportunity_stage_changes: int
    orders: int
    order_lines: int
    activities: int
    tasks: int
    cases: int
    products: int
    campaigns: int
    seconds: float
    case_ratings: int = 0  # CSAT ratings of solved cases
    campaign_members: int = 0  # the marketing story (crm_core.demo_marketing)
    marketing_messages: int = 0
    marketing_events: int = 0
    consent_records: int = 0
    audit_events: int = 0  # issue 15's scale profile (the load's own event aside)

    def as_dict(self) -> dict[str, int | float]:
        """The counts and the duration as a plain dict (for the CLI and logs)."""
        return asdict(self)


# --- locale texts -------------------------------------------------------------------
# Small hand-written pools: Faker has no CRM vocabulary, and a fixed list keeps the
# generated text stable across Faker releases.

_TEXTS: dict[str, dict[str, Any]] = {
    "en": {
        "tenant": "Kestrel Demo",
        "currency": "USD",
        "teams": [("Sales East", "East"), ("Sales North", "North"), ("Sales South", "South")],
        "industries": [
            "Software", "Manufacturing", "Retail", "Healthcare", "Finance", "Education",
            "Logistics", "Construction", "Energy", "Media", "Hospitality", "Agriculture",
            "Automotive", "Telecommunications", "Professional services",
        ],
        "sources": ["web", "referral", "event", "cold call", "partner", "advertising", "social media"],
        "tags": [
            "vip", "key-account", "newsletter", "partner", "trade-show", "upsell",
            "at-risk", "smb", "enterprise", "public-sector",
        ],
        "company_words": [
            "Logistics", "Analytics", "Foods", "Systems", "Consulting", "Manufacturing", "Labs",
            "Energy", "Health", "Media", "Capital", "Robotics", "Textiles", "Construction",
            "Software", "Trading", "Pharma", "Motors", "Design", "Networks", "Solutions",
            "Industries", "Partners", "Retail", "Marine", "Security", "Electric", "Materials",
            "Outfitters", "Brewing", "Instruments", "Dynamics", "Ventures", "Supply", "Studios",
        ],
        "company_suffixes": ["Inc", "LLC", "Ltd", "Group", "Co", "Corp", "PLC", "Holdings"],
        "titles": [
            "CEO", "CFO", "CTO", "Purchasing Manager", "Sales Director", "Operations Manager",
            "IT Manager", "Office Manager", "Head of Marketing", "Procurement Specialist",
            "Project Manager", "Founder",
        ],
        "deal_words": [
            "new licence", "renewal", "expansion", "pilot", "upgrade", "annual contract",
            "implementation", "support plan",
        ],
        "deal_separator": " - ",
        "lost_reasons": [
            "Price too high", "Chose a competitor", "No budget this year", "Project cancelled",
            "No decision", "Missing feature", "Timing not right",
        ],
        "activities": {
            "call": [
                "Called to discuss pricing", "Follow-up call about the proposal",
                "Intro call with purchasing", "Checked in on the rollout", "Left a voicemail",
            ],
            "meeting": [
                "Product demo with the team", "Quarterly business review",
                "Kick-off meeting", "Negotiation meeting on terms",
            ],
            "email": [
                "Sent the quote", "Sent product brochure", "Answered questions by email",
                "Sent contract draft", "Shared case studies",
            ],
            "visit": ["On-site visit", "Visited the warehouse", "Met the management on site"],
            "note": [
                "Budget approved for next quarter", "Decision maker is the CFO",
                "Interested in the enterprise plan", "Asked for a discount", "Prefers email contact",
            ],
        },
        "tasks": [
            "Follow up with {name}", "Send proposal to {name}", "Call {name} about renewal",
            "Prepare demo for {name}", "Check payment from {name}", "Update contract for {name}",
        ],
        "case_subjects": [
            "Cannot log in", "Invoice question", "Delivery delayed", "Feature request",
            "Data export fails", "Wrong quantity delivered", "Request for training",
            "Password reset", "Integration error", "Billing address change",
        ],
        "case_description": "Customer reported: {subject}. Please investigate and reply.",
        # CSAT comments a customer leaves with their rating (good / bad)
        "csat_comments": {
            "good": ["Quick and friendly, thank you!", "Solved on the first call.",
                     "Thanks, the corrected invoice arrived.", "Very patient support, much appreciated."],
            "bad": ["It took far too long to get an answer.", "I had to explain the problem three times.",
                    "Still not fixed properly.", "Nobody called me back as promised."],
        },
        "products": (
            [
                "Kestrel CRM", "Kestrel Analytics", "Kestrel Service Desk", "Kestrel Marketing",
                "Kestrel Mobile", "Data Connector", "Onboarding Package", "Training Day",
                "Premium Support", "API Access",
            ],
            ["Starter", "Standard", "Professional", "Enterprise", "Add-on"],
            " ",
        ),
        "campaigns": [
            ("Spring webinar series", "webinar"), ("Autumn trade show", "event"),
            ("Monthly newsletter", "email"), ("Partner referral drive", "partner"),
            ("Social media launch", "social"),
        ],
    },
    "zh": {
        "tenant": "红隼演示公司",
        "currency": "CNY",
        "teams": [("华东销售部", "华东"), ("华北销售部", "华北"), ("华南销售部", "华南")],
        "industries": [
            "软件", "制造业", "零售", "医疗健康", "金融", "教育", "物流", "建筑", "能源",
            "文化传媒", "酒店餐饮", "农业", "汽车", "通信", "专业服务",
        ],
        "sources": ["官网", "转介绍", "展会", "电话陌拜", "渠道合作", "广告", "社交媒体"],
        "tags": ["重点客户", "VIP", "老客户", "展会", "渠道", "高意向", "政府", "中小企业", "大客户", "待回访"],
        "company_words": [
            "科技", "信息技术", "网络科技", "电子", "贸易", "物流", "医疗器械", "食品",
            "新材料", "环保科技", "建筑工程", "文化传媒", "教育科技", "生物科技",
            "机械设备", "汽车配件", "咨询", "实业", "软件", "智能制造",
        ],
        "company_suffixes": ["有限公司", "有限公司", "有限公司", "股份有限公司", "有限责任公司"],
        "brand_chars": list(
            "鸿睿泰华信达盛通博元创恒联宇星海天金瑞嘉新正安德富源立隆兴明光远航云峰"
            "志诚和佳禾晨华腾飞凯越顺锦昊辰卓讯"
        ),
        "titles": [
            "总经理", "财务总监", "技术总监", "采购经理", "销售总监", "运营经理",
            "IT经理", "行政主管", "市场部负责人", "采购专员", "项目经理", "创始人",
        ],
        "deal_words": ["新签合同", "续约", "增购", "试点项目", "升级", "年度框架协议", "实施项目", "维保服务"],
        "deal_separator": "-",
        "lost_reasons": [
            "价格过高", "选择了竞争对手", "今年没有预算", "项目取消", "迟迟未决策", "功能不满足", "时机不合适",
        ],
        "activities": {
            "call": [
                "电话沟通报价事宜", "电话跟进方案反馈", "与采购部电话初步沟通", "电话回访上线情况",
                "电话未接通，已留言",
            ],
            "meeting": ["为客户团队演示产品", "季度业务回顾会议", "项目启动会", "商务条款谈判会议"],
            "email": ["已发送报价单", "已发送产品资料", "邮件答复客户问题", "已发送合同草稿", "分享了成功案例"],
            "visit": ["上门拜访", "参观客户仓库", "现场拜访客户管理层"],
            "note": ["下季度预算已批", "决策人是财务总监", "对企业版感兴趣", "客户要求折扣", "客户偏好邮件联系"],
        },
        "tasks": [
            "跟进{name}", "给{name}发送方案", "致电{name}商谈续约", "为{name}准备演示", "核对{name}的回款",
            "更新{name}的合同",
        ],
        "case_subjects": [
            "无法登录", "发票问题", "发货延迟", "功能需求", "数据导出失败",
            "到货数量不符", "申请培训", "重置密码", "接口对接报错", "变更开票地址",
        ],
        "case_description": "客户反馈：{subject}。请尽快处理并回复客户。",
        "csat_comments": {
            "good": ["处理很及时，谢谢！", "客服很耐心，问题一次解决。", "发票已更正，感谢。", "服务态度很好。"],
            "bad": ["等了太久才有回复。", "问题说了好几遍才明白。", "问题还没有彻底解决。", "说好回电话却没人联系我。"],
        },
        "products": (
            ["红隼CRM", "红隼数据分析", "红隼客服工单", "红隼营销自动化", "红隼移动版",
             "数据接口", "实施服务", "培训课程", "高级支持", "API调用包"],
            ["入门版", "标准版", "专业版", "企业版", "增值包"],
            "",
        ),
        "campaigns": [
            ("春季线上研讨会", "webinar"), ("秋季行业展会", "event"), ("月度电子期刊", "email"),
            ("渠道伙伴推荐计划", "partner"), ("社交媒体推广", "social"),
        ],
    },
}

_ACTIVITY_TYPES = ["call", "meeting", "email", "visit", "note"]
_ACTIVITY_WEIGHTS = [0.35, 0.15, 0.25, 0.10, 0.15]
_CN_MOBILE_PREFIXES = [130, 131, 132, 135, 136, 137, 138, 139, 150, 151, 152, 158, 159, 177, 186, 188, 189]


# --- helpers: columns as arrays, formatted chunk by chunk ---------------------------------

Column = Any  # np.ndarray | list | Callable[[int, int], list] | a constant


def _materialise(column: Column, start: int, end: int) -> Any:
    """The values of ``column`` for rows start..end as an iterable of Python objects."""
    if isinstance(column, np.ndarray):
        return column[start:end].tolist()
    if isinstance(column, list):
        return column[start:end]
    if callable(column):
        return column(start, end)
    return itertools.repeat(column, end - start)


class _Clock:
    """Turns int64 seconds relative to the reference midnight into stored strings.

    Formatting 10^6 datetimes with strftime is slow; day and time-of-day strings are
    cached and concatenated instead. SQLite keeps SQLAlchemy's own text format (with
    microseconds) so string comparisons made by the ORM's queries line up.
    """

    def __init__(self, reference: dt.date, *, sqlite: bool) -> None:
        self.reference = dt.datetime(reference.year, reference.month, reference.day)
        self.first_day = -4000
        self._days = [
            (reference + dt.timedelta(days=offset)).isoformat()
            for offset in range(self.first_day, 1500)
        ]
        fraction = ".000000" if sqlite else ""
        self._times = [
            f" {second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}{fraction}"
            for second in range(_DAY)
        ]

    def to_datetime(self, seconds: int) -> dt.datetime:
        """The naive datetime of a relative second count."""
        return self.reference + dt.timedelta(seconds=seconds)

    def timestamps(self, seconds: np.ndarray) -> Callable[[int, int], list[str | None]]:
        """A column producer formatting ``seconds`` (``_NULL`` → NULL)."""

        def produce(start: int, end: int) -> list[str | None]:
            chunk = seconds[start:end]
            null = chunk == _NULL
            safe = np.where(null, 0, chunk)
            days = np.floor_divide(safe, _DAY)
            tod = (safe - days * _DAY).tolist()
            day_index = (days - self.first_day).tolist()
            day_strings, time_strings = self._days, self._times
            out: list[str | None] = [
                day_strings[d] + time_strings[t] for d, t in zip(day_index, tod, strict=True)
            ]
            for position in np.flatnonzero(null).tolist():
                out[position] = None
            return out

        return produce

    def dates(self, day_offsets: np.ndarray) -> Callable[[int, int], list[str]]:
        """A column producer formatting day offsets as ISO dates."""

        def produce(start: int, end: int) -> list[str]:
            day_strings = self._days
            return [day_strings[d - self.first_day] for d in day_offsets[start:end].tolist()]

        return produce


def _money(cents: np.ndarray) -> Callable[[int, int], list[str]]:
    """A column producer turning integer cents into exact 2-decimal strings."""

    def produce(start: int, end: int) -> list[str]:
        return [f"{c // 100}.{c % 100:02d}" for c in cents[start:end].tolist()]

    return produce


@dataclass(frozen=True)
class _StageHistory:
    """One row per stage change: the deal (index), its step, the stages and the time."""

    deal: np.ndarray
    step: np.ndarray
    from_stage: np.ndarray
    to_stage: np.ndarray
    changed: np.ndarray
    lost_from: np.ndarray
    """Per deal: the open stage a lost deal was lost from (meaningless for the others)."""


def _stage_history(
    rng: np.random.Generator,
    setup: Any,
    stage_index: np.ndarray,
    deal_kind: np.ndarray,
    open_positions: np.ndarray,
    open_weights: np.ndarray,
    started: np.ndarray,
    ended: np.ndarray,
) -> _StageHistory:
    """Each deal's way through the pipeline, as the deal form would have recorded it.

    A deal is created in the first open stage and moves one stage at a time: an open deal up
    to its current stage, a won deal through every open stage, a lost one up to a stage drawn
    like the open deals' (most are lost early) and then to lost. The moves are spread evenly
    from its creation to its close (or last update), so the funnel knows where each lost deal
    was lost and the deal's history is not empty.
    """
    n_open = len(open_positions)
    lost_rank = rng.choice(n_open, len(stage_index), p=open_weights / open_weights.sum())
    open_rank = np.searchsorted(open_positions, stage_index)
    last_open_rank = np.select(
        [deal_kind == StageKind.WON.value, deal_kind == StageKind.LOST.value], [n_open - 1, lost_rank],
        default=open_rank,
    )
    closed = deal_kind != StageKind.OPEN.value
    steps = last_open_rank + 1 + closed
    deal = np.repeat(np.arange(len(stage_index)), steps)
    step = np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)
    closing = closed[deal] & (step == steps[deal] - 1)
    stage_ids = np.asarray(setup.stage_ids, dtype=np.int64)
    to_position = np.where(closing, stage_index[deal], open_positions[np.minimum(step, n_open - 1)])
    from_position = open_positions[np.clip(step - 1, 0, n_open - 1)]
    span = np.maximum(ended - started, 0)[deal]
    changed = started[deal] + span * step // np.maximum(steps[deal] - 1, 1)
    lost_from = stage_ids[open_positions[lost_rank]]
    return _StageHistory(deal, step, stage_ids[from_position], stage_ids[to_position], changed, lost_from)


def _ids_or_null(ids: np.ndarray, valid: np.ndarray) -> Callable[[int, int], list[int | None]]:
    """A column producer of foreign keys, NULL where ``valid`` is False."""

    def produce(start: int, end: int) -> list[int | None]:
        return [
            value if ok else None
            for value, ok in zip(ids[start:end].tolist(), valid[start:end].tolist(), strict=True)
        ]

    return produce


def _choose(
    rng: np.random.Generator, pool: Sequence[Any], size: int, p: Sequence[float] | None = None
) -> np.ndarray:
    """An object array of ``size`` picks from ``pool`` (optionally weighted)."""
    values = np.empty(len(pool), dtype=object)
    values[:] = list(pool)
    if p is None:
        return values[rng.integers(0, len(pool), size)]
    weights = np.asarray(p, dtype=float)
    return values[rng.choice(len(pool), size=size, p=weights / weights.sum())]


def _uniform_between(rng: np.random.Generator, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Integer seconds drawn uniformly in [low, high] element-wise."""
    span = np.maximum(high - low, 0)
    return low + (rng.random(low.shape[0]) * (span + 1)).astype(np.int64).clip(0, span)


def _business_hours(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """Move each time to a random second between 08:00 and 19:00 of the same day."""
    days = np.floor_divide(seconds, _DAY)
    return days * _DAY + rng.integers(8 * 3600, 19 * 3600, seconds.shape[0])


def _first_index_per(keys: np.ndarray, size: int) -> np.ndarray:
    """For each key 0..size-1 the position of its first occurrence in ``keys`` (-1 if none)."""
    first = np.full(size, -1, dtype=np.int64)
    unique, position = np.unique(keys, return_index=True)
    first[unique] = position
    return first


def lifecycle_stages(
    *,
    size: int,
    deal_customer: np.ndarray,
    deal_kind: np.ndarray,
    deal_closed: np.ndarray,
    order_customer: np.ndarray,
    order_counts: np.ndarray,
    order_time: np.ndarray,
    activity_customer: np.ndarray,
    activity_time: np.ndarray,
    cutoff: int,
) -> np.ndarray:
    """Each customer's lifecycle stage from its deals, orders and activities (vectorised).

    ``deal_kind`` holds open/won/lost; ``order_counts`` is True for orders that count as a
    sale (not cancelled); times are relative seconds and ``cutoff`` the start of the churn
    window. Rules, first match wins: a sale (won deal or counted order) inside the window
    → customer; an older sale and an activity inside the window → customer; an older sale
    only → churned; an open deal → intent; otherwise prospect.
    """
    won = deal_kind == StageKind.WON.value
    recent = np.zeros(size, dtype=bool)
    bought = np.zeros(size, dtype=bool)
    active = np.zeros(size, dtype=bool)
    open_deal = np.zeros(size, dtype=bool)
    recent[deal_customer[won & (deal_closed >= cutoff)]] = True
    recent[order_customer[order_counts & (order_time >= cutoff)]] = True
    bought[deal_customer[won]] = True
    bought[order_customer[order_counts]] = True
    active[activity_customer[activity_time >= cutoff]] = True
    open_deal[deal_customer[deal_kind == StageKind.OPEN.value]] = True
    return np.select(
        [recent, bought & active, bought, open_deal],
        ["customer", "customer", "churned", "intent"],
        default="prospect",
    ).astype(object)


# --- name pools ---------------------------------------------------------------------------


class _Pools:
    """A few thousand Faker values per kind, drawn once and combined by index."""

    def __init__(self, locale: str, seed: int) -> None:
        fake = Faker(locale)
        fake.seed_instance(seed)
        self.zh = locale.lower().startswith("zh")

        def unique(producer: Callable[[], str], count: int) -> list[str]:
            # dict, not set: set order depends on string hashing and would break determinism
            return list(dict.fromkeys(producer() for _ in range(count)))

        self.last_names = unique(fake.last_name, 3000)
        self.first_names = unique(fake.first_name, 3000)
        self.user_names = [name for name in unique(fake.user_name, 2000) if name.isascii() and name]
        self.domains = unique(fake.free_email_domain, 200) + unique(fake.domain_name, 400)
        if self.zh:
            self.cities = [
                city for city in unique(getattr(fake, "city_name", fake.city), 2000) if len(city) <= 4
            ]
            self.regions = unique(fake.province, 500)
            # some of Faker's prefixes already end in 公司 or 国际, which doubles up before 有限公司
            self.brands = [
                brand for brand in unique(fake.company_prefix, 1000) if "公司" not in brand and "国际" not in brand
            ]
        else:
            self.cities = unique(fake.city, 1000)
            self.regions = unique(getattr(fake, "state", fake.city), 500)
            self.brands = []


@functools.lru_cache(maxsize=4)
def _pools(locale: str, seed: int) -> _Pools:
    """The pools for ``locale`` and ``seed`` (cached: they are read-only and cost ~0.5 s to draw)."""
    return _Pools(locale, seed)


def _chinese_given_names(rng: np.random.Generator, pools: _Pools, size: int) -> np.ndarray:
    """Given names: 40 % from Faker's list, the rest two single-character names joined."""
    given = np.empty(len(pools.first_names), dtype=object)
    given[:] = pools.first_names
    singles = np.asarray([name for name in pools.first_names if len(name) == 1] or ["伟"], dtype=object)
    picked = given[rng.integers(0, len(given), size)]
    paired = singles[rng.integers(0, len(singles), size)] + singles[rng.integers(0, len(singles), size)]
    return np.where(rng.random(size) < 0.4, picked, paired)


def _person_names(rng: np.random.Generator, pools: _Pools, size: int) -> np.ndarray:
    """``size`` person names: 张伟 style for Chinese, "First Last" otherwise."""
    last = _choose(rng, pools.last_names, size)
    if pools.zh:
        return last + _chinese_given_names(rng, pools, size)
    first = _choose(rng, pools.first_names, size)
    return first + " " + last


def _company_names(rng: np.random.Generator, pools: _Pools, texts: dict[str, Any], size: int) -> np.ndarray:
    """``size`` company names combined from pools so that few repeat."""
    if pools.zh:
        # 上海 + 鸿睿 + 科技 + 有限公司: city, a two-character brand (or Faker's), line of business
        chars = np.asarray(texts["brand_chars"], dtype=object)
        brand = chars[rng.integers(0, len(chars), size)] + chars[rng.integers(0, len(chars), size)]
        brand = np.where(rng.random(size) < 0.3, _choose(rng, pools.brands, size), brand)
        city = _choose(rng, pools.cities, size)
        word = _choose(rng, texts["company_words"], size)
        suffix = _choose(rng, texts["company_suffixes"], size)
        return city + brand + word + suffix
    first = _choose(rng, pools.last_names, size)
    second = _choose(rng, pools.last_names, size)
    city = _choose(rng, pools.cities, size)
    word = _choose(rng, texts["company_words"], size)
    suffix = _choose(rng, texts["company_suffixes"], size)
    pattern = rng.choice(4, size=size, p=[0.45, 0.2, 0.2, 0.15])
    return np.select(
        [pattern == 0, pattern == 1, pattern == 2],
        [
            first + " " + word + " " + suffix,  # Harris Logistics LLC
            first + " & " + second + " " + word,  # Harris & Chen Analytics
            city + " " + word + " " + suffix,  # Springfield Foods Inc
        ],
        default=first + "-" + second + " " + suffix,
    ).astype(object)


def _emails(
    rng: np.random.Generator, pools: _Pools, size: int, present: float
) -> tuple[np.ndarray, np.ndarray]:
    """(email, lower-cased email) pairs; about ``1 - present`` of them NULL, some in mixed case."""
    users = _choose(rng, pools.user_names, size)
    number = rng.integers(1, 1000, size).astype(str).astype(object)
    local = np.where(rng.random(size) < 0.5, users + number, users)
    address = (local + "@" + _choose(rng, pools.domains, size)).astype(str)
    shout = rng.random(size) < 0.2  # people type Capitalised addresses; the normalised copy is lower case
    raw = np.where(shout, np.char.capitalize(address), address).astype(object)
    normalized = np.char.lower(address).astype(object)
    missing = rng.random(size) >= present
    raw[missing] = None
    normalized[missing] = None
    return raw, normalized


def _identities(region: np.ndarray, is_company: np.ndarray, zh: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(province code, city code, the area a company's credit code is registered in) per customer, for zh.

    The province is the one the region names (Faker's provinces), the city the province's first;
    three companies in ten have their credit code on file (computing a check character costs ~30 µs).
    """
    size = region.shape[0]
    empty = np.full(size, None, dtype=object)
    if not zh:
        return empty, empty.copy(), empty.copy()
    provinces: dict[Any, tuple[str | None, str | None]] = {}
    for text in dict.fromkeys(region.tolist()):
        province = regions.read_address(text).province_code if isinstance(text, str) else ""
        first_city = regions.cities(province)[0].code if province and regions.cities(province) else None
        provinces[text] = (province or None, first_city)
    province_code = np.array([provinces[text][0] for text in region.tolist()], dtype=object)
    city_code = np.array([provinces[text][1] for text in region.tolist()], dtype=object)
    # a generator of its own: the demo's main stream (and so every other value) stays as it was
    on_file = np.random.default_rng(size).random(size) < 0.3
    area = city_code.copy()
    area[~(is_company & on_file)] = None
    return province_code, city_code, area


def _credit_code(index: int, area: str | None) -> str | None:
    """A valid, unique 统一社会信用代码 for the ``index``-th customer registered in ``area`` (else None)."""
    if not area:
        return None
    from stdnum.cn import uscc

    base = f"91{area}{index + 1:09d}"
    return base + str(uscc.calc_check_digit(base))


def _phones(rng: np.random.Generator, zh: bool, size: int, present: float) -> tuple[np.ndarray, np.ndarray]:
    """(phone as typed, digits-only form) pairs; Chinese mobile numbers for zh."""
    style = rng.integers(0, 3, size)
    if zh:
        prefix = rng.choice(_CN_MOBILE_PREFIXES, size)
        middle = rng.integers(0, 10_000, size)
        tail = rng.integers(0, 10_000, size)
        digits = [
            f"{p}{m:04d}{t:04d}" for p, m, t in zip(prefix.tolist(), middle.tolist(), tail.tolist(), strict=True)
        ]
        typed = [
            d if s == 0 else (f"{d[:3]} {d[3:7]} {d[7:]}" if s == 1 else "+86 " + d)
            for d, s in zip(digits, style.tolist(), strict=True)
        ]
        normal = ["+86" + d for d in digits]  # E.164, as rules.contact_details.normalise_phone stores it
    else:
        area = rng.integers(201, 990, size)
        exchange = rng.integers(200, 1000, size)
        line = rng.integers(0, 10_000, size)
        parts = zip(area.tolist(), exchange.tolist(), line.tolist(), style.tolist(), strict=True)
        typed, normal = [], []
        for a, e, n, s in parts:
            if s == 0:
                typed.append(f"({a}) {e}-{n:04d}")
                normal.append(f"{a}{e}{n:04d}")
            elif s == 1:
                typed.append(f"{a}-{e}-{n:04d}")
                normal.append(f"{a}{e}{n:04d}")
            else:
                typed.append(f"+1 {a} {e} {n:04d}")
                normal.append(f"+1{a}{e}{n:04d}")
    typed_array = np.asarray(typed, dtype=object)
    normal_array = np.asarray(normal, dtype=object)
    missing = rng.random(size) >= present
    typed_array[missing] = None
    normal_array[missing] = None
    return typed_array, normal_array


def _tag_strings(rng: np.random.Generator, tags: list[str], size: int) -> np.ndarray:
    """Stored tag strings (",a,b,"): 45 % none, the rest one to three tags."""
    singles = [store_tags([tag]) for tag in tags]
    pairs = [store_tags(list(pair)) for pair in itertools.combinations(tags, 2)]
    trios = [store_tags(list(trio)) for trio in itertools.combinations(tags[:6], 3)]
    weights = [45.0] + [30.0 / len(singles)] * len(singles) + [20.0 / len(pairs)] * len(pairs)
    weights += [5.0 / len(trios)] * len(trios)
    return _choose(rng, ["", *singles, *pairs, *trios], size, p=weights)


# --- the bulk writer -------------------------------------------------------------------------


class _BulkWriter:
    """Writes column arrays through the DBAPI cursor of ``connection``, chunk by chunk."""

    def __init__(self, connection: Connection, progress: Progress | None) -> None:
        self.connection = connection
        self.dialect = connection.dialect.name
        self.progress = progress
        self.quote = connection.dialect.identifier_preparer.quote
        self.first_ids: dict[str, int] = {}  # table → first id written by this load

    def next_id(self, table_name: str) -> int:
        """The first free primary key of ``table_name``."""
        table = Base.metadata.tables[table_name]
        return int(self.connection.scalar(select(func.coalesce(func.max(table.c.id), 0))) or 0) + 1

    def insert(self, table_name: str, size: int, columns: dict[str, Column]) -> None:
        """Insert ``size`` rows given as ``{column: values}``."""
        if size == 0:
            return
        table = Base.metadata.tables[table_name]
        unknown = set(columns) - set(table.c.keys())
        if unknown:
            raise KeyError(f"{table_name} has no column(s) {sorted(unknown)}")
        names = list(columns)
        column_list = ", ".join(self.quote(name) for name in names)
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            for start in range(0, size, CHUNK_ROWS):
                end = min(size, start + CHUNK_ROWS)
                rows = zip(*(_materialise(columns[name], start, end) for name in names), strict=False)
                if self.dialect == "postgresql":
                    # COPY is several times faster than even pipelined INSERTs on PostgreSQL
                    with cursor.copy(f"COPY {self.quote(table_name)} ({column_list}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marker = "?" if self.dialect == "sqlite" else "%s"
                    placeholders = ", ".join([marker] * len(names))
                    sql = f"INSERT INTO {self.quote(table_name)} ({column_list}) VALUES ({placeholders})"
                    cursor.executemany(sql, list(rows))
                if self.progress is not None:
                    self.progress(table_name, end, size)
        finally:
            cursor.close()
        self.first_ids.setdefault(table_name, int(np.min(columns["id"])))
        if self.dialect == "postgresql":
            # the sequence moves past these ids now, not at the end: an ORM row of the same table written
            # meanwhile (the load's own audit event) must not take one of them — a partitioned table's key
            # holds its partition column too, so the database would not refuse the duplicate id
            self.connection.exec_driver_sql(
                "SELECT setval(seq, GREATEST(%(last)s, COALESCE(pg_sequence_last_value(seq), 0)))"
                " FROM (SELECT pg_get_serial_sequence(%(table)s, 'id')::regclass AS seq) serial",
                {"table": table_name, "last": int(np.max(columns["id"]))})

    @contextmanager
    def indexes_deferred(self, table_names: Sequence[str], *, enabled: bool) -> Iterator[None]:
        """SQLite: build the secondary indexes and full-text indexes of ``table_names`` after the load.

        Building an index once over all keys is far cheaper than updating a dozen B-trees
        row by row, and one INSERT … SELECT into an external-content FTS5 table is cheaper
        than its insert trigger firing per row (1M customers: about a minute saved). DDL is
        transactional in SQLite, so a failed load rolls the indexes back with the rows.
        PostgreSQL defers its indexes and foreign keys (:meth:`_postgresql_checks_deferred`).
        """
        if enabled and self.dialect == "postgresql":
            with self._postgresql_checks_deferred(table_names):
                yield
            return
        if not enabled or self.dialect != "sqlite":
            yield
            return
        cursor = self.connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        marks = ", ".join("?" * len(table_names))
        # sql IS NULL skips the automatic indexes behind UNIQUE constraints (not droppable)
        indexes = cursor.execute(
            "SELECT name, sql FROM sqlite_master"
            f" WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({marks})",
            list(table_names),
        ).fetchall()
        full_text = fulltext_indexes(table_names)
        for name, _sql in indexes:
            cursor.execute(f"DROP INDEX {self.quote(name)}")
        with insert_triggers_dropped(cursor, full_text):
            yield
            steps = len(indexes) + len(full_text)
            for step, (_name, sql) in enumerate(indexes, start=1):
                cursor.execute(sql)
                if self.progress is not None:
                    self.progress("indexes", step, steps)
            for step, index in enumerate(full_text, start=len(indexes) + 1):
                if index.content_table in self.first_ids:
                    index_rows_from(cursor, index, self.first_ids[index.content_table])
                if self.progress is not None:
                    self.progress("indexes", step, steps)
        cursor.close()

    @contextmanager
    def _postgresql_checks_deferred(self, table_names: Sequence[str]) -> Iterator[None]:
        """PostgreSQL: drop the secondary indexes and the foreign keys of ``table_names`` for the load and create
        them after it, in the same transaction.

        COPY into a table with a dozen indexes (the customers' trigram and short-gram GIN indexes above all)
        updates each of them row by row, and each foreign key checks every row with a query of its own; one
        index build and one validating join per key at the end is several times cheaper (issue 15: 10M
        customers). Primary keys and unique constraints stay: the load relies on them. A partitioned table's
        index is created on the parent, which creates it on every partition.
        """
        run = self.connection.exec_driver_sql
        names = list(table_names)
        indexes = run(
            "SELECT index.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i"
            " JOIN pg_class index ON index.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE t.relname = ANY(%(tables)s) AND t.relnamespace = current_schema()::regnamespace"
            " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"
            " ORDER BY index.relname", {"tables": names}).all()
        foreign_keys = run(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid) FROM pg_constraint c"
            " JOIN pg_class t ON t.oid = c.conrelid"
            " WHERE t.relname = ANY(%(tables)s) AND t.relnamespace = current_schema()::regnamespace"
            " AND c.contype = 'f' AND c.conparentid = 0 ORDER BY 1, 2", {"tables": names}).all()
        for table, name, _definition in foreign_keys:
            run(f"ALTER TABLE {table} DROP CONSTRAINT {self.quote(name)}")
        for name, _definition in indexes:
            run(f"DROP INDEX {self.quote(name)}")
        yield
        # the index builds' sort memory, for this transaction only (the server's default is 64 MB)
        run("SET LOCAL maintenance_work_mem = '512MB'")
        steps = len(indexes) + len(foreign_keys)
        # a partitioned table's index definition reads ON ONLY (the parent alone): built whole, it recurses
        for step, (name, definition) in enumerate(indexes, start=1):
            run_catalog_ddl(self.connection, definition.replace(" ON ONLY ", " ON ", 1))
            if self.progress is not None:
                self.progress(f"indexes {name}", step, steps)
        # the rows' statistics before the keys are checked: with none, PostgreSQL checks each key by a nested loop
        # of index probes (10M customers: 4.4 min for activities' contact key alone) instead of one hash join
        for table in names:
            run(f"ANALYZE {self.quote(table)}")
        # each key is checked by one join of the whole table against its parent: with the server's 4 MB the hash of
        # 10M customers' keys spills to disk in batches
        run("SET LOCAL work_mem = '1GB'")
        for step, (table, name, definition) in enumerate(foreign_keys, start=len(indexes) + 1):
            run_catalog_ddl(self.connection, f"ALTER TABLE {table} ADD CONSTRAINT {self.quote(name)} {definition}")
            if self.progress is not None:
                self.progress(f"indexes {name}", step, steps)


DEFER_INDEXES_FROM = 50_000
"""A load of at least this many customers builds the secondary indexes (and on PostgreSQL the foreign keys) after
its rows rather than row by row."""


@contextmanager
def _load_connection(db: Database) -> Iterator[Connection]:
    """One transaction for the whole load (tuned for bulk writes on SQLite)."""
    if isinstance(db.bind, Connection):
        # a test's connection: stay inside its outer transaction
        with db.bind.begin_nested():
            yield db.bind
        return
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Only this connection, only for the load: a big page cache keeps the many
            # customer indexes in memory, and no fsync per commit; restored below.
            raw = connection.connection.driver_connection
            raw.execute("PRAGMA cache_size=-1000000")  # type: ignore[union-attr]
            raw.execute("PRAGMA synchronous=OFF")  # type: ignore[union-attr]
        try:
            with connection.begin():
                yield connection
        finally:
            if sqlite:
                raw.execute("PRAGMA synchronous=NORMAL")  # type: ignore[union-attr]
                raw.execute("PRAGMA cache_size=-2000")  # type: ignore[union-attr]


# --- the generator ---------------------------------------------------------------------------


@dataclass
class _TenantSetup:
    """The ids the bulk rows refer to."""

    tenant_id: int
    team_ids: np.ndarray
    team_manager_ids: np.ndarray
    rep_ids: np.ndarray
    rep_team_index: np.ndarray
    pipeline_id: int
    stage_ids: list[int]
    stage_kinds: list[str]
    user_count: int
    currency: str


def _suffix(index: int) -> str:
    return "" if index == 1 else f"-{index}"


def _usernames(index: int, customers: int) -> dict[str, list[str]]:
    """The demo usernames of tenant number ``index``, by kind."""
    suffix = _suffix(index)
    return {
        "admin": [f"demo.admin{suffix}"],
        "analyst": [f"demo.analyst{suffix}"],
        "managers": [f"demo.manager{suffix}", f"demo.manager.t2{suffix}", f"demo.manager.t3{suffix}"],
        "reps": [f"demo.rep{suffix}"]
        + [f"demo.rep.{r:03d}{suffix}" for r in range(1, _extra_rep_count(customers) + 1)],
    }


def _extra_rep_count(customers: int) -> int:
    """About one rep per 2,000 customers, at least 5 and at most 200."""
    return int(min(200, max(5, round(customers / 2000))))


def _setup_tenant(
    session: Session,
    *,
    index: int,
    customers: int,
    texts: dict[str, Any],
    zh: bool,
    locale: str,
    password_hash: str,
    people: np.ndarray,
    founded: dt.datetime,
) -> _TenantSetup:
    """Tenant, default pipeline, three teams and the demo users, through the ORM."""
    suffix = _suffix(index)
    name = texts["tenant"] if index == 1 else f"{texts['tenant']} {index}"
    currency = texts["currency"]
    stamps = {"created_at": founded, "updated_at": founded}
    tenant = Tenant(name=name, slug=DEMO_SLUG + suffix, default_currency=currency, **stamps)
    session.add(tenant)
    session.flush()
    pipeline = add_default_pipeline(session, tenant.id, locale=locale)
    teams = [Team(tenant_id=tenant.id, name=team, region=region, **stamps) for team, region in texts["teams"]]
    session.add_all(teams)
    session.flush()
    language = "zh-CN" if zh else "en"
    people_iter = iter(people.tolist())

    def user(username: str, role: Role, team: Team | None) -> User:
        account = User(
            tenant_id=tenant.id,
            username=username,
            full_name=next(people_iter),
            email=f"{username}@kestrel-demo.example",
            password_hash=password_hash,
            role=role.value,
            team_id=team.id if team else None,
            language=language,
            **stamps,
        )
        session.add(account)
        return account

    names = _usernames(index, customers)
    user(names["admin"][0], Role.ADMIN, None)
    user(names["analyst"][0], Role.ANALYST, None)
    managers = [user(name, Role.MANAGER, team) for name, team in zip(names["managers"], teams, strict=True)]
    # round-robin so every team has reps; demo.rep is the first member of team 1
    rep_team_index = [position % 3 for position in range(len(names["reps"]))]
    reps = [user(name, Role.REP, teams[team]) for name, team in zip(names["reps"], rep_team_index, strict=True)]
    session.flush()
    # teams.manager_id and users.team_id point at each other, so one side is set after
    # both exist: with a Core UPDATE, because an ORM one would bump the version of rows
    # created a moment ago (and the column's onupdate needs updated_at given explicitly).
    teams_table = Base.metadata.tables["teams"]
    for team, manager in zip(teams, managers, strict=True):
        session.connection().execute(
            update(teams_table)
            .where(teams_table.c.id == team.id)
            .values(manager_id=manager.id, updated_at=founded)
        )
    stages = session.scalars(
        select(PipelineStage).where(PipelineStage.pipeline_id == pipeline.id).order_by(PipelineStage.position)
    ).all()
    # the customer pool's default rule: half a year of silence returns a customer (the nightly job applies it)
    session.add(PoolRule(tenant_id=tenant.id, team_id=None, enabled=True, idle_days=180, reminder_days=7,
                         daily_claim_cap=20, cooldown_days=30, protected_stage_ids=[], **stamps))
    return _TenantSetup(
        tenant_id=tenant.id,
        team_ids=np.array([team.id for team in teams], dtype=np.int64),
        team_manager_ids=np.array([manager.id for manager in managers], dtype=np.int64),
        rep_ids=np.array([rep.id for rep in reps], dtype=np.int64),
        rep_team_index=np.array(rep_team_index, dtype=np.int64),
        pipeline_id=pipeline.id,
        stage_ids=[stage.id for stage in stages],
        stage_kinds=[stage.kind for stage in stages],
        user_count=2 + len(managers) + len(reps),
        currency=currency,
    )


def generate_demo(
    db: Database,
    *,
    customers: int,
    seed: int = 42,
    tenants: int = 1,
    locale: str = "en_US",
    progress: Progress | None = None,
    today: dt.date | None = None,
    profile: str = "standard",
) -> DemoSummary:
    """Create ``tenants`` demo tenants with ``customers`` customers each and their related records.

    Raises ValueError when a demo tenant or demo username already exists. ``today``
    anchors all dates (default :data:`REFERENCE_DATE`, so a seed always gives the same rows).
    """
    if customers < 0 or tenants < 1:
        raise ValueError("customers must be >= 0 and tenants >= 1")
    if profile not in PROFILES:
        raise ValueError(f"unknown demo profile {profile!r} (one of {', '.join(PROFILES)})")
    started = time.perf_counter()
    zh = locale.lower().startswith("zh")
    texts = _TEXTS["zh" if zh else "en"]
    reference = today or REFERENCE_DATE
    slugs = [DEMO_SLUG + _suffix(k) for k in range(1, tenants + 1)]
    usernames = [
        name for k in range(1, tenants + 1) for names in _usernames(k, customers).values() for name in names
    ]
    with db.system_session("demo data check") as check:
        taken = check.scalars(select(Tenant.slug).where(Tenant.slug.in_(slugs))).all()
        taken_users = check.scalars(select(User.username).where(User.username.in_(usernames))).all()
    if taken or taken_users:
        clash = [f"tenant {slug}" for slug in taken] + [f"user {name}" for name in taken_users[:3]]
        more = len(taken_users) - 3
        raise ValueError(
            f"demo data already exists ({', '.join(clash)}{f' and {more} more users' if more > 0 else ''}); "
            "use a fresh database"
        )
    rng = np.random.default_rng(seed)
    pools = _pools(locale, seed)
    password_hash = hash_password(DEMO_PASSWORD)  # bcrypt is slow: one hash shared by every demo user
    totals: dict[str, int] = dict.fromkeys(
        ["users", "customers", "contacts", "opportunities", "opportunity_stage_changes", "orders", "order_lines",
         "activities", "tasks", "cases", "case_ratings", "products", "campaigns", "campaign_members",
         "marketing_messages", "marketing_events", "consent_records", "audit_events"],
        0,
    )
    bulk_tables = [
        "customers", "contacts", "opportunities", "opportunity_stage_changes", "orders", "order_lines",
        "activities", "tasks", "cases", "audit_events",
    ]
    with _load_connection(db) as connection:
        clock = _Clock(reference, sqlite=connection.dialect.name == "sqlite")
        # PostgreSQL: a month of partitions for every month of the history (three years back, the customers'
        # creation), or its rows would all land in the DEFAULT partition (decision 0055)
        ensure_partitions(connection, today=reference, since=clock.to_datetime(HISTORY_START).date())
        writer = _BulkWriter(connection, progress)
        with (
            Session(bind=connection, expire_on_commit=False) as session,
            writer.indexes_deferred(bulk_tables, enabled=customers * tenants >= DEFER_INDEXES_FROM),
        ):
            access.bind_system(session, "demo data")
            for index in range(1, tenants + 1):
                setup = _setup_tenant(
                    session,
                    index=index,
                    customers=customers,
                    texts=texts,
                    zh=zh,
                    locale=locale,
                    password_hash=password_hash,
                    people=_person_names(rng, pools, _extra_rep_count(customers) + 10),
                    founded=clock.to_datetime(HISTORY_START),
                )
                counts = {"users": setup.user_count}
                counts |= _generate_tenant(writer, clock, rng, pools, texts, setup, customers, PROFILES[profile])
                # the bulk rows bypass the ORM and so the audit trail: one event records the load
                session.add(
                    AuditEvent(
                        tenant_id=setup.tenant_id,
                        action="demo_generate",
                        entity="tenant",
                        entity_id=setup.tenant_id,
                        changes={key: [None, value] for key, value in counts.items()}
                        | {"seed": [None, seed], "locale": [None, locale]},
                    )
                )
                session.flush()
                for key, value in counts.items():
                    totals[key] += value
            # Ends the session's part only: on a fresh connection the outer transaction is
            # committed by _load_connection; inside a test's transaction this releases the
            # session's savepoint instead of rolling it (and the bulk rows) back on close.
            session.commit()
    return DemoSummary(tenants=tenants, seconds=round(time.perf_counter() - started, 3), **totals)


def _pick_by_group(rng: np.random.Generator, groups: np.ndarray, pools: dict[str, list[str]]) -> np.ndarray:
    """For each row a random text from the pool of its group (e.g. a summary per activity type)."""
    out = np.empty(groups.shape[0], dtype=object)
    for group, pool in pools.items():
        rows = np.flatnonzero(groups == group)
        out[rows] = _choose(rng, pool, rows.shape[0])
    return out


def _random_child(
    rng: np.random.Generator,
    parent: np.ndarray,
    first: np.ndarray,
    counts: np.ndarray,
    child_ids: np.ndarray,
    share: float,
) -> Callable[[int, int], list[int | None]]:
    """For rows pointing at ``parent`` customers: one of that customer's children (grouped ids), or NULL.

    ``first``/``counts`` describe where each customer's children start in ``child_ids`` (they
    are sorted by customer); ``share`` of the rows that could get one do.
    """
    size = parent.shape[0]
    has = (first[parent] >= 0) & (rng.random(size) < share)
    offset = (rng.random(size) * np.maximum(counts[parent], 1)).astype(np.int64)
    position = np.where(has, first[parent] + offset, 0)
    ids = child_ids[position] if child_ids.shape[0] else np.zeros(size, dtype=np.int64)
    return _ids_or_null(ids, has)


@dataclass(frozen=True)
class _AuditSources:
    """The generated records whose history the demo's audit trail tells (customers, stage moves, activities)."""

    customer_ids: np.ndarray
    customer_created: np.ndarray
    customer_worker: np.ndarray
    customer_names: np.ndarray
    deal_ids: np.ndarray  # per stage change
    stage_changed: np.ndarray
    from_stage: np.ndarray
    to_stage: np.ndarray
    stage_step: np.ndarray
    stage_worker: np.ndarray
    stage_ids: np.ndarray
    activity_ids: np.ndarray
    activity_time: np.ndarray
    activity_type: np.ndarray
    activity_customer: np.ndarray
    activity_author: np.ndarray


# of the demo's audit events: customers created, deals moved a stage, activities logged (the rest)
AUDIT_SHARES = (0.3, 0.4)
_AUDIT_CUSTOMER, _AUDIT_STAGE, _AUDIT_ACTIVITY = 0, 1, 2


def _write_audit_trail(writer: _BulkWriter, clock: _Clock, rng: np.random.Generator, size: int, first_id: int,
                       tenant_id: int, sources: _AuditSources) -> None:
    """``size`` audit events as the app writes them (``{column: [old, new]}``, by the user who did it) for a
    sample of the generated records: a customer's creation, a deal's move to its next stage (not its creation,
    which the customer's row stands for), an activity logged. Chronological, like the ids the app gives."""
    moves = np.flatnonzero(sources.stage_step > 0)
    counts = [min(round(share * size), limit) for share, limit in
              zip(AUDIT_SHARES, (len(sources.customer_ids), len(moves)), strict=True)]
    counts.append(min(size - sum(counts), len(sources.activity_ids)))
    picks = [np.sort(rng.choice(limit, count, replace=False)) if count else np.zeros(0, dtype=np.int64)
             for limit, count in zip((len(sources.customer_ids), len(moves), len(sources.activity_ids)), counts,
                                     strict=True)]
    picks[_AUDIT_STAGE] = moves[picks[_AUDIT_STAGE]]
    source = np.concatenate([np.full(count, kind, dtype=np.int8) for kind, count in enumerate(counts)])
    row = np.concatenate(picks)
    occurred = np.concatenate([sources.customer_created[picks[0]], sources.stage_changed[picks[1]],
                               sources.activity_time[picks[2]]])
    actor = np.concatenate([sources.customer_worker[picks[0]], sources.stage_worker[picks[1]],
                            sources.activity_author[picks[2]]])
    order = np.argsort(occurred, kind="stable")
    source, row, occurred, actor = source[order], row[order], occurred[order], actor[order]
    total = len(source)
    entity = np.array(["customer", "opportunity", "activity"], dtype=object)[source]
    action = np.where(source == _AUDIT_STAGE, "update", "create").astype(object)
    entity_id = np.select([source == _AUDIT_CUSTOMER, source == _AUDIT_STAGE],
                          [sources.customer_ids[np.minimum(row, len(sources.customer_ids) - 1)],
                           sources.deal_ids[np.minimum(row, max(len(sources.deal_ids) - 1, 0))]
                           if len(sources.deal_ids) else 0],
                          default=sources.activity_ids[np.minimum(row, max(len(sources.activity_ids) - 1, 0))]
                          if len(sources.activity_ids) else 0)

    def changes(start: int, end: int) -> list[str]:
        out = []
        for kind, index, who in zip(source[start:end].tolist(), row[start:end].tolist(), actor[start:end].tolist(),
                                    strict=True):
            if kind == _AUDIT_CUSTOMER:
                value = {"name": [None, str(sources.customer_names[index])[:200]], "owner_id": [None, who]}
            elif kind == _AUDIT_STAGE:
                value = {"stage_id": [int(sources.from_stage[index]), int(sources.to_stage[index])]}
            else:
                value = {"type": [None, str(sources.activity_type[index])],
                         "customer_id": [None, int(sources.activity_customer[index])]}
            out.append(json.dumps(value, ensure_ascii=False))
        return out

    stamps = clock.timestamps(occurred)
    writer.insert("audit_events", total, {
        "id": np.arange(first_id, first_id + total, dtype=np.int64),
        "tenant_id": tenant_id,
        "actor_id": actor,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "changes": changes,
        "occurred_at": stamps,
        "created_at": stamps,
        "updated_at": stamps,
    })


@dataclass(frozen=True)
class _Ratings:
    """The CSAT ratings drawn for one tenant's solved cases: which cases (row positions), score, comment, when."""

    rows: np.ndarray
    scores: np.ndarray
    comments: list[str | None]
    rated_at: np.ndarray

    @property
    def size(self) -> int:
        """How many ratings."""
        return int(self.rows.shape[0])


RATED_SHARE = 0.4  # customers who click one of the two links in the resolution mail
BAD_SHARE = {False: 0.06, True: 0.2}  # of a case resolved within five days, of a slower one
COMMENTED_SHARE = 0.3
OTHER_LANGUAGE_SHARE = 0.15  # a customer who writes in the tenant's other language


def _case_ratings(rng: np.random.Generator, texts: dict[str, Any], solved: np.ndarray, opened: np.ndarray,
                  resolved: np.ndarray, now: int) -> _Ratings:
    """Ratings of ``solved`` cases (row positions): about 40% are rated, mostly good, a slow case more often bad;
    a third leave a comment, now and then in the other language; rated minutes to three days after resolution."""
    rows = solved[rng.random(solved.shape[0]) < RATED_SHARE]
    size = rows.shape[0]
    slow = (resolved[rows] - opened[rows]) > 5 * _DAY
    bad = rng.random(size) < np.where(slow, BAD_SHARE[True], BAD_SHARE[False])
    scores = np.where(bad, "bad", "good").astype(object)
    commented = rng.random(size) < COMMENTED_SHARE
    other_texts = _TEXTS["en"] if texts is _TEXTS["zh"] else _TEXTS["zh"]
    foreign = rng.random(size) < OTHER_LANGUAGE_SHARE
    picks = rng.integers(0, 4, size)
    comments: list[str | None] = [
        (other_texts if far else texts)["csat_comments"][score][pick] if wrote else None
        for score, wrote, far, pick in zip(scores.tolist(), commented.tolist(), foreign.tolist(), picks.tolist(),
                                           strict=True)
    ]
    rated_at = np.minimum(resolved[rows] + rng.integers(10 * 60, 3 * _DAY, size), now)
    return _Ratings(rows=rows, scores=scores, comments=comments, rated_at=rated_at)


def _generate_tenant(
    writer: _BulkWriter,
    clock: _Clock,
    rng: np.random.Generator,
    pools: _Pools,
    texts: dict[str, Any],
    setup: _TenantSetup,
    n: int,
    profile: DemoProfile,
) -> dict[str, int]:
    """Draw every bulk table of one tenant, derive the lifecycle stages, insert; returns the row counts.

    Everything is drawn before anything is written because a customer's lifecycle stage
    depends on its deals, orders and activities, while those rows reference the customer.
    """
    tenant_id = setup.tenant_id
    currency = setup.currency
    now = -60  # one minute before the reference midnight: nothing lies in the future
    two_years_ago = now - 730 * _DAY
    sizes = {
        "contacts": round(0.6 * n),
        "opportunities": round(0.3 * n),
        "orders": round(0.3 * n),
        "activities": round(profile.activities_per_customer * n),
        "tasks": round(0.15 * n),
        "cases": round(0.05 * n),
    }
    base = {
        table: writer.next_id(table)
        for table in ("customers", "contacts", "products", "opportunities", "opportunity_stage_changes", "orders",
                      "order_lines", "activities", "tasks", "cases", "case_ratings", "campaigns", "audit_events")
    }

    # --- customers: who they are and who owns them ---
    customer_ids = np.arange(base["customers"], base["customers"] + n, dtype=np.int64)
    is_company = rng.random(n) < 0.8
    owned = rng.random(n) < 0.9
    owner_rep = rng.integers(0, len(setup.rep_ids), n)
    owner_ids = setup.rep_ids[owner_rep]
    team_index = np.where(owned, setup.rep_team_index[owner_rep], rng.integers(0, 3, n))
    team_ids = setup.team_ids[team_index]
    # who works an unowned customer (logs its activities, gets its tasks): a rep of its team
    worker = owner_ids.copy()
    for position in range(3):
        members = setup.rep_ids[setup.rep_team_index == position]
        unowned = np.flatnonzero(~owned & (team_index == position))
        worker[unowned] = members[rng.integers(0, len(members), unowned.shape[0])]
    created = -rng.integers(1, 3 * 365, n) * _DAY + rng.integers(8 * 3600, 19 * 3600, n)
    names = np.where(is_company, _company_names(rng, pools, texts, n), _person_names(rng, pools, n))
    industry = _choose(rng, texts["industries"], n)
    industry[~is_company & (rng.random(n) < 0.7)] = None  # private persons rarely have one
    region = _choose(rng, pools.regions, n)
    source = _choose(rng, texts["sources"], n, p=[30, 20, 15, 12, 10, 8, 5])
    tags = _tag_strings(rng, texts["tags"], n)
    email, email_normalized = _emails(rng, pools, n, present=0.85)
    phone, phone_normalized = _phones(rng, pools.zh, n, present=0.9)
    province_code, city_code, credit_code = _identities(region, is_company, pools.zh)

    # --- contacts, grouped by customer so "a contact of customer c" is a slice ---
    c_count = sizes["contacts"]
    weight = np.where(is_company, 1.0, 0.25)
    contact_customer = (
        np.sort(rng.choice(n, size=c_count, p=weight / weight.sum())) if c_count else np.zeros(0, np.int64)
    )
    contact_ids = np.arange(base["contacts"], base["contacts"] + c_count, dtype=np.int64)
    first_contact = _first_index_per(contact_customer, n)
    contacts_per_customer = np.bincount(contact_customer, minlength=n)
    is_primary = np.zeros(c_count, dtype=bool)
    is_primary[first_contact[first_contact >= 0]] = True
    contact_created = np.minimum(
        _uniform_between(rng, created[contact_customer], created[contact_customer] + 30 * _DAY), now
    )
    contact_email, contact_email_normalized = _emails(rng, pools, c_count, present=0.8)
    contact_phone, contact_phone_normalized = _phones(rng, pools.zh, c_count, present=0.85)
    contact_names = _person_names(rng, pools, c_count)
    contact_titles = _choose(rng, texts["titles"], c_count)

    # --- opportunities across the pipeline's stages ---
    history_rng = rng.spawn(1)[0]  # its own stream: the rows drawn below stay what they were
    m = sizes["opportunities"]
    deal_ids = np.arange(base["opportunities"], base["opportunities"] + m, dtype=np.int64)
    deal_customer = rng.integers(0, max(n, 1), m)
    kinds = setup.stage_kinds
    open_positions = np.array([i for i, kind in enumerate(kinds) if kind == StageKind.OPEN.value])
    open_weights = np.arange(len(open_positions), 0, -1, dtype=float)  # most open deals sit early
    amount = np.exp(rng.normal(np.log(40_000), 0.9, m)).clip(5_000, 500_000)
    outcome = rng.random(m)
    closes = outcome < 0.40
    # won or lost is not a coin toss, so the deal-win scorer has something real to learn:
    # smaller deals and referred customers close more often, cold calls less (≈ 60% won overall)
    source_effect = np.zeros(m)
    deal_source = source[deal_customer] if n else np.empty(0, dtype=object)
    for position, effect in ((1, 1.0), (0, 0.2), (3, -0.8)):
        source_effect[deal_source == texts["sources"][position]] = effect
    win_logit = 0.5 - 0.9 * (np.log(amount) - np.log(40_000)) + source_effect
    wins = rng.random(m) < 1.0 / (1.0 + np.exp(-win_logit))
    deal_kind = np.where(
        closes & wins,
        StageKind.WON.value,
        np.where(closes, StageKind.LOST.value, StageKind.OPEN.value),
    )
    stage_index = np.select(
        [deal_kind == StageKind.WON.value, deal_kind == StageKind.LOST.value],
        [kinds.index(StageKind.WON.value), kinds.index(StageKind.LOST.value)],
        default=open_positions[rng.choice(len(open_positions), m, p=open_weights / open_weights.sum())],
    )
    is_open = deal_kind == StageKind.OPEN.value
    customer_since = created[deal_customer]
    earliest_close = np.minimum(customer_since + 7 * _DAY, now)
    closed = _business_hours(rng, _uniform_between(rng, earliest_close, np.full(m, now)))
    closed = np.maximum(closed, customer_since)
    deal_created = np.where(
        is_open,
        _uniform_between(rng, customer_since, np.full(m, now)),
        np.maximum(customer_since, closed - rng.integers(7, 121, m) * _DAY),
    )
    deal_closed = np.where(is_open, _NULL, closed)
    expected_day = np.where(is_open, rng.integers(-30, 181, m), np.floor_divide(closed, _DAY))
    deal_updated = np.where(is_open, _uniform_between(rng, deal_created, np.full(m, now)), closed)
    deal_cents = (np.round(amount / 10) * 1000).astype(np.int64)  # whole tens, in cents
    manual = is_open & (rng.random(m) < 0.1)  # probability is mostly NULL: the stage's applies
    probability = rng.choice(np.arange(10, 95, 5), m)
    lost = deal_kind == StageKind.LOST.value
    lost_reason = _choose(rng, texts["lost_reasons"], m)
    lost_reason[~lost] = None
    deal_names = names[deal_customer] + texts["deal_separator"] + _choose(rng, texts["deal_words"], m)
    first_deal = _first_index_per(deal_customer, n)

    # --- products ---
    lines_pool, editions, joiner = texts["products"]
    catalogue = [line + joiner + edition for line in lines_pool for edition in editions]
    p_count = int(rng.integers(20, 51))
    product_names = [catalogue[i] for i in rng.permutation(len(catalogue))[:p_count].tolist()]
    list_price = np.exp(rng.normal(np.log(2_000), 1.0, p_count)).clip(50, 50_000)
    product_cents = (np.round(list_price / 10) * 1000).astype(np.int64)  # whole tens, in cents
    product_ids = np.arange(base["products"], base["products"] + p_count, dtype=np.int64)

    # --- orders: one per won deal, repeat orders of those customers, some direct sales ---
    o = sizes["orders"]
    won_positions = np.flatnonzero(deal_kind == StageKind.WON.value)
    linked = min(o, won_positions.shape[0])
    linked_deals = rng.permutation(won_positions)[:linked]
    rest = o - linked
    repeat = round(rest * 0.75) if won_positions.shape[0] else 0
    direct = rest - repeat
    repeat_deals = (
        won_positions[rng.integers(0, won_positions.shape[0], repeat)] if repeat else np.zeros(0, np.int64)
    )
    direct_customer = rng.integers(0, max(n, 1), direct)
    order_customer = np.concatenate([deal_customer[linked_deals], deal_customer[repeat_deals], direct_customer])
    ordered = np.concatenate(
        [
            np.minimum(closed[linked_deals] + rng.integers(0, 5 * _DAY, linked), now),
            _uniform_between(rng, closed[repeat_deals], np.full(repeat, now)),
            _uniform_between(rng, np.maximum(created[direct_customer], two_years_ago), np.full(direct, now)),
        ]
    )
    order_deal = np.concatenate([deal_ids[linked_deals], np.zeros(rest, dtype=np.int64)])
    has_deal = np.concatenate([np.ones(linked, dtype=bool), np.zeros(rest, dtype=bool)])
    chronological = np.argsort(ordered, kind="stable")  # order numbers grow with time
    order_customer, ordered = order_customer[chronological], ordered[chronological]
    order_deal, has_deal = order_deal[chronological], has_deal[chronological]
    order_ids = np.arange(base["orders"], base["orders"] + o, dtype=np.int64)
    age = now - ordered
    roll = rng.random(o)
    order_status = np.where(
        ~has_deal & (roll < 0.08),
        "cancelled",
        np.where(
            age > 30 * _DAY,
            np.where(roll < 0.9, "fulfilled", "confirmed"),
            np.where(roll < 0.75, "confirmed", "fulfilled"),
        ),
    ).astype(object)
    order_updated = np.where(
        order_status == "fulfilled", np.minimum(ordered + rng.integers(_DAY, 14 * _DAY, o), now), ordered
    )

    # --- order lines, about two per order; totals are the exact sum in cents ---
    per_order = np.clip(1 + rng.poisson(1.0, o), 1, 6)
    line_count = int(per_order.sum())
    line_order = np.repeat(np.arange(o), per_order)
    line_product = rng.integers(0, p_count, line_count)
    quantity = rng.choice([1, 2, 3, 4, 5, 10, 20], line_count, p=[0.4, 0.2, 0.12, 0.08, 0.1, 0.07, 0.03])
    discount = rng.choice([0, 5, 10], line_count, p=[0.7, 0.2, 0.1])
    line_cents = product_cents[line_product] * (100 - discount) // 100
    line_amount = quantity * line_cents
    starts = np.concatenate([[0], np.cumsum(per_order)[:-1]]).astype(np.int64)
    order_total = np.add.reduceat(line_amount, starts) if o else np.zeros(0, dtype=np.int64)

    # --- activities: the deal customers get more of them ---
    a = sizes["activities"]
    busy = (rng.random(a) < 0.4) & (m > 0)
    deal_side = deal_customer[rng.integers(0, m, a)] if m else np.zeros(a, dtype=np.int64)
    activity_customer = np.where(busy, deal_side, rng.integers(0, max(n, 1), a))
    since = np.maximum(created[activity_customer], two_years_ago)
    occurred = _business_hours(rng, _uniform_between(rng, since, np.full(a, now)))
    occurred = np.maximum(occurred, created[activity_customer])
    occurred = np.minimum(occurred, now)
    chronological = np.argsort(occurred, kind="stable")
    activity_customer, occurred = activity_customer[chronological], occurred[chronological]
    activity_type = _choose(rng, _ACTIVITY_TYPES, a, p=_ACTIVITY_WEIGHTS)
    summary = _pick_by_group(rng, activity_type, texts["activities"])
    activity_contact = _random_child(
        rng, activity_customer, first_contact, contacts_per_customer, contact_ids, 0.5
    )
    activity_deal = _random_child(rng, activity_customer, first_deal, np.ones(n, dtype=np.int64), deal_ids, 0.3)
    last_contacted = np.full(n, _NULL, dtype=np.int64)
    np.maximum.at(last_contacted, activity_customer, occurred)

    # --- tasks around the reference date, some overdue ---
    t = sizes["tasks"]
    task_customer = rng.integers(0, max(n, 1), t)
    due = rng.integers(-30, 31, t) * _DAY + rng.integers(8 * 3600, 19 * 3600, t)
    roll = rng.random(t)
    past = due < now
    task_status = np.where(
        past,
        np.where(roll < 0.6, "done", np.where(roll < 0.95, "open", "cancelled")),
        np.where(roll < 0.08, "done", "open"),
    ).astype(object)
    task_created = np.maximum(np.minimum(due, now) - rng.integers(3600, 14 * _DAY, t), created[task_customer])
    task_created = np.minimum(task_created, now)
    done = task_status == "done"
    latest_completion = np.maximum(np.minimum(due, now), task_created)
    completed = np.where(done, _uniform_between(rng, task_created, latest_completion), _NULL)
    task_updated = np.where(done, completed, task_created)
    assignee = worker[task_customer]
    creator = np.where(rng.random(t) < 0.8, assignee, setup.team_manager_ids[team_index[task_customer]])
    templates = _choose(rng, texts["tasks"], t)
    task_titles = [
        template.format(name=name)[:200]
        for template, name in zip(templates.tolist(), names[task_customer].tolist(), strict=True)
    ]
    task_priority = _choose(rng, ["low", "normal", "high"], t, p=[0.25, 0.55, 0.2])
    task_deal = _random_child(rng, task_customer, first_deal, np.ones(n, dtype=np.int64), deal_ids, 0.3)

    # --- cases, mostly from customers who bought something ---
    cs = sizes["cases"]
    from_orders = (rng.random(cs) < 0.7) & (o > 0)
    case_customer = np.where(
        from_orders, order_customer[rng.integers(0, max(o, 1), cs)] if o else 0, rng.integers(0, max(n, 1), cs)
    )
    opened = -rng.integers(1, 731, cs) * _DAY + rng.integers(8 * 3600, 19 * 3600, cs)  # two years of cases
    opened = np.maximum(opened, created[case_customer])
    opened = np.minimum(opened, now)
    case_status = _choose(rng, ["open", "pending", "resolved", "closed"], cs, p=[0.15, 0.15, 0.35, 0.35])
    solved = (case_status == "resolved") | (case_status == "closed")
    resolved = np.where(solved, np.minimum(opened + rng.integers(2 * 3600, 20 * _DAY, cs), now), _NULL)
    subjects = _choose(rng, texts["case_subjects"], cs)
    descriptions = [texts["case_description"].format(subject=subject) for subject in subjects.tolist()]
    case_contact = _random_child(rng, case_customer, first_contact, contacts_per_customer, contact_ids, 0.6)
    case_priority = _choose(rng, ["low", "normal", "high"], cs, p=[0.2, 0.6, 0.2])

    # --- the customers' derived columns ---
    stage = lifecycle_stages(
        size=n,
        deal_customer=deal_customer,
        deal_kind=deal_kind,
        deal_closed=deal_closed,
        order_customer=order_customer,
        order_counts=order_status != "cancelled",
        order_time=ordered,
        activity_customer=activity_customer,
        activity_time=occurred,
        cutoff=-CHURN_WINDOW_DAYS * _DAY,
    )
    follow_up = owned & (stage != "churned") & (rng.random(n) < 0.25)
    next_follow_up = np.where(
        follow_up, rng.integers(-7, 31, n) * _DAY + rng.integers(8 * 3600, 19 * 3600, n), _NULL
    )
    customer_updated = np.maximum(created, last_contacted)
    touched = rng.random(n) < 0.3
    edited = np.maximum(customer_updated, _uniform_between(rng, created, np.full(n, now)))
    customer_updated = np.where(touched, edited, customer_updated)

    # --- write, parents first ---
    founded = -3 * 365 * _DAY
    writer.insert(
        "customers",
        n,
        {
            "id": customer_ids,
            "tenant_id": tenant_id,
            "name": lambda s, e: [name[:200] for name in names[s:e].tolist()],
            "name_key": lambda s, e: [company_key(name[:200]) or None for name in names[s:e].tolist()],
            "kind": np.where(is_company, "company", "person").astype(object),
            "industry": industry,
            "region": region,
            "province_code": province_code,
            "city_code": city_code,
            "credit_code": lambda s, e: [_credit_code(i, credit_code[i]) for i in range(s, e)],
            "source": source,
            "owner_id": _ids_or_null(owner_ids, owned),
            "team_id": team_ids,
            "lifecycle_stage": stage,
            "tags": tags,
            "email": email,
            "email_normalized": email_normalized,
            "phone": phone,
            "phone_normalized": phone_normalized,
            "external_id": lambda s, e: [f"EXT-{i:07d}" for i in range(s + 1, e + 1)],
            "last_contacted_at": clock.timestamps(last_contacted),
            "next_follow_up_at": clock.timestamps(next_follow_up),
            "custom_fields": "{}",
            "archived_at": None,
            "created_at": clock.timestamps(created),
            "updated_at": clock.timestamps(customer_updated),
            "version": 1,
        },
    )
    writer.insert(
        "contacts",
        c_count,
        {
            "id": contact_ids,
            "tenant_id": tenant_id,
            "customer_id": customer_ids[contact_customer],
            "name": contact_names,
            "title": contact_titles,
            "email": contact_email,
            "email_normalized": contact_email_normalized,
            "phone": contact_phone,
            "phone_normalized": contact_phone_normalized,
            "is_primary": is_primary,
            "archived_at": None,
            "created_at": clock.timestamps(contact_created),
            "updated_at": clock.timestamps(contact_created),
            "version": 1,
        },
    )
    writer.insert(
        "products",
        p_count,
        {
            "id": product_ids,
            "tenant_id": tenant_id,
            "sku": [f"KST-{1001 + i}" for i in range(p_count)],
            "name": product_names,
            "unit_price": _money(product_cents),
            "currency": currency,
            "is_active": rng.random(p_count) < 0.9,
            "archived_at": None,
            "created_at": clock.timestamps(np.full(p_count, founded)),
            "updated_at": clock.timestamps(np.full(p_count, founded)),
            "version": 1,
        },
    )
    history = _stage_history(
        history_rng, setup, stage_index, deal_kind, open_positions, open_weights,
        deal_created, np.where(is_open, deal_updated, deal_closed),
    )
    writer.insert(
        "opportunities",
        m,
        {
            "id": deal_ids,
            "tenant_id": tenant_id,
            "customer_id": customer_ids[deal_customer],
            "owner_id": worker[deal_customer],
            "pipeline_id": setup.pipeline_id,
            "stage_id": np.asarray(setup.stage_ids, dtype=np.int64)[stage_index],
            "name": lambda s, e: [name[:200] for name in deal_names[s:e].tolist()],
            "amount": _money(deal_cents),
            "currency": currency,
            "probability": _ids_or_null(probability, manual),
            "expected_close_date": clock.dates(expected_day),
            "closed_at": clock.timestamps(deal_closed),
            "lost_reason": lost_reason,
            "lost_from_stage_id": _ids_or_null(history.lost_from, lost),
            "archived_at": None,
            "created_at": clock.timestamps(deal_created),
            "updated_at": clock.timestamps(deal_updated),
            "version": 1,
        },
    )
    h = len(history.deal)
    writer.insert(
        "opportunity_stage_changes",
        h,
        {
            "id": np.arange(base["opportunity_stage_changes"], base["opportunity_stage_changes"] + h, dtype=np.int64),
            "tenant_id": tenant_id,
            "opportunity_id": deal_ids[history.deal],
            "from_stage_id": _ids_or_null(history.from_stage, history.step > 0),
            "to_stage_id": history.to_stage,
            "changed_by_id": worker[deal_customer][history.deal],
            "changed_at": clock.timestamps(history.changed),
            "created_at": clock.timestamps(history.changed),
            "updated_at": clock.timestamps(history.changed),
        },
    )
    writer.insert(
        "orders",
        o,
        {
            "id": order_ids,
            "tenant_id": tenant_id,
            "customer_id": customer_ids[order_customer],
            "opportunity_id": _ids_or_null(order_deal, has_deal),
            "owner_id": worker[order_customer],
            # the customer's scope, as the database triggers would copy it (migration 0010)
            "customer_owner_id": _ids_or_null(owner_ids[order_customer], owned[order_customer]),
            "customer_team_id": team_ids[order_customer],
            "order_number": lambda s, e: [f"SO-{i:06d}" for i in range(s + 1, e + 1)],
            "status": order_status,
            "ordered_at": clock.timestamps(ordered),
            "total_amount": _money(order_total),
            "currency": currency,
            "archived_at": None,
            "created_at": clock.timestamps(ordered),
            "updated_at": clock.timestamps(order_updated),
            "version": 1,
        },
    )
    line_time = clock.timestamps(ordered[line_order])
    writer.insert(
        "order_lines",
        line_count,
        {
            "id": np.arange(base["order_lines"], base["order_lines"] + line_count, dtype=np.int64),
            "tenant_id": tenant_id,
            "order_id": order_ids[line_order],
            "product_id": product_ids[line_product],
            "quantity": quantity,
            "unit_price": _money(line_cents),
            "created_at": line_time,
            "updated_at": line_time,
        },
    )
    activity_time = clock.timestamps(occurred)
    writer.insert(
        "activities",
        a,
        {
            "id": np.arange(base["activities"], base["activities"] + a, dtype=np.int64),
            "tenant_id": tenant_id,
            "type": activity_type,
            "customer_id": customer_ids[activity_customer],
            "contact_id": activity_contact,
            "opportunity_id": activity_deal,
            "author_id": worker[activity_customer],
            "occurred_at": activity_time,
            "summary": summary,
            "created_at": activity_time,
            "updated_at": activity_time,
        },
    )
    writer.insert(
        "tasks",
        t,
        {
            "id": np.arange(base["tasks"], base["tasks"] + t, dtype=np.int64),
            "tenant_id": tenant_id,
            "title": task_titles,
            "assignee_id": assignee,
            "created_by_id": creator,
            "due_at": clock.timestamps(due),
            "status": task_status,
            "priority": task_priority,
            "customer_id": customer_ids[task_customer],
            "opportunity_id": task_deal,
            "completed_at": clock.timestamps(completed),
            "created_at": clock.timestamps(task_created),
            "updated_at": clock.timestamps(task_updated),
            "version": 1,
        },
    )
    writer.insert(
        "cases",
        cs,
        {
            "id": np.arange(base["cases"], base["cases"] + cs, dtype=np.int64),
            "tenant_id": tenant_id,
            "customer_id": customer_ids[case_customer],
            "contact_id": case_contact,
            "assignee_id": worker[case_customer],
            "subject": subjects,
            "description": descriptions,
            "status": case_status,
            "priority": case_priority,
            "opened_at": clock.timestamps(opened),
            "resolved_at": clock.timestamps(resolved),
            "created_at": clock.timestamps(opened),
            "updated_at": clock.timestamps(np.where(solved, resolved, opened)),
            "version": 1,
        },
    )
    ratings = _case_ratings(rng, texts, np.flatnonzero(solved), opened, resolved, now)
    writer.insert(
        "case_ratings",
        ratings.size,
        {
            "id": np.arange(base["case_ratings"], base["case_ratings"] + ratings.size, dtype=np.int64),
            "tenant_id": tenant_id,
            "case_id": np.arange(base["cases"], base["cases"] + cs, dtype=np.int64)[ratings.rows],
            "score": ratings.scores,
            "comment": ratings.comments,
            "rated_at": clock.timestamps(ratings.rated_at),
            "created_at": clock.timestamps(ratings.rated_at),
            "updated_at": clock.timestamps(ratings.rated_at),
        },
    )
    # the primary contact, when it has an email: whom the marketing story writes to (else the customer's own)
    has_email_contact = (first_contact >= 0) & (
        contact_email_normalized[np.maximum(first_contact, 0)] != None  # noqa: E711 - elementwise over objects
    ) if c_count else np.zeros(n, dtype=bool)
    campaign_names = [name for name, _ in texts["campaigns"]]
    start_day = np.array([-400, -200, -90, -20, 30], dtype=np.int64)
    end_day = start_day + rng.integers(30, 61, 5)
    # the sequence's words (services.campaigns): ended campaigns are stopped, current ones running
    campaign_status = np.where(end_day < 0, "stopped", np.where(start_day <= 0, "running", "planned"))
    campaign_created = (start_day - 30) * _DAY + 10 * 3600
    writer.insert(
        "campaigns",
        len(campaign_names),
        {
            "id": np.arange(base["campaigns"], base["campaigns"] + len(campaign_names), dtype=np.int64),
            "tenant_id": tenant_id,
            "name": campaign_names,
            "channel": [channel for _, channel in texts["campaigns"]],
            "status": campaign_status,
            "starts_on": clock.dates(start_day),
            "ends_on": clock.dates(end_day),
            "budget": _money((rng.integers(5, 200, 5) * 1000 * 100).astype(np.int64)),
            "created_at": clock.timestamps(campaign_created),
            "updated_at": clock.timestamps(campaign_created),
            "version": 1,
        },
    )
    marketing = marketing_story(
        writer.insert, writer.next_id,
        lambda seconds: clock.timestamps(np.array([seconds], dtype=np.int64))(0, 1)[0],
        rng.spawn(1)[0], tenant_id=tenant_id, zh=pools.zh, now=now,
        customers=Customers(
            ids=customer_ids, emails=email_normalized,
            contact_id=np.where(has_email_contact, contact_ids[np.maximum(first_contact, 0)], -1)
            if c_count else np.full(n, -1, dtype=np.int64),
            contact_email=np.asarray(
                np.where(has_email_contact, contact_email_normalized[np.maximum(first_contact, 0)], None)
                if c_count else np.full(n, None, dtype=object)),
            worker=worker, deal_customer=deal_customer, deal_kind=deal_kind, deal_created=deal_created,
            deal_closed=deal_closed,
        ),
    )
    audit = round(profile.audit_events_per_customer * n)
    if audit:  # drawn last: the rows above stay those of the standard profile
        _write_audit_trail(writer, clock, rng, audit, base["audit_events"], tenant_id, _AuditSources(
            customer_ids=customer_ids, customer_created=created, customer_worker=worker, customer_names=names,
            deal_ids=deal_ids[history.deal], stage_changed=history.changed, from_stage=history.from_stage,
            to_stage=history.to_stage, stage_step=history.step, stage_worker=worker[deal_customer][history.deal],
            stage_ids=np.asarray(setup.stage_ids, dtype=np.int64),
            activity_ids=np.arange(base["activities"], base["activities"] + a, dtype=np.int64),
            activity_time=occurred, activity_type=activity_type,
            activity_customer=customer_ids[activity_customer], activity_author=worker[activity_customer],
        ))
    return {
        "customers": n,
        "contacts": c_count,
        "opportunities": m,
        "opportunity_stage_changes": h,
        "orders": o,
        "order_lines": line_count,
        "activities": a,
        "tasks": t,
        "cases": cs,
        "case_ratings": ratings.size,
        "products": p_count,
        "campaigns": len(campaign_names) + marketing["campaigns"],
        "campaign_members": marketing["campaign_members"],
        "marketing_messages": marketing["marketing_messages"],
        "marketing_events": marketing["marketing_events"],
        "consent_records": marketing["consent_records"],
        "audit_events": audit,
    }
