"""What can be imported: the fields of each entity, and the headers that suggest them.

What a valid value of a field is — kind, required, size, allowed values, bounds — is not
written here: each :class:`FieldSpec` wraps a :class:`crm_core.rules.fields.Field`, the same
row the create/edit services and the GX suites read. This module adds only what is the
import's own: which fields a file may fill, in which order, and ``headers`` — the spellings
(English and Chinese) that make the wizard suggest the field; comparison ignores case,
spaces, underscores and full-width forms.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from crm_core.rules import fields as rules
from crm_core.rules.fields import CURRENCIES, Field

ENTITIES = ["customers", "contacts", "products", "opportunities", "deal_lines", "orders", "activities", "tasks"]
CUSTOM_PREFIX = "custom:"
__all__ = ["CURRENCIES", "ENTITIES", "FIELDS", "FieldSpec", "field_spec", "fields_of", "suggest_mapping"]


@dataclass(frozen=True)
class FieldSpec:
    """One importable field: its rule (:mod:`crm_core.rules.fields`) and the headers that suggest it."""

    rule: Field
    headers: tuple[str, ...] = ()
    required_in_file: bool = False  # required by the import although a form may leave it blank

    @property
    def name(self) -> str:
        """The field's name."""
        return self.rule.name

    @property
    def kind(self) -> str:
        """How a cell is read (see the kinds of :mod:`crm_core.rules.fields`)."""
        return self.rule.kind

    @property
    def required(self) -> bool:
        """A row that creates a record must fill it."""
        return self.rule.required or self.required_in_file

    @property
    def max_length(self) -> int | None:
        """The most characters, from the model column."""
        return self.rule.max_length

    @property
    def choices(self) -> tuple[str, ...]:
        """The values an enumerated field takes."""
        return self.rule.choices

    @property
    def target(self) -> str | None:
        """What a reference resolves to: customer, product, owner or stage."""
        return self.rule.target


def _spec(table: dict[str, Field], name: str, *headers: str, required_in_file: bool = False) -> FieldSpec:
    return FieldSpec(table[name], tuple(headers), required_in_file)


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
    *("account id", "company id", "customer id", "customer external id", "客户编号", "客户id", "外部编号",
      "公司编号"),
    *("customer email", "account email", "company email", "客户邮箱", "客户邮件"),
)
CUSTOMER_MATCHES = ("any", "name", "external_id", "email")
"""How a file names the customer a contact, deal, order, activity or task belongs to: ``any`` of the three
(the name, the email or the external ID: one customer must hold the value), or only by the one named."""
ORPHAN_POLICIES = ("reject", "placeholder", "lead")
"""What becomes of a contact, deal, order or activity whose customer cell is empty (an unresolved value is always
refused): ``reject`` the row; attach it to a ``placeholder`` customer of its own (tagged :data:`PLACEHOLDER_TAG`);
or make a ``lead`` of it: a prospect customer from what the row says (tagged :data:`LEAD_TAG`)."""
ORPHAN_ENTITIES = ("contacts", "opportunities", "orders", "activities")
"""The entities whose customer is required (a task's is optional, as on its form: a task without one is no orphan)."""
PLACEHOLDER_TAG = "no-account"
LEAD_TAG = "imported-lead"
CUSTOMER_MATCH_HEADERS = {
    "external_id": ("id", "编号", "代码"),
    "email": ("email", "e-mail", "mail", "邮箱", "邮件"),
}
"""The words in a customer column's header that say it holds external IDs or emails (Account ID, 客户编号 …)."""
EXTERNAL_ID_HEADERS = ("external id", "crm id", "record id", "外部编号", "外部id")
"""The old system's ID of the record a row describes (a reference to another record has headers of its own)."""
DEAL_REF_HEADERS = ("deal id", "deal", "opportunity id", "opportunity", "deal external id", "商机编号", "商机id",
                    "商机")
