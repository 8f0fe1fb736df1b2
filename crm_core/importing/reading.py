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
import itertools
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crm_core.errors import ImportFileRefused

if TYPE_CHECKING:  # pragma: no cover
    import pandas

SAMPLE_BYTES = 256 * 1024
MAX_FILE_BYTES = 256 * 1024 * 1024
DEFAULT_CHUNK_ROWS = 10_000
DELIMITERS = [",", ";", "\t", "|"]
DELIMITER_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}
ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (BOM)",
    "gb18030": "GBK/GB18030",
    "cp1252": "Western (Windows-1252)",
}
EXTRA_COLUMN = "\u2026"
"""The column of a chunk that holds what a row has beyond the header's columns (joined by the
delimiter; "" when nothing). No header can be named so: NFKC folds U+2026 to "..."."""
MAX_EXTRA_FIELDS = 4096
"""A row with more fields than this beyond the header's makes the file unreadable (no row rejection)."""
XLSX_MAX_UNCOMPRESSED = 200 * 1024 * 1024
"""The most a workbook's parts may inflate to (the sum of their uncompressed sizes)."""
XLSX_MAX_RATIO = 100
"""… and the most they may inflate relative to the file (a text-only workbook compresses ~10×).
Above either, the workbook is refused before openpyxl opens it: a 266 KB file whose shared
strings inflate to 76 MB kept the server busy for minutes."""


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
    line_end: str = "\n"  # "\r" for a file with old-Mac line endings (CR only)
    header_row: int = 1  # the row (1-based) that holds the headers: a report's title may stand above

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
    """``utf-8-sig``, ``utf-8``, ``gb18030`` (which reads GBK), ``cp1252`` or charset-normalizer's guess.

    GB18030 decodes almost any bytes, so it is taken only when the text reads as Chinese
    (:func:`_reads_as_chinese`): a Western (``Müller``), Japanese or Korean file decoded as
    GB18030 gives CJK characters that no Chinese text holds. Western text comes next
    (Windows-1252: what Excel saves on a Western Windows), then charset-normalizer.

    Raises ImportFileRefused when the lines of the sample disagree (some UTF-8, some GBK) or
    when the bytes could be Chinese or Korean alike (``imports.error.ambiguous_encoding``: the
    user picks the encoding).
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
    chinese = _reads_as_chinese(trimmed)
    if chinese is None:
        raise ImportFileRefused("imports.error.ambiguous_encoding")
    if chinese:
        return "gb18030"
    if _reads_as_western(trimmed):
        return "cp1252"
    from charset_normalizer import from_bytes

    best = from_bytes(trimmed).best()
    if best is None:
        raise ImportFileRefused("imports.error.unknown_encoding")
    return str(best.encoding)


def _is_chinese_character(char: str) -> bool:
    """A CJK ideograph, CJK punctuation or a full-width form: what Chinese text is made of (beside ASCII)."""
    code = ord(char)
    return 0x4E00 <= code <= 0x9FFF or 0x3000 <= code <= 0x303F or 0xFF00 <= code <= 0xFFEF or code == 0xB7


def _reads_as_chinese(data: bytes) -> bool | None:
    """True when ``data`` reads as GBK/GB18030 Chinese, False when not, None when it could be Korean as well.

    Chinese text saved as GBK is made (beside ASCII) of GB2312 characters: two bytes, both in
    A1–FE. A Western file decoded as GB18030 pairs an accented letter with the ASCII after
    it (``ü`` + ``l`` → 黮, second byte below A1); Shift-JIS kana and most kanji start below A1.
    EUC-KR's Hangul sit exactly on GB2312's first rows (B0–C8): bytes whose every character
    starts there could be either, and only the user knows.
    """
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        return False
    if not all(char.isascii() or _is_chinese_character(char) for char in text):
        return False
    pairs = gb2312 = korean_rows = 0
    position, size = 0, len(data)
    while position < size:
        byte = data[position]
        if byte < 0x80:
            position += 1
            continue
        if position + 1 < size and 0x30 <= data[position + 1] <= 0x39:  # a GB18030 four-byte character
            pairs += 1
            position += 4
            continue
        pairs += 1
        second = data[position + 1] if position + 1 < size else 0
        if 0xA1 <= byte <= 0xF7 and 0xA1 <= second <= 0xFE:
            gb2312 += 1
            korean_rows += 0xB0 <= byte <= 0xC8
        position += 2
    if not pairs or gb2312 < 0.8 * pairs:
        return False
    if korean_rows == pairs and _decodes(data, "euc_kr"):
        return None
    return True


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


_WESTERN_SIGNS = set("€‚„…†‡ˆ‰‹›‘’“”•–—˜™¡¢£¤¥¦§¨©ª«¬\xad®¯°±²³´µ¶·¸¹º»¼½¾¿×÷\xa0")


def _reads_as_western(data: bytes) -> bool:
    """Does ``data`` read as Windows-1252 text whose non-ASCII characters are Latin letters or common signs?"""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return False
    letters = 0
    for char in text:
        if char.isascii():
            continue
        if "\u00c0" <= char <= "\u024f" and char not in "×÷":
            letters += 1
        elif char not in _WESTERN_SIGNS:
            return False
    # one or two accented letters in a row is how Western words look (Müller, Ææ); GBK Chinese read
    # as Windows-1252 is runs of two bytes per character ("ÕÅÈý" for 张三)
    return letters > 0 and max((len(run) for run in _NON_ASCII_RUN.findall(text)), default=0) <= 2


_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


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
        check_xlsx_size(source, size)
        headers, sheet_name, header_row = _xlsx_headers(source, sheet)
        return ImportFile(
            name,
            source,
            "xlsx",
            None,
            None,
            _check_headers(headers),
            digest.hexdigest(),
            size,
            sheet=sheet_name,
            header_row=header_row,
            warnings=["imports.warning.title_rows"] if header_row > 1 else [],
        )
    if name.lower().endswith(".xls") or head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileRefused("imports.error.old_excel")
    if b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileRefused("imports.error.binary")
    if size > len(head) and not any(end in head for end in (b"\n", b"\r")):
        # pandas would read it, but the header alone would be longer than any cell may be
        raise ImportFileRefused("imports.error.no_line_break", kb=SAMPLE_BYTES // 1024)
    line_end = "\r" if b"\r" in head and b"\n" not in head else "\n"  # old Mac: CR only
    encoding = encoding or detect_encoding(head if line_end == "\n" else head.replace(b"\r", b"\n"))
    try:
        text = _trim_partial_character(head if line_end == "\n" else head.replace(b"\r", b"\n")).decode(encoding)
    except (UnicodeDecodeError, LookupError) as error:
        raise ImportFileRefused("imports.error.unknown_encoding") from error
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ImportFileRefused("imports.error.empty_file")
    detected = detect_delimiter(text)
    if delimiter:
        delimiter = _chosen_delimiter(delimiter)
    try:
        first = next(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter or detected), [])
    except csv.Error as error:
        raise ImportFileRefused("imports.error.bad_csv", detail=str(error).strip()[:200]) from error
    if delimiter and delimiter != detected and len(first) == 1:
        detected_first = next(csv.reader(io.StringIO(text, newline=None), delimiter=detected), [])
        if len(detected_first) > 1:
            # the chosen delimiter splits nothing where the detected one splits the header
            raise ImportFileRefused(
                "imports.error.delimiter_mismatch", chosen=_delimiter_name(delimiter), found=_delimiter_name(detected)
            )
    delimiter = delimiter or detected
    header_row = _csv_header_row(text, delimiter)
    if header_row > 1:
        reader = csv.reader(io.StringIO(text, newline=None), delimiter=delimiter)
        first = next(itertools.islice(reader, header_row - 1, None))
    headers = _check_headers([clean_header(value) for value in first])
    warnings = ["imports.warning.title_rows"] if header_row > 1 else []
    if len(headers) == 1 and any(other in headers[0] for other in DELIMITERS if other != delimiter):
        warnings.append("imports.warning.one_column")
    return ImportFile(
        name,
        source,
        "csv",
        encoding,
        delimiter,
        headers,
        digest.hexdigest(),
        size,
        warnings=warnings,
        line_end=line_end,
        header_row=header_row,
    )


def _csv_header_row(text: str, delimiter: str) -> int:
    """The record (1-based; a blank line is one) holding a CSV's header: 1, or the first with more than one
    filled cell when up to :data:`MAX_TITLE_ROWS` rows of one cell (a report's title) stand above it.

    The XLSX rule, with one more condition because a CSV's cells are only split by a delimiter:
    the rows below the header must be as wide as a table's (most of the next ten have more than one
    cell). "name / Acme / Acme, Inc / Beta" is a one-column file with a stray comma, not a title.
    """
    try:
        rows = list(itertools.islice(csv.reader(io.StringIO(text, newline=None), delimiter=delimiter), 64))
    except csv.Error:
        return 1
    single_rows = 0
    for number, row in enumerate(rows[: TITLE_ROWS + MAX_TITLE_ROWS], start=1):
        filled = sum(1 for cell in row if cell.strip())
        if not filled:
            continue
        if filled > 1:
            if single_rows == 0:
                return 1
            below = [other for other in rows[number: number + 10] if any(cell.strip() for cell in other)]
            wide = sum(1 for other in below if sum(1 for cell in other if cell.strip()) > 1)
            return number if below and wide * 2 > len(below) else 1
        single_rows += 1
        if single_rows > MAX_TITLE_ROWS:
            return 1
    return 1


def _chosen_delimiter(chosen: str) -> str:
    """A delimiter the user typed or picked (``;``, ``tab``, ``\\t``), or ImportFileRefused when it cannot be one."""
    delimiter = DELIMITER_NAMES.get(chosen.strip().casefold(), chosen) if chosen.strip() else chosen
    if len(delimiter) != 1 or delimiter in "\r\n\"" or delimiter.isalnum():
        raise ImportFileRefused("imports.error.bad_delimiter", delimiter=chosen[:10])
    return delimiter


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "Tab", " ": "Space"}.get(delimiter, delimiter)


def check_xlsx_size(source: bytes | Path, size: int) -> None:
    """Refuse a workbook whose parts inflate beyond :data:`XLSX_MAX_UNCOMPRESSED` or :data:`XLSX_MAX_RATIO` × its size.

    Read from the zip's directory (the sizes each part declares) before anything is inflated;
    openpyxl would otherwise unpack and parse, say, 76 MB of shared strings from a 266 KB file.
    A part that inflates to more than it declared fails the zip's own check when read.
    """
    import zipfile

    try:
        with zipfile.ZipFile(source if isinstance(source, Path) else io.BytesIO(source)) as archive:
            inflated = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise ImportFileRefused("imports.error.bad_xlsx") from error
    if inflated > XLSX_MAX_UNCOMPRESSED or inflated > XLSX_MAX_RATIO * max(size, 1):
        raise ImportFileRefused(
            "imports.error.xlsx_too_large",
            size_mb=round(inflated / (1024 * 1024)),
            max_mb=XLSX_MAX_UNCOMPRESSED // (1024 * 1024),
        )


TITLE_ROWS = 10
"""How far below a title (a row with one cell) the header of a sheet or CSV file is looked for."""
MAX_TITLE_ROWS = 2
"""Rows with one filled cell (a title, a subtitle) that may stand above the header; more make a one-column sheet."""


def _worksheet(workbook: Any, sheet: str | None) -> Any:
    """The named sheet, else the first visible one (a hidden first sheet holds lookups, not data)."""
    if sheet:
        if sheet not in workbook.sheetnames:
            raise ImportFileRefused("imports.error.no_sheet", sheet=sheet[:100])
        return workbook[sheet]
    for worksheet in workbook.worksheets:
        if getattr(worksheet, "sheet_state", "visible") == "visible":
            return worksheet
    raise ImportFileRefused("imports.error.empty_file")


def _xlsx_headers(source: bytes | Path, sheet: str | None) -> tuple[list[str], str, int]:
    """The header cells, the sheet's name and the header's row number.

    A report's title above the header (one filled cell in A1, maybe a blank row, then the
    header) is not the header: leading rows with a single filled cell are passed over when a
    row with more filled cells follows within :data:`TITLE_ROWS` rows.
    """
    workbook = _open_workbook(source)
    try:
        worksheet = _worksheet(workbook, sheet)
        first: tuple[int, list[str]] | None = None
        single_rows = 0
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            filled = sum(1 for value in row if value not in (None, ""))
            if not filled:
                continue
            headers = [clean_header(value) for value in row]
            while headers and not headers[-1]:
                headers.pop()
            if filled > 1:
                return headers, worksheet.title, number
            single_rows += 1
            if first is None:
                first = (number, headers)
            if number - first[0] > TITLE_ROWS or single_rows > MAX_TITLE_ROWS:
                break
        if first is None:
            raise ImportFileRefused("imports.error.empty_file")
        return first[1], worksheet.title, first[0]  # one column throughout: the first row is its header
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
            rows = _worksheet(workbook, file.sheet).max_row
        finally:
            workbook.close()
        return None if rows is None else max(rows - file.header_row, 0)
    breaks = 0
    last = b""
    end = file.line_end.encode()
    with file.open_binary() as stream:
        for block in iter(lambda: stream.read(1024 * 1024), b""):
            breaks += block.count(end)  # never part of a multi-byte UTF-8 or GB18030 character
            last = block
    return max(breaks + (0 if last.endswith(end) else 1) - file.header_row, 0)


def iter_chunks(file: ImportFile, *, chunk_size: int = DEFAULT_CHUNK_ROWS) -> Iterator[pandas.DataFrame]:
    """The data rows as string DataFrames (blank cells are ""), indexed by spreadsheet row number.

    Each frame has the file's headers as columns and one more, :data:`EXTRA_COLUMN`: what a
    row holds beyond the header's columns ("" for none; a trailing delimiter adds nothing).
    A row with more fields is refused as that row by the suites, never shifted: pandas, given
    a first data row longer than the header, would otherwise take its first column as the
    index and move every column of every row one to the left.
    """
    if file.kind == "xlsx":
        yield from _xlsx_chunks(file, chunk_size)
        return
    import pandas as pd

    extra = _first_row_extra(file)
    yielded = file.header_row  # the last row number handed out
    while True:
        try:
            for chunk in _csv_chunks(file, chunk_size, extra):
                if chunk.empty or chunk.index[-1] <= yielded:
                    continue
                chunk = chunk[chunk.index > yielded]
                yielded = int(chunk.index[-1])
                yield chunk
            return
        except pd.errors.ParserError as error:
            # a row longer than the columns asked for: read again with room for it, past what was handed out
            wider = _FIELDS_SEEN.search(str(error))
            if wider is None or extra >= MAX_EXTRA_FIELDS:
                raise ImportFileRefused("imports.error.bad_csv", detail=str(error).strip()[:200]) from error
            extra = min(max(int(wider.group(1)) - len(file.headers), extra * 4), MAX_EXTRA_FIELDS)
        except _FirstRowTooLong:
            if extra >= MAX_EXTRA_FIELDS:
                raise ImportFileRefused(
                    "imports.error.bad_csv", detail=f"too many fields in row {file.header_row + 1}"
                ) from None
            extra = min(extra * 4, MAX_EXTRA_FIELDS)


class _FirstRowTooLong(Exception):
    """pandas would drop the first data row's last cells (it only warns): read again with more room."""


