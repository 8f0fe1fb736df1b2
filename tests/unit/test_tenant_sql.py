"""The reading behind the Citus capture test (decision 0057): which tables a statement leaves unpinned."""

from __future__ import annotations

import pytest

from tests.tenant_sql import read_statement, shape_of

DISTRIBUTED = {"customers", "contacts", "opportunities", "tasks"}


@pytest.mark.parametrize(("sql", "unpinned"), [
    # the access layer's criteria: one tenant
    ("SELECT customers.id FROM customers WHERE customers.tenant_id = %(tenant_id_1)s::INTEGER "
     "AND customers.id = %(pk_1)s::INTEGER", set()),
    # the unit of work before decision 0057: by id and version only
    ("UPDATE customers SET name=%(name)s::VARCHAR, tenant_id=%(tenant_id)s::INTEGER "
     "WHERE customers.id = %(customers_id)s::INTEGER AND customers.version = %(customers_version)s::INTEGER",
     {"customers"}),
    ("UPDATE customers SET name=%(name)s WHERE customers.tenant_id = %(t)s AND customers.id = %(i)s", set()),
    ("DELETE FROM tasks WHERE tasks.id IN (%(id_1)s, %(id_2)s)", {"tasks"}),
    # an INSERT names its tenant among its values
    ("INSERT INTO contacts (tenant_id, name) VALUES (%(tenant_id)s, %(name)s), (%(t2)s, %(n2)s)", set()),
    ("INSERT INTO contacts (name) VALUES (%(name)s)", {"contacts"}),
    # a join on the tenant pins the joined table; a join on the id alone does not
    ("SELECT c.id FROM customers AS c JOIN contacts AS k ON k.customer_id = c.id AND k.tenant_id = c.tenant_id "
     "WHERE c.tenant_id = 3", set()),
    ("SELECT c.id FROM customers AS c JOIN contacts AS k ON k.customer_id = c.id WHERE c.tenant_id = 3",
     {"contacts"}),
    ("SELECT c.id FROM customers AS c, opportunities WHERE c.tenant_id = 3 AND c.id = opportunities.customer_id",
     {"opportunities"}),
    # one value in a list is one tenant; several are several shards
    ("SELECT contacts.id FROM contacts WHERE contacts.tenant_id IN (%(t)s::INTEGER)", set()),
    ("SELECT contacts.id FROM contacts WHERE contacts.tenant_id IN (%(a)s, %(b)s)", {"contacts"}),
    # a correlated subquery on another table needs its own pin
    ("SELECT customers.id FROM customers WHERE customers.tenant_id = 1 AND EXISTS (SELECT * FROM tasks "
     "WHERE tasks.customer_id = customers.id)", {"tasks"}),
    # hand-written SQL, unqualified; and the value on the left
    ("UPDATE customers SET name = :name WHERE tenant_id = :tenant AND id = :id", set()),
    ("SELECT EXTRACT(year FROM customers.created_at) FROM customers WHERE 5 = customers.tenant_id", set()),
    # no distributed table: nothing to pin
    ("SELECT users.id FROM users WHERE users.username = %(u)s", set()),
])
def test_a_statement_is_pinned_when_each_distributed_table_names_one_tenant(sql: str, unpinned: set[str]) -> None:
    assert set(read_statement(sql, DISTRIBUTED).unpinned) == unpinned


def test_shapes_fold_values_lists_and_rows_so_one_statement_has_one_shape() -> None:
    one = "SELECT t.id FROM tasks AS t WHERE t.id IN (%(a)s::INTEGER, %(b)s::INTEGER) AND t.title = 'x'"
    other = "SELECT t.id FROM tasks AS t WHERE t.id IN (%(c)s::INTEGER) AND t.title = 'y'"
    assert shape_of(one) == shape_of(other) == "select t.id from tasks as t where t.id in (?) and t.title = ?"
    rows = "INSERT INTO tasks (tenant_id, title) VALUES (%(a)s, %(b)s), (%(c)s, %(d)s)"
    assert shape_of(rows) == shape_of("INSERT INTO tasks (tenant_id, title) VALUES (%(a)s, %(b)s)")
    assert read_statement(one, DISTRIBUTED).key == read_statement(other, DISTRIBUTED).key
