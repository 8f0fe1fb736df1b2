"""AppTest fixtures: the real app.py against a fresh SQLite file with a small world."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm_core.db import Database, make_engine
from tests.conftest import fresh_sqlite
from tests.factories import PASSWORD, World, build_world, create_random_customer

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class AppWorld:
    db: Database
    world: World
    url: str


@pytest.fixture
def app_world(tmp_path: Path, sqlite_template: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppWorld]:
    url = fresh_sqlite(sqlite_template, tmp_path / "app.db")
    engine = make_engine(url)
    db = Database(engine)
    world = build_world(db)
    create_random_customer(db, world.rep, name="张三科技有限公司", email="zhang@example.cn", phone="138 0013 8000")
    create_random_customer(db, world.rep, name="Acme Trading", email="hello@acme.com")
    create_random_customer(db, world.rep_other_team, name="West Coast Ltd")
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.setenv("CRM_COOKIE_KEY", "test-cookie-key-0123456789abcdef")
    monkeypatch.chdir(ROOT)
    from crm_ui.context import get_db

    get_db.clear()
    yield AppWorld(db, world, url)
    get_db.clear()
    engine.dispose()


def new_app() -> AppTest:
    """A fresh browser session of app.py."""
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)


def log_in(username: str, password: str = PASSWORD, app: AppTest | None = None) -> AppTest:
    """Fill and submit the login form; returns the app after the run."""
    app = app or new_app()
    app.run()
    username_input = next(w for w in app.text_input if w.label in ("Username", "用户名"))
    password_input = next(w for w in app.text_input if w.label in ("Password", "密码"))
    username_input.input(username)
    password_input.input(password)
    next(b for b in app.button if b.label in ("Log in", "登录")).click()
    app.run()
    return app


def open_as(username: str, page: str, language: str = "en", **query: str) -> AppTest:
    """Log ``username`` in, reading ``language``, and run ``page`` (``pages/….py``) with ``query``."""
    app = log_in(username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
    app.switch_page(page)
    for name, value in query.items():
        app.query_params[name] = value
    return app.run()


os.environ.setdefault("CRM_BCRYPT_ROUNDS", "4")


def field_labels(node) -> list[str]:  # type: ignore[no-untyped-def]
    """The labels of a page's input widgets in document order (a phone shows them in this order)."""
    if getattr(node, "type", None) in ("text_input", "selectbox", "number_input", "checkbox", "date_input", "radio"):
        return [node.label]
    return [label for child in getattr(node, "children", {}).values() for label in field_labels(child)]
