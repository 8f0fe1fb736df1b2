"""Reading import files: CSV (any common encoding and delimiter) and XLSX, streamed in chunks.

Real exports are dirty: Excel on a Chinese Windows saves GBK, Excel on a Mac adds a BOM,
European exports use ``;``. The encoding and delimiter are detected from the first bytes,
headers are checked (empty, duplicated), and rows are handed out as string DataFrames of
at most ``chunk_size`` rows whose index is the row number a spreadsheet shows (the header
is row 1), so a failure can point at the row the user sees.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from crm_core.errors import ImportFileRefused

if TYPE_CHECKING:  # pragma: no cover
    import pandas

SAMPLE_BYTES = 256 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024
DEFAULT_CHUNK_ROWS = 10_000
DELIMITERS = [",", ";", "\t", "|"]
ENCODING_LABELS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 (BOM)", "gb18030": "GBK/GB18030"}


@dataclass(frozen=True)
class ImportFile:
    """A file to import: its bytes or path, and what was detected about it."""

    name: str
    source: bytes | Path
    kind: str  # "csv" or "xlsx"
    encoding: str | None
    delimiter: str | None
    headers: list[str]
    sha256: str
    size: int
    sheet: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def encoding_label(self) -> str:
        """UTF-8, UTF-8 (BOM), GBK/GB18030, or the detected codec's name."""
        if self.encoding is None:
            return "XLSX"
        return ENCODING_LABELS.get(self.encoding, self.encoding)

    def open_binary(self) -> IO[bytes]:
        """A fresh binary stream over the file."""
        if isinstance(self.source, Path):
            return open(self.source, "rb")
        return io.BytesIO(self.source)


def detect_encoding(sample: bytes) -> str:
    """``utf-8-sig``, ``utf-8``, ``gb18030`` (which reads GBK) or charset-normalizer's guess.

    Raises ImportFileRefused when the lines of the sample disagree (some UTF-8, some GBK).
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    trimmed = _trim_partial_character(sample)
    try:
        trimmed.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    utf8_lines = other_lines = 0
    for line in trimmed.split(b"\n"):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_lines += 1
        except UnicodeDecodeError:
            other_lines += 1
    if utf8_lines and other_lines:
        raise ImportFileRefused("imports.error.mixed_encoding")
    try:
        trimmed.decode("gb18030")
        return "gb18030"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(trimmed).best()
    if best is None:
        raise ImportFileRefused("imports.error.unknown_encoding")
    return str(best.encoding)


def _trim_partial_character(sample: bytes) -> bytes:
    """Cut the sample at its last newline so a multi-byte character is never split."""
    if len(sample) < SAMPLE_BYTES:
        return sample
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut > 0 else sample


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the first lines into the most, and most consistent, columns."""
    lines = [line for line in text.splitlines()[:50] if line.strip()]
    if not lines:
        return ","
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters="".join(DELIMITERS))
        if dialect.delimiter in DELIMITERS:
            return dialect.delimiter
    except csv.Error:
        pass
    best, best_score = ",", -1.0
    for delimiter in DELIMITERS:
        counts = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        if not counts or max(counts) < 2:
            continue
        consistent = sum(1 for count in counts if count == counts[0]) / len(counts)
        score = consistent * counts[0]
        if score > best_score:
            best, best_score = delimiter, score
    return best


def clean_header(value: object) -> str:
    """A header as the user meant it: NFKC-folded, trimmed, BOM and quotes removed."""
    text = unicodedata.normalize("NFKC", "" if value is None else str(value))
    return text.replace("\ufeff", "").strip().strip('"').strip()


def _check_headers(headers: list[str]) -> list[str]:
    if not headers or all(not header for header in headers):
        raise ImportFileRefused("imports.error.no_header")
    cleaned = [header or f"column_{index + 1}" for index, header in enumerate(headers)]
    seen: set[str] = set()
    repeated = []
    for header in cleaned:
        key = header.casefold()
        if key in seen and header not in repeated:
            repeated.append(header)
        seen.add(key)
    if repeated:
        raise ImportFileRefused("imports.error.duplicate_headers", headers=", ".join(repeated))
    return cleaned


