"""Read side for customers: the server-side filtered, sorted, paginated grid and its export.

Only the rows of one page leave the database. Pages are fetched by keyset (the last row's
sort value and id) so that "next" stays an index seek at any depth; an offset is used
only for sorts on a nullable column. The total is optional and capped (``COUNT`` over a
million rows on every page view is the slow list view users complain about).

Text search per database (see migrations 0002 and 0009): SQLite matches the FTS5 trigram
table ``customers_fts`` for three or more characters and for one or two Chinese characters
(through the FTS vocabulary), and an index range on the name prefix for one or two Latin
ones; PostgreSQL uses ``ILIKE`` served by pg_trgm GIN indexes for three or more characters and,
for one or two, the same match through GIN indexes of the values' one- and two-character
substrings (migration 0036); MariaDB scans with ``LIKE``
under the grid's index order and stops after one page.
Tenant and ownership scoping come from the session.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, Select, Text, and_, cast, column, func, literal, or_, select, table, tuple_, union
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.orm import Session, aliased

from crm_core.access import actor_of
from crm_core.models import Customer, FieldDefinition, Team, User
from crm_core.queries.paging import Page
from crm_core.rules.contact_details import normalise_email, phone_search_keys
from crm_core.rules.fields import search_text

SORTABLE_COLUMNS: dict[str, Any] = {
    "updated_at": Customer.updated_at,
    "created_at": Customer.created_at,
    "name": Customer.name,
    "lifecycle_stage": Customer.lifecycle_stage,
    "last_contacted_at": Customer.last_contacted_at,
}
NULLABLE_SORTS = {"last_contacted_at"}
"""Sorts whose column may be NULL: NULL ordering differs per database, so these page by offset."""

GRID_COLUMNS = [
    "name", "kind", "lifecycle_stage", "owner", "team", "email", "phone", "industry", "region",
    "source", "tags", "last_contacted_at", "created_at", "updated_at",
]
"""Built-in grid columns in default order; custom fields add ``custom.<name>``."""
DEFAULT_COLUMNS = [
    "name", "kind", "lifecycle_stage", "owner", "email", "phone", "industry", "region", "tags",
    "last_contacted_at", "updated_at",
]
MIN_FTS_CHARS = 3
"""The trigram tokenizer cannot match shorter strings; those search the name/email prefix."""
DEFAULT_COUNT_CAP = 1_000
SMALL_SET = 5_000
"""At most this many filtered rows are sorted in memory; more are read in sort-index order."""
SMALL_SEARCH = 5_000
"""At most this many search matches are fetched by rowid and sorted; more are read in sort-index order."""
SEARCH_SAMPLE = 2_000
DENSE_SAMPLE_HITS = 10
"""A short Chinese term found in this many of ``SEARCH_SAMPLE`` names (0.5 %) is read in sort-index order."""

# SQLite without ANALYZE statistics believes "tenant_id = ?" matches ten rows and picks any
# tenant index, often one that neither filters nor sorts (seconds at a million rows). The grid
# therefore names the index itself (see _sqlite_plan); other databases plan on their own.
SORT_INDEXES = {
    "updated_at": "ix_customers_tenant_id_updated_at",
    "created_at": "ix_customers_tenant_id_created_at",
    "name": "ix_customers_tenant_id_name",
    "last_contacted_at": "ix_customers_tenant_id_last_contacted_at",
    "lifecycle_stage": "ix_customers_tenant_id_lifecycle_stage_updated_at",
}
SQLiteCompiler.get_from_hint_text = lambda self, table, text: text  # type: ignore[method-assign]
# ^ SQLAlchemy's SQLite compiler drops table hints; render them (only "INDEXED BY"/"NOT INDEXED" are used)

_OWNER = aliased(User, name="owner")
_TEAM = aliased(Team, name="team")
# the grid reads columns, not entities: no identity map or instance state for 50 rows per page
_GRID_COLUMNS = (
    Customer.id, Customer.name, Customer.kind, Customer.industry, Customer.region, Customer.lifecycle_stage,
    Customer.owner_id, Customer.email, Customer.phone, Customer.tags, Customer.last_contacted_at,
    Customer.updated_at, Customer.version, Customer.source, Customer.created_at, Customer.custom_fields,
    Customer.archived_at, Customer.credit_code, Customer.province_code, Customer.city_code, Customer.district_code,
    Customer.external_id,
    _OWNER.full_name.label("owner_name"), _TEAM.name.label("team_name"),
)
_FTS = table("customers_fts", column("rowid"))
_FTS_MATCH: Any = column("customers_fts")
_FTS_VOCAB = table("customers_fts_vocab", column("term"))


@dataclass
class CustomerFilters:
    """What the grid is filtered by; empty values mean no filter.

    ``custom`` maps a custom field's name to a value: text matches as a substring, choice
    and bool by equality, number and date as an inclusive ``[low, high]`` pair (either end
    may be None).
    """

    search: str = ""
    owner_id: int | None = None
    unowned: bool = False
    team_id: int | None = None
    lifecycle_stage: str | None = None
    industry: str | None = None
    region: str | None = None
    province_code: str | None = None  # GB/T 2260 (rules.regions), through its own grid index
    tag: str | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    last_contacted_from: dt.date | None = None
    last_contacted_to: dt.date | None = None
    never_contacted: bool = False
    custom: dict[str, Any] = field(default_factory=dict)
    include_archived: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (dates as ISO strings) for saved views."""
        values = asdict(self)
        for key, value in values.items():
            if isinstance(value, dt.date):
                values[key] = value.isoformat()
        values["custom"] = {
            name: [_iso(v) for v in value] if isinstance(value, (list, tuple)) else _iso(value)
            for name, value in self.custom.items()
        }
        return {key: value for key, value in values.items() if value not in (None, "", False, {})}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CustomerFilters:
        """Rebuild filters saved with :meth:`as_dict`; unknown keys are ignored."""
        known = {name for name in cls.__dataclass_fields__}
        cleaned: dict[str, Any] = {key: value for key, value in values.items() if key in known}
        for key in ("created_from", "created_to", "last_contacted_from", "last_contacted_to"):
            if isinstance(cleaned.get(key), str):
                cleaned[key] = dt.date.fromisoformat(cleaned[key])
        return cls(**cleaned)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