"""A column naming the deal a row belongs to, by the deal's external ID."""
CONSENT_SPECS = (
    ("email_consent", ("email consent", "email opt in", "email opt-in", "marketing consent", "邮件许可", "邮件营销许可",
                       "营销许可")),
    ("email_consent_source", ("email consent source", "email consent proof", "consent source", "consent proof",
                              "许可来源", "许可凭证")),
    ("email_consent_date", ("email consent date", "consent date", "opt in date", "许可日期", "许可时间")),
)
"""The consent columns a customers or contacts file may carry (decision 0047): one ledger entry per row."""
EMAIL_HEADERS = ("email", "e-mail", "email address", "mail", "邮箱", "电子邮件", "电子邮箱", "邮件")
CURRENCY_HEADERS = ("currency", "币种", "货币")
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
        _spec(
            rules.CUSTOMER,
            "name",
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
        _spec(rules.CUSTOMER, "kind", "kind", "type", "customer type", "类型", "客户类型"),
        _spec(rules.CUSTOMER, "industry", "industry", "sector", "行业", "所属行业"),
        _spec(rules.CUSTOMER, "region", "region", "area", "city", "province", "地区", "区域", "城市", "省份"),
        _spec(rules.CUSTOMER, "source", "source", "lead source", "channel", "来源", "客户来源", "渠道"),
        _spec(rules.CUSTOMER, "owner", *OWNER_HEADERS),
        _spec(
            rules.CUSTOMER,
            "lifecycle_stage",
            "lifecycle stage",
            "stage",
            "status",
            "lifecycle",
            "阶段",
            "客户阶段",
            "生命周期",
            "状态",
        ),
        _spec(rules.CUSTOMER, "tags", "tags", "labels", "标签"),
        _spec(rules.CUSTOMER, "credit_code", "credit code", "unified social credit code", "uscc",
              "统一社会信用代码", "信用代码", "社会信用代码"),
        _spec(rules.CUSTOMER, "email", *EMAIL_HEADERS),
        _spec(rules.CUSTOMER, "phone", *PHONE_HEADERS),
        _spec(
            rules.CUSTOMER,
            "external_id",
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
        _spec(rules.CUSTOMER, "created_at", *("created date", "created at", "create date", "created time",
                                              "date created", "创建时间", "创建日期")),
        *(_spec(rules.CUSTOMER, name, *headers) for name, headers in CONSENT_SPECS),
    ),
    "contacts": (
        _spec(rules.CONTACT, "customer", *CUSTOMER_REF_HEADERS),
        _spec(rules.CONTACT, "name", "name", "contact", "contact name", "full name", "联系人", "姓名", "联系人姓名"),
        _spec(rules.CONTACT, "title", "title", "job title", "position", "职位", "职务", "头衔"),
        _spec(rules.CONTACT, "email", *EMAIL_HEADERS),
        _spec(rules.CONTACT, "phone", *PHONE_HEADERS),
        _spec(rules.CONTACT, "is_primary", "primary", "is primary", "main contact", "主要联系人", "首要联系人"),
        _spec(rules.CONTACT, "external_id", *EXTERNAL_ID_HEADERS, "contact id", "联系人编号", "联系人id"),
        *(_spec(rules.CONTACT, name, *headers) for name, headers in CONSENT_SPECS),
    ),
    "products": (
        _spec(rules.PRODUCT, "sku", "sku", "code", "product code", "item code", "产品编号", "编码", "货号", "产品编码"),
        _spec(rules.PRODUCT, "name", "name", "product", "product name", "产品名称", "产品", "名称", "商品名称"),
        _spec(rules.PRODUCT, "unit_price", "unit price", "price", "list price", "单价", "价格", "标价"),
        _spec(rules.PRODUCT, "currency", *CURRENCY_HEADERS),
        _spec(rules.PRODUCT, "is_active", "active", "is active", "enabled", "启用", "是否启用", "在售"),
        _spec(rules.PRODUCT, "external_id", *EXTERNAL_ID_HEADERS, "product id", "产品id"),
    ),
    "opportunities": (
        _spec(
            rules.OPPORTUNITY,
            "name",
            "name",
            "deal",
            "deal name",
            "opportunity",
            "opportunity name",
            "商机名称",
            "商机",
            "名称",
        ),
        _spec(rules.OPPORTUNITY, "customer", *CUSTOMER_REF_HEADERS),
        _spec(rules.OPPORTUNITY, "owner", *OWNER_HEADERS),
        _spec(rules.OPPORTUNITY, "stage", "stage", "deal stage", "pipeline stage", "阶段", "销售阶段", "商机阶段"),
        _spec(rules.OPPORTUNITY, "amount", "amount", "value", "deal value", "金额", "商机金额", "预计金额"),
        _spec(rules.OPPORTUNITY, "currency", *CURRENCY_HEADERS),
        _spec(rules.OPPORTUNITY, "probability", "probability", "win probability", "赢率", "成交概率", "概率"),
        _spec(
            rules.OPPORTUNITY,
            "expected_close_date",
            "expected close date",
            "close date",
            "预计成交日期",
            "预计成交",
            "成交日期",
        ),
        _spec(rules.OPPORTUNITY, "product", "product", "product name", "product id", "product code", "sku", "产品",
              "产品名称", "产品编号", "商品"),
        _spec(rules.OPPORTUNITY, "lost_reason", "lost reason", "reason lost", "loss reason", "closed lost reason",
              "输单原因", "丢单原因", "失败原因"),
        _spec(rules.OPPORTUNITY, "won_reason", "won reason", "win reason", "closed won reason", "赢单原因"),
        _spec(rules.OPPORTUNITY, "created_at", "created date", "created at", "create date", "date created",
              "opened", "open date", "opened date", "创建时间", "创建日期", "立项日期"),
        _spec(rules.OPPORTUNITY, "closed_at", "closed date", "closed at", "date closed", "actual close date",
              "closed on", "关闭日期", "实际成交日期", "结单日期"),
        _spec(rules.OPPORTUNITY, "external_id", *EXTERNAL_ID_HEADERS, "deal id", "opportunity id", "商机编号",
              "商机id"),
    ),
    # one row per order line: the order's fields, then the line's
    "orders": (
        # a form may leave it blank (the next number is given); a file's lines are grouped by it
        _spec(
            rules.ORDER,
            "order_number",
            "order number",
            "order no",
            "order",
            "order id",
            "订单号",
            "订单编号",
            required_in_file=True,
        ),
        _spec(rules.ORDER, "customer", *CUSTOMER_REF_HEADERS),
        _spec(rules.ORDER, "owner", *OWNER_HEADERS),
        _spec(
            rules.ORDER, "ordered_at", "ordered at", "order date", "date", "下单时间", "下单日期", "订单日期", "日期"
        ),
        _spec(rules.ORDER, "status", "status", "order status", "状态", "订单状态"),
        _spec(rules.ORDER, "currency", *CURRENCY_HEADERS),
        _spec(rules.ORDER, "external_id", *EXTERNAL_ID_HEADERS),
        _spec(rules.ORDER, "deal", *DEAL_REF_HEADERS),
        _spec(
            rules.ORDER_LINE,
            "product",
            "product",
            "product name",
            "product id",
            "sku",
            "item",
            "产品",
            "产品名称",
            "商品",
            "商品名称",
        ),
        _spec(rules.ORDER_LINE, "quantity", "quantity", "qty", "数量"),
        _spec(rules.ORDER_LINE, "unit_price", "unit price", "price", "单价", "价格"),
    ),
    # one row per product of a deal (Salesforce's "Opportunity Product"): the deal by its external ID
    "deal_lines": (
        _spec(rules.DEAL_LINE, "deal", *DEAL_REF_HEADERS),
        _spec(rules.DEAL_LINE, "product", "product", "product name", "product id", "product code", "sku", "item",
              "产品", "产品名称", "产品编号", "商品", "商品名称"),
        _spec(rules.DEAL_LINE, "quantity", "quantity", "qty", "数量"),
        _spec(rules.DEAL_LINE, "unit_price", "sales price", "unit price", "price", "单价", "价格", "售价"),
    ),
    "activities": (
        _spec(rules.ACTIVITY, "customer", *CUSTOMER_REF_HEADERS),
        _spec(rules.ACTIVITY, "type", "type", "activity type", "类型", "跟进方式", "方式"),
        _spec(rules.ACTIVITY, "occurred_at", "date", "occurred at", "time", "when", "跟进时间", "时间", "日期"),
        _spec(
            rules.ACTIVITY,
            "summary",
            "summary",
            "notes",
            "note",
            "description",
            "content",
            "内容",
            "跟进内容",
            "备注",
            "摘要",
        ),
        _spec(rules.ACTIVITY, "author", "author", "by", "rep", "owner", "跟进人", "记录人", "负责人"),
        _spec(rules.ACTIVITY, "contact", "contact id", "contact", "contact external id", "联系人编号", "联系人id",
              "联系人"),
        _spec(rules.ACTIVITY, "deal", *DEAL_REF_HEADERS),
    ),
    "tasks": (
        _spec(rules.TASK, "title", "title", "task", "subject", "任务", "标题", "任务名称"),
        _spec(rules.TASK, "customer", *CUSTOMER_REF_HEADERS),
        _spec(rules.TASK, "assignee", "assignee", "assigned to", "owner", "执行人", "负责人"),
        _spec(rules.TASK, "due_at", "due", "due date", "due at", "deadline", "截止时间", "截止日期", "到期"),
        _spec(rules.TASK, "status", "status", "状态"),
        _spec(rules.TASK, "priority", "priority", "优先级"),
        _spec(rules.TASK, "completed_at", "completed", "completed at", "completed date", "done at", "完成时间",
              "完成日期"),
        _spec(rules.TASK, "deal", *DEAL_REF_HEADERS),
    ),
}

