"""Export of the grid's current filter: only what the actor may see, translated, formulas neutralised."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from crm_core.db import Database
from crm_core.queries.customer_export import export_customers
from crm_core.queries.customers import CustomerFilters
from crm_core.services.custom_fields import FieldDefinitionInput, create_field
from tests.factories import build_world, create_random_customer, customer_named_by_sql


def test_a_csv_export_holds_the_filtered_visible_rows_with_formulas_neutralised(db: Database) -> None:
    world = build_world(db)
    create_field(db, world.admin, FieldDefinitionInput("budget", "Budget", "预算", "number"))
    customer_named_by_sql(db, world.rep, "=HYPERLINK(\"http://evil\")", industry="Retail",
                          custom_fields={"budget": "10"})
    create_random_customer(db, world.rep, name="张三科技", industry="Retail", lifecycle_stage="customer")
    create_random_customer(db, world.rep, name="Other industry", industry="Finance")
    create_random_customer(db, world.rep_other_team, name="Not visible", industry="Retail")
    data = export_customers(db, world.rep, filters=CustomerFilters(industry="Retail"),
                            columns=["name", "lifecycle_stage", "custom.budget"], file_format="csv", lang="zh-CN",
                            sort="name", descending=False)
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ["ID", "名称", "生命周期阶段", "预算"]
    body = sorted(row[1:] for row in rows[1:])
    assert body == [["'=HYPERLINK(\"http://evil\")", "潜客", "10"], ["张三科技", "成交客户", ""]]


def test_an_xlsx_export_has_one_row_per_customer_and_text_cells_stay_text(db: Database) -> None:
    world = build_world(db)
    for name in ("+1 555", "@sum", "Plain"):
        customer_named_by_sql(db, world.rep, name)
    data = export_customers(db, world.rep, filters=CustomerFilters(), columns=["name", "owner"], file_format="xlsx")
    sheet = load_workbook(io.BytesIO(data)).active
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[0] == ["ID", "Name", "Owner"]
    assert sorted(row[1] for row in values[1:]) == ["+1 555", "@sum", "Plain"]  # typed string cells, as typed
    assert {cell.data_type for row in sheet.iter_rows(min_row=2) for cell in row[1:]} == {"s"}
    assert {row[2] for row in values[1:]} == {"Rita Rep"}