def _first_row_extra(file: ImportFile) -> int:
    """Room for the first data row's cells beyond the header's (at least one), read from the file's head.

    With ``index_col=False`` pandas does not refuse a first data row longer than the columns it
    was given: it drops the row's last cells with a warning. Giving it room up front avoids that.
    """
    with file.open_binary() as stream:
        head = stream.read(SAMPLE_BYTES)
    text = head.decode(file.encoding or "utf-8", errors="replace").lstrip("\ufeff")
    if file.line_end != "\n":
        text = text.replace(file.line_end, "\n")
    rows = csv.reader(io.StringIO(text, newline=None), delimiter=file.delimiter or ",")
    try:
        for _ in range(file.header_row):
            next(rows, None)
        first = next(rows, [])
    except csv.Error:
        return 1
    return min(max(len(first) - len(file.headers), 1), MAX_EXTRA_FIELDS)


_FIELDS_SEEN = re.compile(r"Expected \d+ fields in line \d+, saw (\d+)")


def _csv_chunks(file: ImportFile, chunk_size: int, extra: int) -> Iterator[pandas.DataFrame]:
    """The rows with ``extra`` columns beyond the header's (joined into :data:`EXTRA_COLUMN`)."""
    import pandas as pd

    width = len(file.headers)
    spare = [f"{EXTRA_COLUMN}{number}" for number in range(extra)]
    stream = file.open_binary()
    try:
        reader = pd.read_csv(
            stream,
            sep=file.delimiter,
            encoding=file.encoding,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            header=None,
            # the header and any title above it (records: a quoted line break in one is kept)
            skiprows=file.header_row,
            names=[*file.headers, *spare],
            index_col=False,
            skip_blank_lines=True,
            chunksize=chunk_size,
            engine="c",
            on_bad_lines="error",
            lineterminator=None if file.line_end == "\n" else file.line_end,
        )
        next_row = file.header_row + 1
        for chunk in reader:
            if next_row == file.header_row + 1 and len(chunk) and chunk[spare[-1]].iat[0] != "":
                # only the first data row is cut short (pandas drops its cells beyond the names it was
                # given, with a warning): one that fills every spare column may have had more
                raise _FirstRowTooLong
            chunk.index = range(next_row, next_row + len(chunk))
            next_row += len(chunk)
            if any(chunk[column].str.contains("\x00", regex=False).any() for column in chunk.columns):
                row = next(
                    number
                    for number, cells in zip(chunk.index, chunk.itertuples(index=False), strict=True)
                    if any("\x00" in cell for cell in cells)
                )
                # PostgreSQL stores no NUL in text, and no text file holds one
                raise ImportFileRefused("imports.error.nul_byte", row=row)
            extras = chunk[spare]
            joined = (
                extras.agg(lambda cells: (file.delimiter or ",").join(cells).rstrip(file.delimiter or ","), axis=1)
                if (extras != "").any().any()
                else ""
            )
            yield chunk.iloc[:, :width].assign(**{EXTRA_COLUMN: joined})
    except UnicodeDecodeError as error:
        raise ImportFileRefused("imports.error.mixed_encoding") from error
    finally:
        stream.close()