@dataclass(frozen=True)
class CustomerRow:
    """One line of the customers grid."""

    id: int
    name: str
    kind: str
    industry: str | None
    region: str | None
    lifecycle_stage: str
    owner_id: int | None
    owner_name: str | None
    email: str | None
    phone: str | None
    tags: list[str] = field(default_factory=list)
    last_contacted_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    version: int = 1
    team_name: str | None = None
    source: str | None = None
    created_at: dt.datetime | None = None
    custom_fields: dict[str, Any] = field(default_factory=dict)
    archived_at: dt.datetime | None = None
    credit_code: str | None = None
    province_code: str | None = None
    city_code: str | None = None
    district_code: str | None = None
    external_id: str | None = None  # the record's ID in the CRM it was moved from (issue 18)

    def value(self, column_key: str) -> Any:
        """The raw value of a grid column (``owner``, ``team``, ``custom.<name>`` …)."""
        if column_key == "owner":
            return self.owner_name
        if column_key == "team":
            return self.team_name
        if column_key.startswith("custom."):
            return self.custom_fields.get(column_key.removeprefix("custom."))
        return getattr(self, column_key)


Cursor = tuple[Any, int]
"""Keyset position: the sort value and id of the last row of a page."""


@dataclass(frozen=True)
class CustomerPage(Page[CustomerRow]):
    """A page of the grid plus the cursor that fetches the next one (None: offset paging)."""

    next_cursor: Cursor | None = None
    total_capped: bool = False


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min)


