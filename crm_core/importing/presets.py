"""Mapping presets: how the common exports of other CRMs map onto Kestrel's fields and values.

A preset is data (:data:`PRESETS`): per old system and entity, the file headers it writes and the
field each feeds (in order of preference: the first header present in the file wins a field, so
"Account ID" is preferred over "Account Name" for the customer column), and the old system's
values of enumerated fields translated to Kestrel's. Pipeline stages are named by their place in
the tenant's default pipeline — ``open1`` … ``open4`` (the n-th open stage, the last one when there
are fewer), ``won``, ``lost`` — and resolved to the tenant's own stage names when applied.

Columns the preset does not name keep the headers' own suggestion. Applying a preset gives an
:class:`ImportMapping`, the same object a saved template gives (the
wizard, the CLI's ``--preset``, the API's ``preset`` field and the job all take it from here).
Fields of the past (created, closed …: ``HISTORY_FIELDS``) are left out for anyone but an admin,
as the wizard leaves them out of its choices. ``detect`` picks the preset (and entity) whose
headers the file's header matches best.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.errors import ImportNotAllowed
from crm_core.importing.fields import (
    DEFAULT_MATCH,
    ENTITIES,
    HISTORY_FIELDS,
    header_key,
    suggest_customer_match,
    suggest_mapping,
)
from crm_core.importing.mapping import ImportMapping
from crm_core.models import Pipeline, PipelineStage

DETECT = "detect"
MIN_DETECTED = 3  # headers a file must share with a preset for detection to pick it

_SF_STAGES = {
    "Prospecting": "open1", "Qualification": "open2", "Needs Analysis": "open2", "Value Proposition": "open3",
    "Id. Decision Makers": "open3", "Perception Analysis": "open3", "Proposal/Price Quote": "open3",
    "Negotiation/Review": "open4", "Closed Won": "won", "Closed Lost": "lost",
}
_HS_STAGES = {
    "appointmentscheduled": "open1", "Appointment Scheduled": "open1",
    "qualifiedtobuy": "open2", "Qualified To Buy": "open2",
    "presentationscheduled": "open3", "Presentation Scheduled": "open3",
    "decisionmakerboughtin": "open3", "Decision Maker Bought-In": "open3",
    "contractsent": "open4", "Contract Sent": "open4",
    "closedwon": "won", "Closed Won": "won", "closedlost": "lost", "Closed Lost": "lost",
}
_CN_STAGES = {  # 纷享销客 and 销售易 default sales stages
    "验证客户": "open1", "初步接洽": "open1", "需求确定": "open2", "需求确认": "open2", "方案/报价": "open3",
    "方案报价": "open3", "谈判审核": "open4", "商务谈判": "open4", "谈判": "open4", "赢单": "won", "输单": "lost",
}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "salesforce": {  # report CSVs (Accounts, Contacts, Opportunities, Products), English column names
        "products": {"columns": {
            "Product Name": "name", "Product Code": "sku", "List Price": "unit_price", "Unit Price": "unit_price",
            "Product Currency": "currency", "Currency": "currency", "Active": "is_active"}},
        "customers": {"columns": {
            "Account Name": "name", "Account ID": "external_id", "Account Owner": "owner", "Industry": "industry",
            "Type": "tags", "Account Source": "source", "Lead Source": "source", "Phone": "phone",
            "Billing City": "region", "Created Date": "created_at"}},
        "contacts": {"columns": {
            "Account ID": "customer", "Account Name": "customer", "Full Name": "name", "Contact Name": "name",
            "Title": "title", "Email": "email", "Phone": "phone", "Mobile": "phone"}},
        "opportunities": {
            "columns": {
                "Opportunity Name": "name", "Account ID": "customer", "Account Name": "customer",
                "Opportunity Owner": "owner", "Stage": "stage", "Amount": "amount", "Amount Currency": "currency",
                "Opportunity Currency": "currency", "Probability (%)": "probability",
                "Close Date": "expected_close_date",
                "Product Name": "product", "Loss Reason": "lost_reason", "Created Date": "created_at"},
            "values": {"stage": _SF_STAGES}},
        "deal_lines": {"columns": {  # "Opportunity Product" rows: a deal's several products (decision 0045)
            "Opportunity ID": "deal", "Product Code": "product", "Product Name": "product", "Quantity": "quantity",
            "Sales Price": "unit_price"}},
    },
    "hubspot": {  # "Export" of the Companies, Contacts and Deals views
        "products": {"columns": {
            "Name": "name", "SKU": "sku", "Unit price": "unit_price", "Currency": "currency"}},
        "customers": {"columns": {
            "Company name": "name", "Record ID": "external_id", "Company owner": "owner", "Industry": "industry",
            "Phone Number": "phone", "City": "region", "Lifecycle Stage": "lifecycle_stage",
            "Create Date": "created_at"},
            "values": {"lifecycle_stage": {
                "subscriber": "prospect", "lead": "prospect", "marketingqualifiedlead": "prospect",
                "Marketing Qualified Lead": "prospect", "salesqualifiedlead": "intent",
                "Sales Qualified Lead": "intent", "opportunity": "intent", "customer": "customer",
                "evangelist": "customer", "other": "prospect"}}},
        "contacts": {"columns": {
            "Associated Company ID": "customer", "Associated Company": "customer", "Company Name": "customer",
            "Full Name": "name", "Name": "name", "Job Title": "title", "Email": "email", "Phone Number": "phone"}},
        "opportunities": {
            "columns": {
                "Deal Name": "name", "Associated Company ID": "customer", "Associated Company": "customer",
                "Deal owner": "owner", "Deal Stage": "stage", "Amount": "amount", "Currency": "currency",
                "Close Date": "expected_close_date", "Closed Lost Reason": "lost_reason",
                "Closed Won Reason": "won_reason", "Create Date": "created_at"},
            "values": {"stage": _HS_STAGES}},
    },
    "fxiaoke": {  # 纷享销客 / 销售易 Excel exports, Chinese headers
        "products": {"columns": {
            "产品名称": "name", "产品编码": "sku", "产品编号": "sku", "标准价格": "unit_price", "价格": "unit_price",
            "单价": "unit_price", "币种": "currency", "上架状态": "is_active"}},
        "customers": {"columns": {
            "客户名称": "name", "客户编号": "external_id", "负责人": "owner", "客户级别": "tags", "行业": "industry",
            "所属行业": "industry", "客户来源": "source", "来源": "source", "电话": "phone", "省市区": "region",
            "地区": "region", "统一社会信用代码": "credit_code", "创建时间": "created_at"}},
        "contacts": {"columns": {
            "客户编号": "customer", "客户名称": "customer", "姓名": "name", "联系人姓名": "name", "职务": "title",
            "职位": "title", "手机": "phone", "电话": "phone", "邮箱": "email"}},
        "opportunities": {
            "columns": {
                "商机名称": "name", "客户编号": "customer", "客户名称": "customer", "负责人": "owner",
                "销售阶段": "stage", "商机金额": "amount", "销售金额": "amount", "币种": "currency",
                "预计成交日期": "expected_close_date", "结单日期": "closed_at", "输单原因": "lost_reason",
                "产品名称": "product", "创建时间": "created_at"},
            "values": {"stage": _CN_STAGES}},
    },
}
"""Per old system, per entity: ``columns`` ({file header: field}, preferred first) and ``values``
({field: {the old system's value: Kestrel's}}; stages as ``open1`` … ``won``/``lost``)."""


def preset_names() -> list[str]:
    """The presets, in the order they are offered."""
    return list(PRESETS)


def check_preset(name: str | None) -> str | None:
    """The preset's name (None when none is asked); ``imports.error.unknown_preset`` for an unknown one."""
    if name is None or not name.strip():
        return None
    cleaned = name.strip().lower()
    if cleaned != DETECT and cleaned not in PRESETS:
        raise ImportNotAllowed("imports.error.unknown_preset", preset=name.strip()[:60],
                               presets=", ".join([*PRESETS, DETECT]))
    return cleaned


