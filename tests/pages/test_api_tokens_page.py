"""My account: a user creates a token (its secret shown once), uses it, revokes it; admins revoke any on Users."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.queries.api_tokens import list_api_tokens
from crm_core.services.api_tokens import authenticate_token, issue_api_token
from crm_core.services.auth import load_actor, set_language
from tests.pages.conftest import AppWorld, log_in


def open_account(username: str) -> Any:
    app = log_in(username)
    app.switch_page("pages/account.py")
    return app.run()


def tokens_of(app_world: AppWorld, actor: Any) -> list[Any]:
    with app_world.db.session(actor) as session:
        return list_api_tokens(session, user_id=actor.user_id)


def test_a_rep_creates_a_token_sees_it_once_and_revokes_it(app_world: AppWorld) -> None:
    rep = app_world.world.rep
    app = open_account(rep.username)
    assert not app.exception
    assert app.title[0].value == "My account"
    assert any(info.value == "No API tokens yet: create one under “Create a token” below." for info in app.info)
    next(w for w in app.text_input if w.label.startswith("Name")).input("Website form")
    next(r for r in app.radio if r.label == "Access").set_value("read_write")
    next(b for b in app.button if b.label == "Create token").click()
    app.run()
    [secret_block] = app.code
    secret = secret_block.value
    assert secret.startswith("kst_") and len(secret) > 40
    [row] = tokens_of(app_world, rep)
    assert (row.name, row.scope, row.prefix) == ("Website form", "read_write", secret[:12])
    assert row.expires_at is not None  # the default choice: 90 days
    caller = authenticate_token(app_world.db, secret)
    assert caller is not None and caller.actor.user_id == rep.user_id and caller.can_write
    next(b for b in app.button if b.label == "I have copied it").click()
    app.run()
    assert not app.code  # never shown again
    assert secret not in str(app.dataframe[0].value.to_dict())
    next(b for b in app.button if b.label == "Revoke").click()
    app.run()
    assert any("revoked" in toast.value for toast in app.toast)
    assert authenticate_token(app_world.db, secret) is None
    assert tokens_of(app_world, rep)[0].status() == "revoked"


def test_a_blank_name_is_refused_in_the_users_language(app_world: AppWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # AppTest formats options outside the script run, where the default language applies (see test_hostile_text)
    monkeypatch.setattr("crm_ui.context.DEFAULT_LANGUAGE", "zh-CN")
    analyst = app_world.world.analyst
    set_language(app_world.db, analyst.username, "zh-CN")
    app = open_account(analyst.username)
    assert app.title[0].value == "我的账户"
    assert any("只能读取" in caption.value for caption in app.caption)  # an analyst's tokens never write
    next(b for b in app.button if b.label == "创建令牌").click()
    app.run()
    assert any("名称" in error.value for error in app.error)
    assert not app.code and tokens_of(app_world, analyst) == []


def test_the_language_picked_on_my_account_is_remembered(app_world: AppWorld) -> None:
    rep = app_world.world.rep
    app = open_account(rep.username)
    next(s for s in app.selectbox if s.label == "Language").set_value("zh-CN")
    app.run()
    assert app.title[0].value == "我的账户" and any(success.value == "语言已保存。" for success in app.success)
    assert load_actor(app_world.db, rep.username).language == "zh-CN"  # type: ignore[union-attr]


def test_an_admin_sees_every_token_of_the_workspace_and_revokes_one(app_world: AppWorld) -> None:
    world = app_world.world
    issued = issue_api_token(app_world.db, world.rep, name="ERP sync", scope="read", expires_in_days=None)
    issue_api_token(app_world.db, world.other_admin, name="Other tenant", scope="read", expires_in_days=None)
    app = log_in(world.admin.username)
    app.switch_page("pages/users.py")
    app.run()
    assert not app.exception
    table = app.dataframe[-1].value
    assert list(table["Name"]) == ["ERP sync"] and list(table["User"]) == [world.rep.username]
    next(b for b in app.button if b.label == "Revoke").click()
    app.run()
    assert authenticate_token(app_world.db, issued.secret) is None


def test_a_rep_sees_only_their_own_tokens(app_world: AppWorld) -> None:
    world = app_world.world
    issue_api_token(app_world.db, world.rep_same_team, name="Teammate's", scope="read", expires_in_days=None)
    issue_api_token(app_world.db, world.rep, name="Mine", scope="read", expires_in_days=7)
    app = open_account(world.rep.username)
    assert list(app.dataframe[0].value["Name"]) == ["Mine"]