def _filtered(
    statement: Select[Any], filters: CustomerFilters, dialect: str = "sqlite", *, dense_search: bool = False
) -> Select[Any]:
    if not filters.include_archived:
        statement = statement.where(Customer.archived_at.is_(None))
    if filters.owner_id is not None:
        statement = statement.where(Customer.owner_id == filters.owner_id)
    elif filters.unowned:
        statement = statement.where(Customer.owner_id.is_(None))
    if filters.team_id is not None:
        # a team's customers: owned by its members, or unowned and parked on the team
        members = select(User.id).where(User.team_id == filters.team_id).scalar_subquery()
        statement = statement.where(
            or_(Customer.owner_id.in_(members), and_(Customer.owner_id.is_(None), Customer.team_id == filters.team_id))
        )
    if filters.lifecycle_stage:
        statement = statement.where(Customer.lifecycle_stage == filters.lifecycle_stage)
    if filters.industry:
        statement = statement.where(Customer.industry == filters.industry)
    if filters.region:
        statement = statement.where(Customer.region == filters.region)
    if filters.province_code:
        statement = statement.where(Customer.province_code == filters.province_code)
    if filters.tag and filters.tag.strip():
        statement = statement.where(Customer.tags.contains(f",{filters.tag.strip()},", autoescape=True))
    if filters.created_from:
        statement = statement.where(Customer.created_at >= _day_start(filters.created_from))
    if filters.created_to:
        statement = statement.where(Customer.created_at < _day_start(filters.created_to + dt.timedelta(days=1)))
    if filters.never_contacted:
        statement = statement.where(Customer.last_contacted_at.is_(None))
    else:
        if filters.last_contacted_from:
            statement = statement.where(Customer.last_contacted_at >= _day_start(filters.last_contacted_from))
        if filters.last_contacted_to:
            statement = statement.where(
                Customer.last_contacted_at < _day_start(filters.last_contacted_to + dt.timedelta(days=1))
            )
    for name, wanted in filters.custom.items():
        condition = custom_field_condition(name, wanted)
        if condition is not None:
            statement = statement.where(condition)
    text = search_text(filters.search)
    if text:
        statement = statement.where(search_condition(text, dialect, dense=dense_search))
    return statement


def custom_field_condition(name: str, wanted: Any) -> Any:
    """SQL for one custom-field filter (see :class:`CustomerFilters`); None when empty."""
    value = Customer.custom_fields[name]
    if isinstance(wanted, bool):
        return value.as_boolean() == wanted
    if isinstance(wanted, (list, tuple)):
        low, high = (list(wanted) + [None, None])[:2]
        conditions = []
        for bound, compare in ((low, "ge"), (high, "le")):
            if bound in (None, ""):
                continue
            if isinstance(bound, (dt.date, str)) and not _is_number(bound):
                target: Any = value.as_string()
                bound = _iso(bound)
            else:
                target = cast(value.as_string(), Numeric(18, 4))
                bound = Decimal(str(bound))
            conditions.append(target >= bound if compare == "ge" else target <= bound)
        return conditions[0] & conditions[1] if len(conditions) == 2 else (conditions[0] if conditions else None)
    if wanted is None or (isinstance(wanted, str) and not wanted.strip()):
        return None
    if isinstance(wanted, str) and wanted.startswith("="):
        return value.as_string() == wanted[1:]
    return value.as_string().contains(str(wanted).strip(), autoescape=True)


def _is_number(value: Any) -> bool:
    if isinstance(value, (int, float, Decimal)):
        return True
    try:
        Decimal(str(value))
    except ArithmeticError:
        return False
    return "-" not in str(value)[1:]  # "2026-01-01" is a date, not a number


