"""What can be imported: the fields of each entity, their kinds, and the headers that suggest them.

One table per entity. ``kind`` says how a cell is read (text, email, phone, number, integer,
date, datetime, bool, choice, tags, or ``ref`` — a reference by natural key resolved in SQL).
``headers`` are the spellings (English and Chinese) that make the wizard suggest the field;
comparison ignores case, spaces, underscores and full-width forms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from crm_core.models import ActivityType, CustomerKind, LifecycleStage, OrderStatus, Priority, TaskStatus

ENTITIES = ["customers", "contacts", "products", "opportunities", "orders", "activities", "tasks"]
CURRENCIES = ["CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD", "TWD", "KRW", "AUD", "CAD", "CHF"]
CUSTOM_PREFIX = "custom:"


@dataclass(frozen=True)
class FieldSpec:
    """One importable field."""

    name: str
    kind: str = "text"
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    target: str | None = None  # for kind="ref": customer, product, owner, stage, contact
    headers: tuple[str, ...] = ()


def _values(enum_class: type) -> tuple[str, ...]:
    return tuple(member.value for member in enum_class)  # type: ignore[attr-defined]


OWNER_HEADERS = ("owner", "owner name", "sales rep", "assigned to", "负责人", "销售", "业务员", "归属人", "所有者")
CUSTOMER_REF_HEADERS = (
    "customer",
    "customer name",
    "company",
    "account",
    "account name",
    "客户",
    "客户名称",
    "公司",
    "公司名称",
)
EMAIL_HEADERS = ("email", "e-mail", "email address", "mail", "邮箱", "电子邮件", "电子邮箱", "邮件")
PHONE_HEADERS = (
    "phone",
    "telephone",
    "tel",
    "mobile",
    "phone number",
    "电话",
    "手机",
    "手机号",
    "联系电话",
    "电话号码",
)

FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    "customers": (
        FieldSpec(
            "name",
            required=True,
            max_length=200,
            headers=(
                "name",
                "customer name",
                "company",
                "company name",
                "account name",
                "customer",
                "客户名称",
                "客户",
                "名称",
                "公司名称",
                "公司",
                "客户名",
            ),
        ),
        FieldSpec(
            "kind",
            "choice",
            choices=_values(CustomerKind),
            headers=("kind", "type", "customer type", "类型", "客户类型"),
        ),
        FieldSpec("industry", max_length=80, headers=("industry", "sector", "行业", "所属行业")),
        FieldSpec(
            "region", max_length=80, headers=("region", "area", "city", "province", "地区", "区域", "城市", "省份")
        ),
        FieldSpec("source", max_length=80, headers=("source", "lead source", "channel", "来源", "客户来源", "渠道")),
        FieldSpec("owner", "ref", target="owner", headers=OWNER_HEADERS),
        FieldSpec(
            "lifecycle_stage",
            "choice",
            choices=_values(LifecycleStage),
            headers=("lifecycle stage", "stage", "status", "lifecycle", "阶段", "客户阶段", "生命周期", "状态"),
        ),
        FieldSpec("tags", "tags", max_length=500, headers=("tags", "labels", "标签")),
        FieldSpec("email", "email", max_length=254, headers=EMAIL_HEADERS),
        FieldSpec("phone", "phone", max_length=40, headers=PHONE_HEADERS),
        FieldSpec(
            "external_id",
            max_length=80,
            headers=(
                "external id",
                "id",
                "customer id",
                "crm id",
                "record id",
                "外部编号",
                "客户编号",
                "编号",
                "外部id",
            ),
        ),
    ),
    "contacts": (
        FieldSpec("customer", "ref", required=True, target="customer", headers=CUSTOMER_REF_HEADERS),
        FieldSpec(
            "name",
            required=True,
            max_length=120,
            headers=("name", "contact", "contact name", "full name", "联系人", "姓名", "联系人姓名"),
        ),
        FieldSpec("title", max_length=120, headers=("title", "job title", "position", "职位", "职务", "头衔")),
        FieldSpec("email", "email", max_length=254, headers=EMAIL_HEADERS),
        FieldSpec("phone", "phone", max_length=40, headers=PHONE_HEADERS),
        FieldSpec("is_primary", "bool", headers=("primary", "is primary", "main contact", "主要联系人", "首要联系人")),
    ),
    "products": (
        FieldSpec(
            "sku",
            required=True,
            max_length=64,
            headers=("sku", "code", "product code", "item code", "产品编号", "编码", "货号", "产品编码"),
        ),
        FieldSpec(
            "name",
            required=True,
            max_length=200,
            headers=("name", "product", "product name", "产品名称", "产品", "名称", "商品名称"),
        ),
        FieldSpec("unit_price", "number", headers=("unit price", "price", "list price", "单价", "价格", "标价")),
        FieldSpec("currency", "choice", choices=tuple(CURRENCIES), headers=("currency", "币种", "货币")),
        FieldSpec("is_active", "bool", headers=("active", "is active", "enabled", "启用", "是否启用", "在售")),
    ),
    "opportunities": (
        FieldSpec(
            "name",
            required=True,
            max_length=200,
            headers=("name", "deal", "deal name", "opportunity", "opportunity name", "商机名称", "商机", "名称"),
        ),
        FieldSpec("customer", "ref", required=True, target="customer", headers=CUSTOMER_REF_HEADERS),
        FieldSpec("owner", "ref", target="owner", headers=OWNER_HEADERS),
        FieldSpec(
            "stage",
            "ref",
            target="stage",
            headers=("stage", "deal stage", "pipeline stage", "阶段", "销售阶段", "商机阶段"),
        ),
        FieldSpec("amount", "number", headers=("amount", "value", "deal value", "金额", "商机金额", "预计金额")),
        FieldSpec("currency", "choice", choices=tuple(CURRENCIES), headers=("currency", "币种", "货币")),
        FieldSpec("probability", "integer", headers=("probability", "win probability", "赢率", "成交概率", "概率")),
        FieldSpec(
            "expected_close_date",
            "date",
            headers=("expected close date", "close date", "预计成交日期", "预计成交", "成交日期"),
        ),
    ),
    "orders": (
        FieldSpec(
            "order_number",
            required=True,
            max_length=40,
            headers=("order number", "order no", "order", "order id", "订单号", "订单编号"),
        ),
        FieldSpec("customer", "ref", required=True, target="customer", headers=CUSTOMER_REF_HEADERS),
        FieldSpec("owner", "ref", target="owner", headers=OWNER_HEADERS),
        FieldSpec(
            "ordered_at",
            "datetime",
            headers=("ordered at", "order date", "date", "下单时间", "下单日期", "订单日期", "日期"),
        ),
        FieldSpec(
            "status", "choice", choices=_values(OrderStatus), headers=("status", "order status", "状态", "订单状态")
        ),
        FieldSpec("currency", "choice", choices=tuple(CURRENCIES), headers=("currency", "币种", "货币")),
        FieldSpec(
            "product",
            "ref",
            required=True,
            target="product",
            headers=("product", "product name", "sku", "item", "产品", "产品名称", "商品", "商品名称"),
        ),
        FieldSpec("quantity", "number", headers=("quantity", "qty", "数量")),
        FieldSpec("unit_price", "number", headers=("unit price", "price", "单价", "价格")),
    ),
    "activities": (
        FieldSpec("customer", "ref", required=True, target="customer", headers=CUSTOMER_REF_HEADERS),
        FieldSpec(
            "type",
            "choice",
            choices=_values(ActivityType),
            headers=("type", "activity type", "类型", "跟进方式", "方式"),
        ),
        FieldSpec(
            "occurred_at", "datetime", headers=("date", "occurred at", "time", "when", "跟进时间", "时间", "日期")
        ),
        FieldSpec(
            "summary",
            max_length=5000,
            headers=("summary", "notes", "note", "description", "content", "内容", "跟进内容", "备注", "摘要"),
        ),
        FieldSpec(
            "author", "ref", target="owner", headers=("author", "by", "rep", "owner", "跟进人", "记录人", "负责人")
        ),
    ),
    "tasks": (
        FieldSpec(
            "title", required=True, max_length=200, headers=("title", "task", "subject", "任务", "标题", "任务名称")
        ),
        FieldSpec("customer", "ref", target="customer", headers=CUSTOMER_REF_HEADERS),
        FieldSpec("assignee", "ref", target="owner", headers=("assignee", "assigned to", "owner", "执行人", "负责人")),
        FieldSpec(
            "due_at", "datetime", headers=("due", "due date", "due at", "deadline", "截止时间", "截止日期", "到期")
        ),
        FieldSpec("status", "choice", choices=_values(TaskStatus), headers=("status", "状态")),
        FieldSpec("priority", "choice", choices=_values(Priority), headers=("priority", "优先级")),
    ),
}

# The fields a row may be matched on (update, upsert, duplicates), in the default order.
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "email", "phone", "name"),
    "contacts": ("email", "phone", "name"),
    "products": ("sku", "name"),
    "opportunities": ("name",),
    "orders": ("order_number",),
    "activities": (),
    "tasks": ("title",),
}
DEFAULT_MATCH: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "email", "phone", "name"),
    "contacts": ("email",),
    "products": ("sku",),
    "opportunities": ("name",),
    "orders": ("order_number",),
    "activities": (),
    "tasks": ("title",),
}
# Keys the database itself keeps unique: a second row with the same key is an error, not a duplicate.
HARD_KEYS: dict[str, str] = {"products": "sku", "customers": "external_id"}  # orders repeat per line
# Entities whose rows can carry the tenant's custom fields.
CUSTOM_FIELD_ENTITIES = {"customers": "customer"}

# Words a file may use for an enumerated value, beyond the value itself and its translations.
VALUE_SYNONYMS: dict[str, dict[str, str]] = {
    "lifecycle_stage": {
        "lead": "prospect",
        "潜在客户": "prospect",
        "意向": "intent",
        "opportunity": "intent",
        "won": "customer",
        "成交": "customer",
        "客户": "customer",
        "lost": "churned",
        "流失": "churned",
    },
    "kind": {
        "企业": "company",
        "公司": "company",
        "business": "company",
        "b2b": "company",
        "个人": "person",
        "individual": "person",
        "b2c": "person",
    },
    "type": {
        "电话": "call",
        "phone": "call",
        "会议": "meeting",
        "邮件": "email",
        "拜访": "visit",
        "上门": "visit",
        "备注": "note",
        "笔记": "note",
    },
    "status": {
        "草稿": "draft",
        "已确认": "confirmed",
        "已发货": "fulfilled",
        "已完成": "fulfilled",
        "已取消": "cancelled",
        "canceled": "cancelled",
        "待办": "open",
        "进行中": "open",
        "完成": "done",
        "completed": "done",
        "closed": "done",
    },
    "priority": {"低": "low", "中": "normal", "普通": "normal", "medium": "normal", "高": "high", "urgent": "high"},
}


def fields_of(entity: str) -> tuple[FieldSpec, ...]:
    """The importable fields of ``entity``."""
    return FIELDS[entity]


def field_spec(entity: str, name: str) -> FieldSpec | None:
    """One field of ``entity`` by name."""
    return next((spec for spec in FIELDS[entity] if spec.name == name), None)


def header_key(text: str) -> str:
    """A header folded for comparison: NFKC, case-folded, no spaces/underscores/dashes/asterisks."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[\s_\-*.:：()（）]+", "", folded)


