"""CSV and XLSX exports, safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/carriage return) would run as a
formula in Excel or WPS (CSV/formula injection); such text cells are prefixed with ``'``.
Numbers, dates and booleans are written as themselves. Rows are streamed: an export of a
large filter never holds more than one chunk in memory besides the output file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Make a text value inert in spreadsheets; leave numbers, dates and None alone."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple, set)):
        value = ", ".join(str(item) for item in value)
    if isinstance(value, Decimal):
        return value
    return neutralise(value)


def to_csv(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a BOM, so Excel opens Chinese text correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise(header) for header in headers])
    for row in rows:
        writer.writerow(["" if value is None else _cell(value) for value in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, sheet_title: str = "Export") -> bytes:
    """An XLSX workbook written in openpyxl's streaming (write-only) mode."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=sheet_title[:31] or "Export")
    sheet.append([neutralise(header) for header in headers])
    for row in rows:
        cells = []
        for value in row:
            value = _cell(value)
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.replace(tzinfo=None)
            if isinstance(value, str):
                # openpyxl itself would treat a leading "=" as a formula; neutralise() already
                # prefixed those, and this forces every text cell to be stored as a string
                from openpyxl.cell import WriteOnlyCell

                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()
