"""The attachment rules as tables: the type read from the bytes (never the name), the limits, the served name."""

from __future__ import annotations

import io
import zipfile

import pytest

from crm_core.config import DEFAULT_ATTACHMENT_MAX_BYTES, attachment_max_bytes
from crm_core.rules.attachments import DOCX, XLSX, file_problem, readable_size, safe_file_name, sniff


def zipped(*names: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "name", "content_type"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "a.png", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a.jpg", "image/jpeg"),
    (b"GIF89a\x01\x00", "a.gif", "image/gif"),
    (b"GIF87a\x01\x00", "a.gif", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a.webp", "image/webp"),
    (b"%PDF-1.4\n", "a.pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "report.pdf", "image/png"),  # the name claims PDF: the bytes win
    (b"%PDF-1.4\n", "photo.png", "application/pdf"),
    ("名称,数量\n扫描仪,1\n".encode(), "a.csv", "text/csv"),
    ("名称,数量\n扫描仪,1\n".encode("gb18030"), "a.CSV", "text/csv"),
    (b"plain words\r\n", "readme", "text/plain"),
    (b"\xef\xbb\xbfwith a BOM\n", "a.txt", "text/plain"),
    (zipped("[Content_Types].xml", "word/document.xml"), "a.docx", DOCX),
    (zipped("[Content_Types].xml", "xl/workbook.xml"), "a.xlsx", XLSX),
])
def test_the_type_is_read_from_the_bytes(data: bytes, name: str, content_type: str) -> None:
    assert sniff(data, name).content_type == content_type
    assert sniff(data, name).problem is None


@pytest.mark.parametrize(("data", "problem"), [
    (b"", "case_files.error.empty"),
    (b"MZ\x90\x00\x03\x00", "case_files.error.executable"),
    (b"\x7fELF\x02\x01\x01", "case_files.error.executable"),
    (b"\xcf\xfa\xed\xfe\x07\x00", "case_files.error.executable"),
    (b"#!/bin/sh\necho hi\n", "case_files.error.executable"),
    (b"\x00asm\x01\x00\x00\x00", "case_files.error.executable"),
    (b"<!doctype html><p>hi", "case_files.error.markup"),
    (b"  \n<html><script>alert(1)</script>", "case_files.error.markup"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "case_files.error.markup"),
    (b"\xef\xbb\xbf<svg onload=alert(1)>", "case_files.error.markup"),
    (zipped("[Content_Types].xml", "word/document.xml", "word/vbaProject.bin"), "case_files.error.macros"),
    (zipped("payload.exe"), "case_files.error.type_not_allowed"),  # a plain archive hides what it holds
    (b"PK\x03\x04 not really a zip", "case_files.error.type_not_allowed"),
    (b"text\x00with a NUL", "case_files.error.type_not_allowed"),
    (bytes(range(1, 32)) * 10, "case_files.error.type_not_allowed"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "case_files.error.type_not_allowed"),  # old .doc/.xls (macros)
])
def test_what_is_refused_and_why(data: bytes, problem: str) -> None:
    assert sniff(data, "file.txt") == type(sniff(b"x"))(problem=problem)


def test_the_size_is_checked_before_the_type() -> None:
    assert file_problem(b"MZ" + b"\x00" * 100, "big.exe", max_bytes=50) == (
        "case_files.error.too_large", {"name": "big.exe", "max": "50 B"})
    assert file_problem(b"%PDF-1.4\n", "a.pdf", max_bytes=50) is None
    assert file_problem(b"MZ\x00", "a.png", max_bytes=50) == ("case_files.error.executable", {"name": "a.png"})


@pytest.mark.parametrize(("name", "content_type", "served"), [
    ("report.pdf", "application/pdf", "report.pdf"),
    ("C:\\Users\\li\\报告.PDF", "application/pdf", "报告.PDF"),
    ("../../etc/passwd", "text/plain", "passwd.txt"),
    ("invoice.pdf.exe", "application/pdf", "invoice.pdf.exe.pdf"),
    ('a"b;c\r\nSet-Cookie: x.png', "image/png", "a_b_c_Set-Cookie_ x.png"),
    ("evil\u202egnp.exe", "image/png", "evilgnp.exe.png"),
    ("...", "image/png", "file.png"),
    ("photo", "image/jpeg", "photo.jpg"),
    ("x" * 300 + ".png", "image/png", "x" * 251 + ".png"),
    ("notes.txt", None, "notes.txt"),
])
def test_the_served_name(name: str, content_type: str | None, served: str) -> None:
    assert safe_file_name(name, content_type) == served
    assert len(safe_file_name(name, content_type)) <= 255


@pytest.mark.parametrize(("size", "text"), [(0, "0 B"), (1023, "1023 B"), (2048, "2 KB"),
                                            (10 * 1024 * 1024, "10 MB"), (1536 * 1024, "1.5 MB")])
def test_sizes_read_as_people_read_them(size: int, text: str) -> None:
    assert readable_size(size) == text


def test_the_size_limit_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CRM_ATTACHMENT_MAX_BYTES", raising=False)
    assert attachment_max_bytes() == DEFAULT_ATTACHMENT_MAX_BYTES == 10 * 1024 * 1024
    monkeypatch.setenv("CRM_ATTACHMENT_MAX_BYTES", "2048")
    assert attachment_max_bytes() == 2048
    for wrong in ("ten", "0"):
        monkeypatch.setenv("CRM_ATTACHMENT_MAX_BYTES", wrong)
        with pytest.raises(ValueError, match="CRM_ATTACHMENT_MAX_BYTES"):
            attachment_max_bytes()
