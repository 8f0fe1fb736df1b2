"""A file picker that states the limit the core enforces, not Streamlit's server-wide one."""

from __future__ import annotations

from typing import Any

import streamlit as st

from crm_ui.context import lang, t
from crm_ui.text import css_string

MIB = 1024 * 1024


def file_picker(label: str, *, key: str, max_bytes: int, **options: Any) -> Any:
    """``st.file_uploader`` limited to ``max_bytes`` a file: the box says so (in both languages) and the
    browser refuses a larger file before it is sent; the service still checks every file it is given."""
    megabytes = max(1, max_bytes // MIB)
    if lang() == "zh-CN":  # the frame's stylesheet writes the server-wide limit in Chinese: this box's own here
        selector = f'.st-key-{key} [data-testid="stFileUploaderDropzoneInstructions"] span'
        text = css_string(t("streamlit.upload_limit", size=megabytes))
        st.html(f"<style>{selector}::after{{content:{text} !important}}</style>")
    return st.file_uploader(label, key=key, max_upload_size=megabytes, **options)