def _xlsx_chunks(file: ImportFile, chunk_size: int) -> Iterator[pandas.DataFrame]:
    import pandas as pd

    workbook = _open_workbook(file.source)
    columns = [*file.headers, EXTRA_COLUMN]
    try:
        worksheet = _worksheet(workbook, file.sheet)
        width = len(file.headers)
        rows: list[list[str]] = []
        numbers: list[int] = []
        for number, row in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number <= file.header_row:
                continue
            cells = [_cell_text(value) for value in row]
            if not any(value.strip() for value in cells):
                continue
            values = cells[:width]
            values += [""] * (width - len(values))
            values.append(",".join(cells[width:]).rstrip(","))
            rows.append(values)
            numbers.append(number)
            if len(rows) >= chunk_size:
                yield pd.DataFrame(rows, columns=columns, index=numbers, dtype=object)
                rows, numbers = [], []
        if rows:
            yield pd.DataFrame(rows, columns=columns, index=numbers, dtype=object)
    finally:
        workbook.close()


def preview(file: ImportFile, rows: int = 20) -> pandas.DataFrame:
    """The first ``rows`` data rows."""
    import pandas as pd

    for chunk in iter_chunks(file, chunk_size=rows):
        return chunk.head(rows)[file.headers]
    return pd.DataFrame(columns=file.headers)
