"""What a case keeps as a file: the type read from the bytes, the limits, and the name it is served under.

The browser's or the mail's claimed type is never trusted: :func:`sniff` reads the first bytes (and,
for an Office file, the ZIP's directory of parts) and answers one of :data:`ALLOWED_TYPES` or the
reason it is refused. Allowed (extensions the served name ends with):

==========================  ======================  ==========================================
type                        how it is recognised    served name ends with
==========================  ======================  ==========================================
image/png, jpeg, gif, webp  magic number            .png / .jpg .jpeg / .gif / .webp
application/pdf             ``%PDF-``               .pdf
text/plain, text/csv        UTF-8 or GB18030 text   .txt .log / .csv (``.csv`` in the name)
Word .docx, Excel .xlsx     ZIP with the main part  .docx / .xlsx
==========================  ======================  ==========================================

Refused with their own reason: executables (PE ``MZ``, ELF, Mach-O, ``#!`` scripts), markup (HTML,
SVG, XML: a browser would run their scripts), Office files with macros (``vbaProject.bin``), any
other ZIP (an archive hides its content from this check), empty files, and anything else.
"""

from __future__ import annotations

import io
import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from crm_core.rules.fields import strip_hidden

Problem = tuple[str, dict[str, object]]

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ALLOWED_TYPES: dict[str, tuple[str, ...]] = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    "application/pdf": (".pdf",),
    "text/plain": (".txt", ".log"),
    "text/csv": (".csv",),
    DOCX: (".docx",),
    XLSX: (".xlsx",),
}
"""The allow-list: each type a case keeps, with the extensions its served name may end with."""

MAX_FILES = 10  # per upload, reply or note
NAME_LENGTH = 255
TEXT_PROBE = 64 * 1024  # the text check reads this much

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
)
_EXECUTABLE = (b"MZ", b"\x7fELF", b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe",
               b"\xcf\xfa\xed\xfe", b"\xca\xfe\xba\xbe", b"#!", b"\x00asm")
_ZIP = b"PK\x03\x04"
_UNSAFE_NAME = re.compile(r'[\x00-\x1f\x7f"\\/:*?<>|;]+')


@dataclass(frozen=True)
class Verdict:
    """What :func:`sniff` found: the content type, or the catalog key of why the file is refused."""

    content_type: str | None = None
    problem: str | None = None


def sniff(data: bytes, file_name: str = "") -> Verdict:
    """The type of ``data`` read from its bytes; ``file_name`` only tells a CSV from other plain text."""
    if not data:
        return Verdict(problem="case_files.error.empty")
    head = data[:16]
    if head.startswith(_EXECUTABLE):
        return Verdict(problem="case_files.error.executable")
    for magic, content_type in _MAGIC:
        if head.startswith(magic):
            return Verdict(content_type)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Verdict("image/webp")
    if head.startswith(_ZIP):
        return _office(data)
    return _text(data, file_name)


def _office(data: bytes) -> Verdict:
    """A Word or Excel file (its main part in the ZIP's directory; nothing is decompressed), else refused."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = {name.lower() for name in archive.namelist()}
    except (zipfile.BadZipFile, ValueError, OSError):
        return Verdict(problem="case_files.error.type_not_allowed")
    if any(name.endswith("vbaproject.bin") for name in names):
        return Verdict(problem="case_files.error.macros")
    if "[content_types].xml" in names:
        if "word/document.xml" in names:
            return Verdict(DOCX)
        if "xl/workbook.xml" in names:
            return Verdict(XLSX)
    return Verdict(problem="case_files.error.type_not_allowed")


def _text(data: bytes, file_name: str) -> Verdict:
    """Plain text or CSV: no NUL, decodes as UTF-8 or GB18030, hardly any control characters, no markup."""
    probe = data[:TEXT_PROBE]
    if b"\x00" in probe:
        return Verdict(problem="case_files.error.type_not_allowed")
    text = None
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = probe.decode(encoding)
            break
        except UnicodeDecodeError as error:
            if error.start >= len(probe) - 4 and len(data) > TEXT_PROBE:  # the probe cut a character in two
                text = probe[:error.start].decode(encoding, errors="strict")
                break
    if text is None:
        return Verdict(problem="case_files.error.type_not_allowed")
    controls = sum(1 for char in text if unicodedata.category(char) == "Cc" and char not in "\t\n\r\f")
    if controls * 100 > max(len(text), 1):
        return Verdict(problem="case_files.error.type_not_allowed")
    start = text.lstrip("\ufeff \t\r\n").lower()
    if start.startswith("<") or "<svg" in start[:1024] or "<html" in start[:1024]:
        return Verdict(problem="case_files.error.markup")
    return Verdict("text/csv" if file_name.lower().endswith(".csv") else "text/plain")


def file_problem(data: bytes, file_name: str, *, max_bytes: int) -> Problem | None:
    """Why a case cannot keep this file (size first, then type), as (catalog key, params); None when it can."""
    if len(data) > max_bytes:
        return "case_files.error.too_large", {"name": safe_file_name(file_name), "max": readable_size(max_bytes)}
    verdict = sniff(data, file_name)
    if verdict.problem is not None:
        return verdict.problem, {"name": safe_file_name(file_name)}
    return None


def safe_file_name(file_name: str, content_type: str | None = None) -> str:
    """The user's file name without folders, hidden or header-breaking characters, at most 255 characters;
    with ``content_type``, ending with one of that type's extensions (``a.exe`` holding a PNG → ``a.exe.png``)."""
    base = PureWindowsPath(PurePosixPath(file_name or "").name).name  # no folder of either kind
    base = unicodedata.normalize("NFC", strip_hidden(base))
    base = _UNSAFE_NAME.sub("_", base).strip(" .") or "file"
    extensions = ALLOWED_TYPES.get(content_type or "", ())
    suffix = "" if not extensions or base.lower().endswith(extensions) else extensions[0]
    stem, dot, extension = base.rpartition(".")
    if not dot or not stem or len(extension) > 16:  # no extension of its own to keep when shortened
        stem, extension = base, ""
    ending = (dot + extension if extension else "") + suffix
    return stem[:NAME_LENGTH - len(ending)] + ending


def readable_size(size: int) -> str:
    """A file size as people read it: 512 B, 12 KB, 1.5 MB."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f}".removesuffix(".0") + " MB"
