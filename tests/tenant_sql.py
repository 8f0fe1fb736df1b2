"""Does an SQL statement name its tenant? The reading behind the Citus capture test (decision 0057).

Under Citus, with every tenant-scoped table distributed by ``tenant_id``, a statement is routed to one node
only when each distributed table it reads or writes is pinned to one tenant: ``t.tenant_id = <value>``, or
joined on ``t.tenant_id = u.tenant_id`` to a table that is (co-located tables, same shard). Anything else is
sent to every shard. An INSERT names its tenant as a value of the ``tenant_id`` column.

The statement is read as the server receives it (``before_cursor_execute``), so ORM queries, the unit of
work's flushes, Core and ``text()`` SQL are all read the same way. A small tokenizer is enough because
SQLAlchemy's compiler writes table references and predicates in a few regular forms (``FROM t AS a``,
``a.tenant_id = %(p)s``); a hand-written ``text()`` is held to the same forms. The reading is conservative in
one direction only: a pin anywhere in the statement (also under an OR, or in a subquery of the same table
name) counts, so it can miss a fan-out that a real planner would see, never invent one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<string>'(?:[^']|'')*')
  | (?P<param>%\([^)]*\)s|%s|\?|(?<!:):[A-Za-z_][A-Za-z0-9_]*)
  | (?P<number>\b\d+(?:\.\d+)?\b)
  | (?P<ident>"(?:[^"]|"")+"|`[^`]+`|[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>::|<>|!=|<=|>=|\|\||[=(),.;<>*+\-/%\[\]])
""", re.VERBOSE)

_KEYWORDS = {
    "where", "on", "using", "join", "inner", "left", "right", "full", "outer", "cross", "lateral", "group", "order",
    "having", "limit", "offset", "union", "except", "intersect", "returning", "set", "values", "for", "window",
    "select", "from", "and", "or", "not", "natural", "fetch", "default", "as", "with", "straight_join",
}
_VALUE = {"param", "number", "string"}
_TYPE_WORDS = {"integer", "bigint", "smallint", "varchar", "text", "numeric", "boolean", "date", "json", "jsonb",
               "timestamp", "without", "with", "time", "zone", "float", "double", "precision", "uuid", "interval"}


@dataclass(frozen=True)
class Reading:
    """What one statement does to the distributed tables."""

    kind: str  # select, insert, update, delete, other
    tables: frozenset[str]  # the distributed tables it names
    unpinned: frozenset[str]  # those not pinned to one tenant (an INSERT target without a tenant_id value)
    shape: str  # the statement with every value, list and repeated VALUES row folded: one line per shape

    @property
    def fans_out(self) -> bool:
        return bool(self.unpinned)

    @property
    def key(self) -> str:
        """A short, stable name of the shape (for the reviewed list)."""
        return hashlib.sha1(self.shape.encode()).hexdigest()[:12]


def _tokens(sql: str) -> list[tuple[str, str]]:
    """The statement's tokens, identifiers lower-cased and unquoted, casts of values dropped (``? :: INTEGER``)."""
    out: list[tuple[str, str]] = []
    in_cast = False
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup or ""
        text = match.group()
        if kind == "ident":
            text = text.strip('"`').lower()
            if in_cast and text in _TYPE_WORDS:
                continue
        in_cast = text == "::" or (in_cast and text in _TYPE_WORDS)
        if text == "::":
            continue
        out.append((kind, text))
    return out


def shape_of(sql: str) -> str:
    """``sql`` with values as ``?``, ``IN``/``VALUES`` lists folded and spaces collapsed."""
    parts: list[str] = []
    for kind, text in _tokens(sql):
        parts.append("?" if kind in _VALUE else text)
    shape = " ".join(parts)
    shape = re.sub(r"\? (?:, \? )+", "? ", shape + " ").strip()  # IN (?, ?, ?) → IN (?)
    shape = re.sub(r"(\( [^()]* \))(?: , \1)+", r"\1", shape)  # VALUES (…), (…) → VALUES (…)
    return shape.replace(" . ", ".").replace("( ", "(").replace(" )", ")").replace(" ,", ",")


def _skip_parens(tokens: list[tuple[str, str]], at: int) -> int:
    depth = 0
    for index in range(at, len(tokens)):
        if tokens[index][1] == "(":
            depth += 1
        elif tokens[index][1] == ")":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(tokens)