def open_import_file(
    name: str,
    source: bytes | Path,
    *,
    encoding: str | None = None,
    delimiter: str | None = None,
    sheet: str | None = None,
) -> ImportFile:
    """Inspect a CSV or XLSX file: size, hash, encoding, delimiter and headers."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    if size == 0:
        raise ImportFileRefused("imports.error.empty_file")
    if size > MAX_FILE_BYTES:
        raise ImportFileRefused(
            "imports.error.too_large", size_mb=size // (1024 * 1024), max_mb=MAX_FILE_BYTES // (1024 * 1024)
        )
    digest = hashlib.sha256()
    with open(source, "rb") if isinstance(source, Path) else io.BytesIO(source) as stream:
        head = stream.read(SAMPLE_BYTES)
        digest.update(head)
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            digest.update(block)
    is_xlsx = head.startswith(b"PK\x03\x04") or name.lower().endswith((".xlsx", ".xlsm"))
    if is_xlsx:
        headers, sheet_name = _xlsx_headers(source, sheet)
        return ImportFile(
            name, source, "xlsx", None, None, _check_headers(headers), digest.hexdigest(), size, sheet=sheet_name
        )
    if name.lower().endswith(".xls") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileRefused("imports.error.old_excel")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileRefused("imports.error.binary")
    encoding = encoding or detect_encoding(head)
    try:
        text = _trim_partial_character(head).decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise ImportFileRefused("imports.error.unknown_encoding") from error
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ImportFileRefused("imports.error.empty_file")
    delimiter = delimiter or detect_delimiter(text)
    first = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    headers = _check_headers([clean_header(value) for value in first])
    warnings = []
    if len(headers) == 1 and any(other in headers[0] for other in DELIMITERS if other != delimiter):
        warnings.append("imports.warning.one_column")
    return ImportFile(name, source, "csv", encoding, delimiter, headers, digest.hexdigest(), size, warnings=warnings)


def _xlsx_headers(source: bytes | Path, sheet: str | None) -> tuple[list[str], str]:
    workbook = _open_workbook(source)
    try:
        worksheet = workbook[sheet] if sheet else workbook.worksheets[0]
        for row in worksheet.iter_rows(values_only=True):
            if any(value not in (None, "") for value in row):
                headers = [clean_header(value) for value in row]
                while headers and not headers[-1]:
                    headers.pop()
                return headers, worksheet.title
        raise ImportFileRefused("imports.error.empty_file")
    finally:
        workbook.close()


def _open_workbook(source: bytes | Path):  # type: ignore[no-untyped-def]
    from openpyxl import load_workbook

    try:
        # formulas are read as their text (=SUM(...)) so that validation can refuse them
        return load_workbook(
            source if isinstance(source, Path) else io.BytesIO(source), read_only=True, data_only=False
        )
    except Exception as error:  # zipfile.BadZipFile, KeyError, InvalidFileException …
        raise ImportFileRefused("imports.error.bad_xlsx") from error


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return (
            value.isoformat(sep=" ")
            if (value.hour, value.minute, value.second) != (0, 0, 0)
            else value.date().isoformat()
        )
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def count_rows(file: ImportFile) -> int | None:
    """About how many data rows the file holds, read cheaply (for a progress bar's total); None when unknown.

    CSV: its line breaks less the header's (a quoted cell spanning lines or a blank line makes
    it a little high). XLSX: the sheet's stated dimension less the header row.
    """
    if file.kind == "xlsx":
        workbook = _open_workbook(file.source)
        try:
            worksheet = workbook[file.sheet] if file.sheet else workbook.worksheets[0]
            rows = worksheet.max_row
        finally:
            workbook.close()
        return None if rows is None else max(rows - 1, 0)
    breaks = 0
    last = b""
    with file.open_binary() as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            breaks += block.count(b"\n")  # never part of a multi-byte UTF-8 or GB18030 character
            last = block
    return max(breaks + (0 if last.endswith(b"\n") else 1) - 1, 0)


def iter_chunks(file: ImportFile, *, chunk_size: int = DEFAULT_CHUNK_ROWS) -> Iterator[pandas.DataFrame]:
    """The data rows as string DataFrames (blank cells are ""), indexed by spreadsheet row number."""
    if file.kind == "xlsx":
        yield from _xlsx_chunks(file, chunk_size)
        return
    import pandas as pd

    stream = file.open_binary()
    try:
        reader = pd.read_csv(
            stream,
            sep=file.delimiter,
            encoding=file.encoding,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=0,
            names=file.headers,
            skip_blank_lines=True,
            chunksize=chunk_size,
            engine="c",
            on_bad_lines="error",
        )
        next_row = 2
        for chunk in reader:
            chunk.index = range(next_row, next_row + len(chunk))
            next_row += len(chunk)
            yield chunk
    except UnicodeDecodeError as error:
        raise ImportFileRefused("imports.error.mixed_encoding") from error
    except pd.errors.ParserError as error:
        raise ImportFileRefused("imports.error.bad_csv", detail=str(error).strip()[:200]) from error
    finally:
        stream.close()


def _xlsx_chunks(file: ImportFile, chunk_size: int) -> Iterator[pandas.DataFrame]:
    import pandas as pd

    workbook = _open_workbook(file.source)
    try:
        worksheet = workbook[file.sheet] if file.sheet else workbook.worksheets[0]
        width = len(file.headers)
        rows: list[list[str]] = []
        numbers: list[int] = []
        header_seen = False
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            values = [_cell_text(value) for value in row[:width]]
            if not any(value.strip() for value in values):
                continue
            if not header_seen:
                header_seen = True
                continue
            values += [""] * (width - len(values))
            rows.append(values)
            numbers.append(number)
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows, columns=file.headers, index=numbers, dtype=object)
                rows, numbers = [], []
        if rows:
            yield pd.DataFrame(rows, columns=file.headers, index=numbers, dtype=object)
    finally:
        workbook.close()


def preview(file: ImportFile, rows: int = 20) -> pandas.DataFrame:
    """The first ``rows`` data rows."""
    import pandas as pd

    for chunk in iter_chunks(file, chunk_size=rows):
        return chunk.head(rows)
    return pd.DataFrame(columns=file.headers)