# The fields a row may be matched on (update, upsert, duplicates), in the default order.
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "email", "phone", "name"),
    "contacts": ("external_id", "email", "phone", "name"),
    "products": ("external_id", "sku", "name"),
    "opportunities": ("external_id", "name"),
    "orders": ("order_number", "external_id"),
    "deal_lines": (),
    "activities": (),
    "tasks": ("title",),
}
DEFAULT_MATCH: dict[str, tuple[str, ...]] = {
    "customers": ("external_id", "email", "phone", "name"),
    "contacts": ("email",),
    "products": ("sku",),
    "opportunities": ("name",),
    "orders": ("order_number",),
    "deal_lines": (),
    "activities": (),
    "tasks": ("title",),
}
# Keys the database itself keeps unique: a second row with the same key is an error, not a duplicate.
HARD_KEYS: dict[str, str] = {"products": "sku", "customers": "external_id"}  # orders repeat per line
# Per entity, the fields that write the past (rules.fields.HISTORY): admins only, flagged in the audit trail.
HISTORY_FIELDS: dict[str, tuple[str, ...]] = {
    "customers": rules.HISTORY["customer"],
    "contacts": rules.HISTORY["contact"],
    "opportunities": rules.HISTORY["opportunity"],
    "tasks": rules.HISTORY["task"],
}
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
    "email_consent": {
        "yes": "consent", "opt-in": "consent", "opted in": "consent", "同意": "consent", "是": "consent",
        "合同": "contract", "正当利益": "legitimate_interest", "legitimate interest": "legitimate_interest",
        "no": "withdrawn", "opt-out": "withdrawn", "opted out": "withdrawn", "unsubscribed": "withdrawn",
        "撤回": "withdrawn", "退订": "withdrawn", "否": "withdrawn", "无": "none",
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


def suggest_customer_match(header: str | None) -> str:
    """How the customer column ``header`` names its customers: ``external_id`` for "Account ID", "客户编号",
    ``email`` for "Customer email", "客户邮箱", else ``any``."""
    if not header:
        return "any"
    key = header_key(header)
    for match, words in CUSTOMER_MATCH_HEADERS.items():
        if any(key.endswith(header_key(word)) for word in words):
            return match
    return "any"