def _without_set_clause(tokens: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """An UPDATE's (or an upsert's) assignments are not predicates: drop ``SET … `` up to its WHERE/FROM."""
    out: list[tuple[str, str]] = []
    index = 0
    while index < len(tokens):
        if tokens[index] == ("ident", "set"):
            depth = 0
            index += 1
            while index < len(tokens):
                text = tokens[index][1]
                depth += text == "("
                depth -= text == ")"
                if depth < 0 or (depth == 0 and text in ("where", "from", "returning")):
                    break
                index += 1
            continue
        out.append(tokens[index])
        index += 1
    return out


def read_statement(sql: str, distributed: Collection[str]) -> Reading:
    """Read ``sql``: which distributed tables it names and which of them no tenant equality pins."""
    tokens = _tokens(sql)
    words = [text for kind, text in tokens if kind == "ident"]
    kind = next((word for word in words if word in ("select", "insert", "update", "delete")), "other")
    if words and words[0] == "with":  # WITH … SELECT/INSERT: the main statement's verb is the last one
        kind = next((word for word in reversed(words) if word in ("select", "insert", "update", "delete")), kind)
    aliases: dict[str, str] = {}  # alias → distributed table
    inserted: dict[str, bool] = {}  # INSERT target → names tenant_id among its columns
    index = 0
    while index < len(tokens):
        text = tokens[index][1]
        if tokens[index][0] == "ident" and text in ("from", "join", "update", "into"):
            verb = text
            index += 1
            while index < len(tokens):
                if tokens[index][1] == "(":  # a subquery: its own FROM is read when we get there
                    break
                kind_, name = tokens[index]
                following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
                if kind_ != "ident" or following == "." or name not in distributed:
                    break
                alias = name
                index += 1
                if index < len(tokens) and tokens[index][1] == "as":
                    index += 1
                if (index < len(tokens) and tokens[index][0] == "ident" and tokens[index][1] not in _KEYWORDS
                        and verb != "into"):
                    alias = tokens[index][1]
                    index += 1
                aliases[alias] = name
                if verb == "into":
                    end = _skip_parens(tokens, index) if index < len(tokens) and tokens[index][1] == "(" else index
                    inserted[alias] = ("ident", "tenant_id") in tokens[index:end]
                if verb == "from" and index < len(tokens) and tokens[index][1] == ",":
                    index += 1
                    continue
                break
            continue
        index += 1
    if not aliases:
        return Reading(kind, frozenset(), frozenset(), shape_of(sql))
    predicates = _without_set_clause(tokens)
    pinned: set[str] = {alias for alias, names_tenant in inserted.items() if names_tenant}
    unqualified_pin = False
    joins: list[tuple[str, str]] = []
    for at in range(len(predicates)):
        if predicates[at] != ("ident", "tenant_id"):
            continue
        qualified = at >= 2 and predicates[at - 1][1] == "."
        owner = predicates[at - 2][1] if qualified else None
        # "<col> = <value>" or "<value> = <col>"; "<col> IN (<one value>)"
        after = predicates[at + 1:at + 5]
        before = predicates[max(0, at - 5):at - 2 if qualified else at]
        other: str | None = None
        valued = False
        if after and after[0][1] == "=":
            if len(after) > 1 and after[1][0] in _VALUE:
                valued = True
            elif len(after) > 3 and after[2][1] == "." and after[3][1] == "tenant_id":
                other = after[1][1]
        elif (len(after) >= 4 and after[0][1] == "in" and after[1][1] == "(" and after[2][0] in _VALUE
              and after[3][1] == ")"):
            valued = True
        if len(before) >= 2 and before[-1][1] == "=" and before[-2][0] in _VALUE:
            valued = True
        if valued:
            if owner is None:
                unqualified_pin = True
            else:
                pinned.add(owner)
        elif owner is not None and other is not None:
            joins.append((owner, other))
    if unqualified_pin:
        pinned.update(aliases)
    changed = True
    while changed:  # t.tenant_id = u.tenant_id with u pinned pins t (co-located tables, same shard)
        changed = False
        for left, right in joins:
            for a, b in ((left, right), (right, left)):
                if a in pinned and b not in pinned:
                    pinned.add(b)
                    changed = True
    unpinned = frozenset(aliases[alias] for alias in aliases if alias not in pinned)
    return Reading(kind, frozenset(aliases.values()), unpinned, shape_of(sql))