def search_condition(text: str, dialect: str = "sqlite", *, dense: bool = False) -> Any:
    """Match ``text`` in the name (any script, any position), the email or the phone.

    On SQLite the match is found through the full-text index; ``dense`` (the term matches so
    many customers that a page is found sooner by reading the grid's sort index and testing
    each row) asks for the same match as a row test instead, so the index's whole match set
    is never built. One or two Latin characters always match the name's start there; on
    PostgreSQL they match anywhere in the name or email, like longer terms (see :func:`pg_text_condition`).
    """
    text = text.strip()
    phone_keys = [key for key in phone_search_keys(text) if len(key) >= MIN_FTS_CHARS]
    if dialect == "sqlite" and not (dense and _substring_search(text)):
        return Customer.id.in_(sqlite_search_candidates(text))
    if dialect == "postgresql":
        return pg_text_condition(
            (Customer.name, text, True), (Customer.email_normalized, text.lower(), False),
            *((Customer.phone_normalized, key, False) for key in phone_keys),
        )
    conditions = [Customer.name.contains(text, autoescape=True)]
    email_key = normalise_email(text) or text.lower()
    conditions.append(Customer.email_normalized.contains(email_key, autoescape=True))
    conditions.extend(Customer.phone_normalized.contains(key, autoescape=True) for key in phone_keys)
    return or_(*conditions)


def pg_text_condition(*terms: tuple[Any, str, bool]) -> Any:
    """PostgreSQL: any ``(column, key, ignore_case)`` of ``terms`` matches — ``column LIKE '%key%'``, or
    ``ILIKE`` when ``ignore_case`` (wildcards literal) — each found through an index.

    A key of three or more characters: the column's pg_trgm index serves the ``LIKE``. Trigrams cannot
    serve one or two, so those ask the same of the value's one- and two-character substrings instead:
    ``crm_short_grams(lower(value)) @> ARRAY[lower(key)]`` for ``ILIKE`` (which compares ``lower()`` of
    both sides), ``crm_short_grams(value) @> ARRAY[key]`` for ``LIKE``, true exactly when the ``LIKE``
    is and answered by the GIN index over the same expression (migrations 0036, 0047). The planner has
    statistics on those expressions, so a term in most rows is still read in the grid's sort order.
    """
    conditions: list[Any] = []
    for column_, key, ignore_case in terms:
        if len(key) >= MIN_FTS_CHARS:
            conditions.append(column_.icontains(key, autoescape=True) if ignore_case
                              else column_.contains(key, autoescape=True))
            continue
        term: Any = cast(literal(key), Text)  # text[] @> text[]: a bound string is sent as VARCHAR
        value: Any = column_
        if ignore_case:
            value, term = func.lower(column_), func.lower(term)
        grams = func.crm_short_grams(value, type_=postgresql.ARRAY(Text))
        # the indexes hold their keys in COLLATE "C" (bytewise, migration 0047): the comparison must too
        conditions.append(grams.contains(postgresql.array([term.collate("C")], type_=Text)))
    return or_(*conditions)


def _substring_search(text: str) -> bool:
    """Does ``text`` match anywhere in a value (three or more characters, or Chinese), not only at the start?"""
    return len(text) >= MIN_FTS_CHARS or has_cjk(text)


