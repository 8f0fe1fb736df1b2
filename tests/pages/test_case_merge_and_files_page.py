"""The case page merges a duplicate of the same customer into the case on screen, says so on the merged one,
and keeps files: uploaded on the page (typed from their bytes, refused ones explained), listed and offered
for download."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.models import Case, Customer
from crm_core.models.service import CaseAttachment
from crm_core.services.cases import CaseInput, create_case
from tests.pages.conftest import AppWorld
from tests.pages.test_service_pages import open_case, speak_chinese

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


def two_cases(app_world: AppWorld) -> tuple[int, int]:
    db, world = app_world.db, app_world.world
    with db.system_session("test") as session:
        customer_id = session.scalars(select(Customer.id).where(Customer.name == "Acme Trading")).one()
    survivor = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Scanner does not pair",
                                                    assignee_id=world.rep.user_id))
    duplicate = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="**Scanner** again",
                                                     assignee_id=world.rep.user_id))
    return survivor, duplicate


def test_a_rep_merges_a_duplicate_into_the_case_on_screen(app_world: AppWorld,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, duplicate = two_cases(app_world)
    app = open_case(app_world.world.rep.username, survivor)
    picker = app.selectbox(key=f"case_merge_pick_{survivor}")
    assert picker.options == [f"#{duplicate} · **Scanner** again · Open"]  # an option is text, never Markdown
    picker.set_value(duplicate)
    app.button(key=f"case_merge_go_{survivor}").click().run()
    assert "Tick the box" in app.warning[0].value  # not merged without the confirmation
    app.checkbox(key=f"case_merge_sure_{survivor}").check()
    app.button(key=f"case_merge_go_{survivor}").click().run()
    assert not app.exception
    assert app.success[0].value == f"Case #{duplicate} was merged into this case."
    assert any(f"Case #{duplicate} was merged into this case" in caption.value for caption in app.caption)
    with app_world.db.system_session("test") as session:
        merged = session.get(Case, duplicate)
        assert merged is not None and (merged.status, merged.merged_into_id) == ("closed", survivor)

    speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    old = open_case(app_world.world.rep.username, duplicate, "zh-CN")
    assert old.warning[0].value == f"此工单已合并到工单 #{survivor}；其回复、邮件和附件现在都在那里。"
    assert not [box for box in old.selectbox if box.key == f"case_merge_pick_{duplicate}"]  # merged: no more merges


def test_files_are_attached_on_the_page_and_offered_for_download(app_world: AppWorld) -> None:
    survivor, _ = two_cases(app_world)
    app = open_case(app_world.world.rep.username, survivor)
    assert "No files yet." in [caption.value for caption in app.caption]
    uploader = next(widget for widget in app.get("file_uploader")
                    if getattr(widget, "key", "") == f"case_attach_files_{survivor}_0")
    uploader.set_value(("屏幕截图", PNG, "text/html"))
    next(button for button in app.button if button.label == "Attach files").click()
    app.run()
    assert not app.exception
    assert app.success[0].value == "1 file(s) attached."
    with app_world.db.system_session("test") as session:
        [row] = session.scalars(select(CaseAttachment).where(CaseAttachment.case_id == survivor))
    assert (row.file_name, row.content_type) == ("屏幕截图.png", "image/png")
    assert "屏幕截图.png" in [text.value for text in app.text]
    assert [button.key for button in app.get("download_button")] == [f"case_file_{row.id}"]


@pytest.mark.parametrize(("language", "message"), [
    ("en", "is a program or script"), ("zh-CN", "是程序或脚本"),
])
def test_a_refused_file_is_explained_and_nothing_is_kept(app_world: AppWorld, language: str, message: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, _ = two_cases(app_world)
    if language != "en":
        speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    app = open_case(app_world.world.rep.username, survivor, language)
    uploader = next(widget for widget in app.get("file_uploader")
                    if getattr(widget, "key", "") == f"case_attach_files_{survivor}_0")
    uploader.set_value(("tool.png", b"MZ\x90\x00" + bytes(60), "image/png"))
    next(button for button in app.button if button.label in ("Attach files", "添加附件")).click()
    app.run()
    assert not app.exception
    assert message in app.error[0].value and "tool\\.png" in app.error[0].value  # the name escaped: data as text
    with app_world.db.system_session("test") as session:
        assert session.scalar(select(CaseAttachment.id).where(CaseAttachment.case_id == survivor)) is None


def test_the_uploader_removes_a_file_after_confirming_and_a_colleague_is_not_offered_it(app_world: AppWorld) -> None:
    from crm_core.services.case_attachments import NewFile, attach_files

    survivor, _ = two_cases(app_world)
    db, world = app_world.db, app_world.world
    [attachment_id] = attach_files(db, world.rep, survivor, [NewFile("passport.png", PNG)])
    app = open_case(world.rep.username, survivor)
    app.button(key=f"case_file_remove_{attachment_id}").click().run()
    assert not app.exception
    assert app.success[0].value == '"passport\\.png" was removed.'  # the name escaped: data as text
    assert any(caption.value.startswith("File removed: passport\\.png") for caption in app.caption)
    with db.system_session("test") as session:
        assert session.scalar(select(CaseAttachment.id).where(CaseAttachment.case_id == survivor)) is None
    [kept] = attach_files(db, world.manager, survivor, [NewFile("manual.png", PNG)])
    again = open_case(world.rep.username, survivor)  # the manager's file: the rep may download, not remove it
    assert [button.key for button in again.get("download_button")] == [f"case_file_{kept}"]
    assert not [button for button in again.button if button.key == f"case_file_remove_{kept}"]


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_both_file_pickers_state_the_limit_the_service_enforces(app_world: AppWorld, language: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    survivor, _ = two_cases(app_world)
    monkeypatch.setenv("CRM_ATTACHMENT_MAX_BYTES", str(3 * 1024 * 1024))
    if language == "zh-CN":
        speak_chinese(app_world, app_world.world.rep.user_id, monkeypatch)
    app = open_case(app_world.world.rep.username, survivor, language)
    pickers = {widget.key: widget.proto.max_upload_size_mb for widget in app.get("file_uploader")}
    # not Streamlit's server-wide 200 MB: the browser refuses a larger file, and the box says 3 MB
    assert pickers == {f"case_reply_files_{survivor}_0": 3, f"case_attach_files_{survivor}_0": 3}
    styles = " ".join(block.proto.body for block in app.get("html"))
    shown = {f".st-key-case_reply_files_{survivor}_0", f".st-key-case_attach_files_{survivor}_0"}
    assert all(key in styles for key in shown) == (language == "zh-CN")  # Streamlit writes the English line
    assert ('"单个文件不超过 3 MB"' in styles) == (language == "zh-CN")
