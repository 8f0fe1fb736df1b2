"""Rules every page keeps, read from the source: a table's empty cell reads "—", never Streamlit's "None"."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("crm_ui/*.py"), ROOT / "app.py"])


def dataframe_calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr == "dataframe" and isinstance(node.func.value, ast.Name) and node.func.value.id == "st"]


def test_every_table_writes_an_empty_cell_as_a_dash() -> None:
    """Streamlit writes an empty number or date cell "None" in every language unless the table names a placeholder."""
    missing = [f"{path.relative_to(ROOT)}:{call.lineno}" for path in SOURCES for call in dataframe_calls(path)
               if not any(keyword.arg == "placeholder" for keyword in call.keywords)]
    assert sum(len(dataframe_calls(path)) for path in SOURCES) > 20  # the scan finds the tables
    assert not missing, f"st.dataframe without placeholder=EMPTY: {missing}"