def _fts_phrase(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def sqlite_search_candidates(text: str) -> Any:
    """The ids ``text`` can match on SQLite, each found through an index.

    Three or more characters, or one or two with a Chinese/Japanese/Korean one: the full-text
    index (see :func:`fts_match_query`). One or two Latin characters match the *start of the
    name* (as typed, Capitalised and UPPER), each an index range: a brand's first letters, not
    every "er" inside a word.
    """
    match = fts_match_query(text)
    if match is not None:
        return select(_FTS.c.rowid).where(_FTS_MATCH.match(match))
    return _name_start_ranges(Customer, Customer.id, Customer.name, text.strip())


def fts_match_query(text: str, vocabulary: str = "customers_fts_vocab") -> Any | None:
    """The FTS5 query (a string, or a scalar subquery computing it) for ``text``; None when the
    trigram index cannot find it (one or two Latin characters).

    Three or more characters: the phrase (and, for a phone-like term, its digits as stored,
    E.164 without the +) in name, email or phone. One or two characters with a Chinese/Japanese/
    Korean one (华为, 科技, 隼 — often a whole word inside a company name): every indexed trigram
    that starts with them, taken from the FTS ``vocabulary`` by an index range and matched at once
    (the name ends with two markers, so a word at the very end starts a trigram too).
    """
    text = text.strip()
    if len(text) >= MIN_FTS_CHARS:
        terms = [_fts_phrase(text)]
        terms.extend(_fts_phrase(key) for key in phone_search_keys(text) if len(key) >= MIN_FTS_CHARS and key != text)
        return " OR ".join(terms)
    if has_cjk(text):
        return _trigrams_starting_with(text.lower(), table(vocabulary, column("term")))
    return None


def _name_start_ranges(target: Any, id_column: Any, name_column: Any, text: str, *criteria: Any) -> Any:
    """Ids whose name starts with ``text`` as typed, Capitalised or UPPER: one name-index range each."""
    variants = sorted({text, text[:1].upper() + text[1:], text.upper()})
    return union(*(
        select(id_column)
        .with_hint(target, f"INDEXED BY {SORT_INDEXES['name']}", dialect_name="sqlite")
        .where(*criteria, _starts_with(name_column, variant))
        for variant in variants
    ))


def _trigrams_starting_with(prefix: str, vocabulary: Any = _FTS_VOCAB) -> Any:
    """An FTS5 query string, computed in SQL: every ``vocabulary`` trigram starting with ``prefix``, OR-ed.

    With no such trigram it is a phrase of three U+0001 characters, which nothing contains.
    """
    term = vocabulary.c.term
    quoted = literal('"') + func.replace(term, '"', '""') + literal('"')
    return (
        select(func.coalesce(func.group_concat(quoted, " OR "), literal(_fts_phrase("\x01" * 3))))
        .where(term >= prefix, term < prefix + "\U0010ffff")
        .scalar_subquery()
    )


def has_cjk(text: str) -> bool:
    """Does ``text`` contain Chinese/Japanese/Korean ideographs or syllables?"""
    return any(
        "\u3040" <= ch <= "\u30ff" or "\u3400" <= ch <= "\u9fff" or "\uac00" <= ch <= "\ud7af"
        or "\uf900" <= ch <= "\ufaff"
        for ch in text
    )


def _starts_with(target: Any, prefix: str) -> Any:
    # a range rather than LIKE 'x%': SQLite's LIKE is case-insensitive and skips the index
    return (target >= prefix) & (target < prefix + "\U0010ffff")


def list_customers(
    session: Session,
    *,
    filters: CustomerFilters | None = None,
    page: int = 1,
    per_page: int = 50,
    sort: str = "updated_at",
    descending: bool = True,
    with_total: bool = True,
    count_cap: int | None = None,
    after: Cursor | None = None,
) -> CustomerPage:
    """One page of customers matching ``filters``, sorted by ``sort``.

    Pass ``after`` (the previous page's ``next_cursor``) to page by keyset; otherwise page
    ``page`` is fetched by offset. ``with_total`` adds a count, capped at ``count_cap`` rows
    when given (``total_capped`` then says the true number may be larger).
    """
    filters = filters or CustomerFilters()
    page = max(1, page)
    per_page = max(1, min(per_page, 500))
    sort = sort if sort in SORTABLE_COLUMNS else "updated_at"
    sort_column = SORTABLE_COLUMNS[sort]
    order = [sort_column.desc(), Customer.id.desc()] if descending else [sort_column.asc(), Customer.id.asc()]
    statement = _grid_statement(session, filters, sort).order_by(*order).limit(per_page + 1)
    keyset = sort not in NULLABLE_SORTS
    if after is not None and keyset:
        position = tuple_(sort_column, Customer.id)
        bound = tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    else:
        statement = statement.offset((page - 1) * per_page)
    rows = session.execute(statement).all()
    items = [_row(row) for row in rows[:per_page]]
    has_next = len(rows) > per_page
    next_cursor = None
    if has_next and keyset:
        last = rows[per_page - 1]
        next_cursor = (getattr(last, sort), last.id)
    total, capped = None, False
    if with_total:
        total = count_customers(session, filters=filters, cap=count_cap)
        capped = count_cap is not None and total > count_cap
        if capped:
            total = count_cap
    return CustomerPage(
        items=items, page=page, per_page=per_page, has_next=has_next, total=total,
        next_cursor=next_cursor, total_capped=capped,
    )


def _grid_statement(session: Session, filters: CustomerFilters, sort: str = "updated_at") -> Select[Any]:
    statement = (
        select(*_GRID_COLUMNS)
        .outerjoin(_OWNER, _OWNER.id == Customer.owner_id)
        .outerjoin(_TEAM, _TEAM.id == Customer.team_id)
    )
    return _planned(session, statement, filters, sort)


def _planned(session: Session, statement: Select[Any], filters: CustomerFilters, sort: str | None) -> Select[Any]:
    """``statement`` filtered by ``filters``, with the index SQLite should read (see :func:`_sqlite_plan`)."""
    hint, dense = _sqlite_plan(session, filters, sort)
    statement = _filtered(statement, filters, _dialect(session), dense_search=dense)
    return statement.with_hint(Customer, hint, dialect_name="sqlite") if hint else statement


def _filter_indexes(filters: CustomerFilters) -> list[tuple[str, str, list[Any]]]:
    """(index, the sort it delivers, the filter's own condition) per indexed filter, most selective kinds first."""
    table_ = Customer.__table__.c
    found: list[tuple[str, str, list[Any]]] = []
    if filters.owner_id is not None or filters.unowned:
        owner = table_.owner_id == filters.owner_id if filters.owner_id is not None else table_.owner_id.is_(None)
        found.append(("ix_customers_tenant_id_owner_id_updated_at", "updated_at", [owner]))
    if filters.created_from or filters.created_to:
        created = []
        if filters.created_from:
            created.append(table_.created_at >= _day_start(filters.created_from))
        if filters.created_to:
            created.append(table_.created_at < _day_start(filters.created_to + dt.timedelta(days=1)))
        found.append((SORT_INDEXES["created_at"], "created_at", created))
    if filters.never_contacted:
        found.append((SORT_INDEXES["last_contacted_at"], "last_contacted_at", [table_.last_contacted_at.is_(None)]))
    elif filters.last_contacted_from or filters.last_contacted_to:
        contacted = []
        if filters.last_contacted_from:
            contacted.append(table_.last_contacted_at >= _day_start(filters.last_contacted_from))
        if filters.last_contacted_to:
            until = _day_start(filters.last_contacted_to + dt.timedelta(days=1))
            contacted.append(table_.last_contacted_at < until)
        found.append((SORT_INDEXES["last_contacted_at"], "last_contacted_at", contacted))
    if filters.industry:
        industry = [table_.industry == filters.industry]
        found.append(("ix_customers_tenant_id_industry_updated_at", "updated_at", industry))
    if filters.region:
        found.append(("ix_customers_tenant_id_region_updated_at", "updated_at", [table_.region == filters.region]))
    if filters.province_code:
        found.append(("ix_customers_tenant_id_province_code_updated_at", "updated_at",
                      [table_.province_code == filters.province_code]))
    if filters.lifecycle_stage:
        found.append((SORT_INDEXES["lifecycle_stage"], "updated_at",
                      [table_.lifecycle_stage == filters.lifecycle_stage]))
    return found


def _search_probe(text: str, tenant_id: int) -> Any:
    """The search candidates for counting only: index-only, tenant-wide (chooses a plan, returns no data)."""
    if _substring_search(text):
        return sqlite_search_candidates(text)
    table_ = Customer.__table__
    return _name_start_ranges(table_, table_.c.id, table_.c.name, text, table_.c.tenant_id == tenant_id)


def _sqlite_plan(session: Session, filters: CustomerFilters, sort: str | None) -> tuple[str | None, bool]:
    """Which index SQLite should read for this page (the filter's when few rows match, else the
    sort's), and whether a text search matches so many rows that it is tested row by row.

    ``sort`` None means "no order wanted" (counting). Whether a filter is selective is decided
    by a capped count over the filter's own index alone (an index-only read of at most a few
    thousand entries, tenant-wide: it chooses a plan and returns no data). Users who see part
    of the tenant read the sort index sparsely, so for them filters count as selective longer.
    """
    actor = actor_of(session)
    if _dialect(session) != "sqlite" or actor is None:
        return None, False
    # a rep sees a few percent of the tenant: reading the sort index finds their rows sparsely
    # (visibility is tested on the index entry, so for a search this costs less than for a filter)
    narrow = not actor.sees_whole_tenant and len(actor.visible_owner_ids) <= 1
    factor = 4 if narrow else 1
    sort_index = SORT_INDEXES.get(sort or "updated_at", SORT_INDEXES["updated_at"])
    text = search_text(filters.search)
    if text and len(text) < MIN_FTS_CHARS and has_cjk(text):
        # OR-ing hundreds of vocabulary trigrams costs tens of ms before the first row: estimate
        # how common the word is from a sample instead, and use the index only when it is rare
        common = _sampled_hits(session, actor.tenant_id, text) >= DENSE_SAMPLE_HITS * (2 if narrow else 1)
        return (f"INDEXED BY {sort_index}", True) if common else ("NOT INDEXED", False)
    if text:
        limit = SMALL_SEARCH * (2 if narrow else 1)
        candidates = _search_probe(text, actor.tenant_id).limit(limit + 1).subquery()
        matches = int(session.scalar(select(func.count()).select_from(candidates)) or 0)
        if matches <= limit:
            return "NOT INDEXED", False  # fetch the few matches by rowid, then sort them
        return f"INDEXED BY {sort_index}", _substring_search(text)
    indexes = _filter_indexes(filters)
    if not indexes:
        return f"INDEXED BY {sort_index}", False
    if sort is None:
        return f"INDEXED BY {indexes[0][0]}", False
    for index, delivers, _ in indexes:
        if delivers == sort:
            return f"INDEXED BY {index}", False  # filters and sorts in one range
    index, _, condition = indexes[0]
    limit = SMALL_SET * factor
    table_ = Customer.__table__
    probe = (
        select(table_.c.id)
        .with_hint(table_, f"INDEXED BY {index}", dialect_name="sqlite")
        .where(table_.c.tenant_id == actor.tenant_id, *condition)
        .limit(limit + 1)
        .subquery()
    )
    small = int(session.scalar(select(func.count()).select_from(probe)) or 0) <= limit
    return (f"INDEXED BY {index}" if small else f"INDEXED BY {sort_index}"), False


def _sampled_hits(session: Session, tenant_id: int, text: str) -> int:
    """How many of the tenant's most recently updated ``SEARCH_SAMPLE`` customers have ``text`` in their name."""
    table_ = Customer.__table__
    sample = (
        select(table_.c.name)
        .with_hint(table_, f"INDEXED BY {SORT_INDEXES['updated_at']}", dialect_name="sqlite")
        .where(table_.c.tenant_id == tenant_id)
        .order_by(table_.c.updated_at.desc())
        .limit(SEARCH_SAMPLE)
        .subquery()
    )
    hits = select(func.count()).select_from(sample).where(sample.c.name.contains(text, autoescape=True))
    return int(session.scalar(hits) or 0)


def _row(row: Any) -> CustomerRow:
    # the grid's columns carry CustomerRow's field names (_GRID_COLUMNS): one mapping, two fields converted
    values = row._asdict()
    values["tags"] = [tag for tag in (values["tags"] or "").split(",") if tag]
    values["custom_fields"] = dict(values["custom_fields"] or {})
    return CustomerRow(**values)


def count_customers(session: Session, *, filters: CustomerFilters | None = None, cap: int | None = None) -> int:
    """How many customers match ``filters`` (within the session's scope).

    With ``cap`` the count stops after ``cap + 1`` rows, so the answer is exact up to
    ``cap`` and "more than ``cap``" beyond it, at the cost of reading at most that many.
    """
    filters = filters or CustomerFilters()
    text = search_text(filters.search)
    match = fts_match_query(text) if text and _dialect(session) == "sqlite" else None
    if match is not None:
        return _count_fulltext_matches(session, filters, match, cap)
    if cap is None:
        return int(session.scalar(_planned(session, select(func.count(Customer.id)), filters, None)) or 0)
    inner = _planned(session, select(Customer.id), filters, None).limit(cap + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(inner)) or 0)