def suggest_field(entity: str, header: str, *, taken: set[str] | None = None) -> str | None:
    """The field a column header most likely means (exact synonym first, then a containing one)."""
    key = header_key(header)
    if not key:
        return None
    taken = taken or set()
    specs = [spec for spec in FIELDS[entity] if spec.name not in taken]
    for spec in specs:
        if key == header_key(spec.name) or key in {header_key(alias) for alias in spec.headers}:
            return spec.name
    for spec in specs:
        for alias in spec.headers:
            alias_key = header_key(alias)
            if len(alias_key) >= 2 and (alias_key in key):
                return spec.name
    return None


def suggest_mapping(entity: str, headers: list[str]) -> dict[str, str]:
    """``{header: field}`` for every header that suggests a field (each field used once)."""
    mapping: dict[str, str] = {}
    taken: set[str] = set()
    # exact matches first, so "客户名称" takes name before "客户" could
    for exact_only in (True, False):
        for header in headers:
            if header in mapping:
                continue
            suggestion = suggest_field(entity, header, taken=taken)
            if suggestion is None:
                continue
            if exact_only:
                key = header_key(header)
                spec = field_spec(entity, suggestion)
                assert spec is not None
                if key != header_key(spec.name) and key not in {header_key(alias) for alias in spec.headers}:
                    continue
            mapping[header] = suggestion
            taken.add(suggestion)
    return mapping
