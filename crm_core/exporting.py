"""CSV and XLSX exports, safe to open in a spreadsheet, named for what they hold.

CSV has no types: a cell starting with ``=``, ``+``, ``-``, ``@`` (or a tab/carriage return)
would run as a formula in Excel or WPS (CSV/formula injection), so such text cells are
prefixed with ``'``. XLSX has types: every text cell is written as a string cell, which a
spreadsheet shows as typed and never evaluates, so a phone number stays ``+86 138…`` with no
apostrophe; characters XML cannot hold (control characters) are dropped there. Numbers,
dates and booleans are written as themselves. Rows are streamed: an export of a large filter
never holds more than one chunk in memory besides the output file.

:func:`export_file_name` names a download by its content and day
(``customers-2026-12-04.xlsx``, ``segment-大客户-2026-12-04.csv``), safe on every system.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
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
    """An XLSX workbook written in openpyxl's streaming (write-only) mode; text as typed string cells."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_sheet_title(sheet_title))

    def cell(value: Any) -> Any:
        if isinstance(value, (list, tuple, set)):
            value = ", ".join(str(item) for item in value)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.replace(tzinfo=None)
        if not isinstance(value, str):
            return value
        # openpyxl reads a leading "=" as a formula; a string cell is shown as typed, never run
        text_cell = WriteOnlyCell(sheet, value=XML_ILLEGAL.sub("", value))
        text_cell.data_type = "s"
        return text_cell

    sheet.append([cell(header) for header in headers])
    for row in rows:
        sheet.append([cell(value) for value in row])
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
"""Characters an XLSX (XML) cell cannot hold; openpyxl refuses a workbook containing them."""

SHEET_TITLE_FORBIDDEN = re.compile(r"[\\/?*\[\]:]")
FILE_NAME_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
NAME_PART_LIMIT = 60


def _sheet_title(title: str) -> str:
    """A worksheet title Excel accepts: no ``\\ / ? * [ ] :``, at most 31 characters."""
    cleaned = SHEET_TITLE_FORBIDDEN.sub(" ", XML_ILLEGAL.sub("", title)).strip().strip("'")
    return cleaned[:31] or "Export"


def file_name_part(text: str) -> str:
    """``text`` as one part of a file name on every system: words joined by '-', no path or
    reserved characters, no leading or trailing dots, at most 60 characters (Chinese kept)."""
    normalised = unicodedata.normalize("NFC", text)
    cleaned = FILE_NAME_FORBIDDEN.sub(" ", normalised)
    words = "-".join(cleaned.split())
    words = re.sub(r"-{2,}", "-", words).strip(".-")[:NAME_PART_LIMIT].strip(".-")
    return words


def export_file_name(kind: str, extension: str, *, name: str | None = None, day: dt.date | None = None) -> str:
    """A download's file name from what it holds and the day: ``segment-大客户-2026-12-04.csv``.

    ``kind`` says what the rows are (customers, segment, deals, funnel); ``name`` the
    user's name for them, when they have one. Safe on Windows, macOS and Linux.
    """
    parts = [file_name_part(kind) or "export"]
    if name and (label := file_name_part(name)):
        parts.append(label)
    parts.append((day or dt.date.today()).isoformat())
    # the day always ends the stem, so no name is a Windows device name (CON, NUL, COM1 …)
    return f"{'-'.join(parts)}.{file_name_part(extension).lower() or 'dat'}"