def _count_fulltext_matches(session: Session, filters: CustomerFilters, match: Any, cap: int | None) -> int:
    """SQLite: count a text search by walking the full-text index's matches, each customer fetched by rowid
    and tested for the other filters and the session's visibility; with ``cap``, stop after ``cap + 1``.

    Reads at most min(matches, about cap / the share of matches that pass): a common word stops early
    (a manager passes a third, a rep a few percent), a rare one reads its few matches. Reading the grid's
    sort index instead and testing each row with LIKE read most of the tenant for a word in a few percent
    of names (0.8 s at 1M customers).
    """
    statement = (
        _filtered(
            select(Customer.id).select_from(_FTS).join(Customer, Customer.id == _FTS.c.rowid),
            replace(filters, search=""),
        )
        .where(_FTS_MATCH.match(match))
        # no index of customers: a rowid lookup per match, so the FTS matches drive the join
        .with_hint(Customer, "NOT INDEXED", dialect_name="sqlite")
    )
    if cap is not None:
        statement = statement.limit(cap + 1)
    return int(session.scalar(select(func.count()).select_from(statement.subquery())) or 0)


def iter_customers(
    session: Session,
    *,
    filters: CustomerFilters | None = None,
    sort: str = "updated_at",
    descending: bool = True,
    limit: int | None = None,
    chunk_size: int = 2000,
) -> Iterator[CustomerRow]:
    """Every customer matching ``filters`` in grid order, fetched in chunks (for exports)."""
    filters = filters or CustomerFilters()
    sort_column = SORTABLE_COLUMNS.get(sort, Customer.updated_at)
    order = [sort_column.desc(), Customer.id.desc()] if descending else [sort_column.asc(), Customer.id.asc()]
    statement = _grid_statement(session, filters, sort).order_by(*order)
    if limit is not None:
        statement = statement.limit(limit)
    result = session.execute(statement.execution_options(yield_per=chunk_size))
    for row in result:
        yield _row(row)


def get_customer(session: Session, customer_id: int) -> Customer | None:
    """One customer, if visible to the session's actor."""
    return session.get(Customer, customer_id)


def distinct_values(session: Session, column: str, *, limit: int = 200) -> list[str]:
    """Values in use for ``industry`` or ``region`` (for filter choices)."""
    target = {"industry": Customer.industry, "region": Customer.region}[column]
    return [
        value
        for value in session.scalars(
            select(target).where(target.is_not(None)).group_by(target).order_by(target).limit(limit)
        )
        if value
    ]


def custom_field_definitions(session: Session, entity: str = "customer") -> list[FieldDefinition]:
    """The tenant's custom fields for ``entity``, in display order."""
    return list(
        session.scalars(
            select(FieldDefinition)
            .where(FieldDefinition.entity == entity)
            .order_by(FieldDefinition.position, FieldDefinition.id)
        )
    )
