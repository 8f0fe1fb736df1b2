"""The headers of a file the API hands out to be saved, never shown: one definition for every download."""

from __future__ import annotations

from urllib.parse import quote


def attachment_disposition(name: str) -> str:
    """``Content-Disposition: attachment`` naming the file in ASCII (a fallback) and in UTF-8 (RFC 6266)."""
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_").replace("\\", "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"