def _matched(columns: dict[str, str], headers: list[str]) -> dict[str, str]:
    """{file header: field} for the preset's headers the file has (by folded header; each field once)."""
    by_key = {header_key(header): header for header in headers}
    chosen: dict[str, str] = {}
    taken: set[str] = set()
    for preset_header, target in columns.items():
        header = by_key.get(header_key(preset_header))
        if header is None or header in chosen or target in taken:
            continue
        chosen[header] = target
        taken.add(target)
    return chosen


def detect_preset(headers: list[str], entity: str | None = None) -> tuple[str, str] | None:
    """(preset, entity) whose headers the file's header matches best (of ``entity``'s when given), or None
    when none shares at least :data:`MIN_DETECTED` headers (or all of a shorter file's)."""
    best: tuple[int, str, str] | None = None
    for name, entities in PRESETS.items():
        for candidate, table in entities.items():
            if entity is not None and candidate != entity:
                continue
            score = len(_matched(table["columns"], headers))
            if score >= min(MIN_DETECTED, len(headers)) and score > 0 and (best is None or score > best[0]):
                best = (score, name, candidate)
    return (best[1], best[2]) if best else None


def _stage_names(session: Session) -> dict[str, str]:
    """``open1`` … ``openN``, ``won``, ``lost`` → the stage names of the tenant's default pipeline."""
    pipeline_id = session.scalar(select(Pipeline.id).order_by(Pipeline.is_default.desc(), Pipeline.id).limit(1))
    if pipeline_id is None:
        return {}
    rows = session.execute(select(PipelineStage.name, PipelineStage.kind).where(
        PipelineStage.pipeline_id == pipeline_id).order_by(PipelineStage.position)).all()
    names: dict[str, str] = {}
    open_names = [name for name, kind in rows if kind == "open"]
    for index in range(1, 5):
        if open_names:
            names[f"open{index}"] = open_names[min(index, len(open_names)) - 1]
    for kind in ("won", "lost"):
        found = next((name for name, row_kind in rows if row_kind == kind), None)
        if found:
            names[kind] = found
    return names


def preset_mapping(session: Session, name: str, entity: str, headers: list[str], *, admin: bool) -> ImportMapping:
    """The mapping preset ``name`` gives a file of ``entity`` with ``headers`` (``detect``: the best preset of
    the entity, else the headers' own suggestion); the session reads the tenant's stage names."""
    checked = check_preset(name)
    if entity not in ENTITIES:
        raise ImportNotAllowed("imports.error.unknown_entity", entity=entity, entities=", ".join(ENTITIES))
    if checked == DETECT:
        found = detect_preset(headers, entity)
        if found is None:
            return ImportMapping.suggested(entity, headers)
        checked = found[0]
    assert checked is not None
    table = PRESETS[checked].get(entity)
    if table is None:
        return ImportMapping.suggested(entity, headers)
    withheld = set() if admin else set(HISTORY_FIELDS.get(entity, ()))
    columns = _matched(table["columns"], headers)
    # the columns the preset does not know keep the headers' own suggestion (a field the preset took is taken)
    for spare, target in suggest_mapping(entity, [h for h in headers if h not in columns]).items():
        if target not in columns.values():
            columns[spare] = target
    columns = {header: target for header, target in columns.items() if target not in withheld}
    by_field = {target: header for header, target in columns.items()}
    stage_names = _stage_names(session) if "stage" in by_field else {}
    values: dict[str, dict[str, str]] = {}
    for target, translations in (table.get("values") or {}).items():
        header = by_field.get(target)
        if header is None:
            continue
        if target == "stage":  # a place the tenant's pipeline lacks (no lost stage …) is left to the user
            values[header] = {old: stage_names[new] for old, new in translations.items() if new in stage_names}
        else:
            values[header] = dict(translations)
    customer = by_field.get("customer")
    return ImportMapping(columns=columns, values=values, match_on=list(DEFAULT_MATCH[entity]),
                         customer_match=suggest_customer_match(customer))
