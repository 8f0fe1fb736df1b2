"""Issue 19: a sample of the hostile corpus (tests/hostile.py: three values of every family, its longest
among them) typed into the customer form, the customers grid's search box and the sidebar's global search.

For each value: no exception element; the form either creates the customer (a success message, the
form emptied) or refuses it with an error message, the typed value still in the box and no row
written; both search boxes answer (results or "nothing found") without an exception.
"""

from __future__ import annotations

import time

from sqlalchemy import func, select
from streamlit.testing.v1 import AppTest

from crm_core.models import Customer
from tests.hostile import Hostile, sample
from tests.pages.conftest import AppWorld, log_in

VALUES = sample(3)


def customers(app_world: AppWorld) -> int:
    with app_world.db.system_session("test: count") as session:
        return int(session.scalar(select(func.count()).select_from(Customer)) or 0)


def name_box(app: AppTest):  # type: ignore[no-untyped-def]
    return next(w for w in app.text_input if w.label == "Name *")


def type_a_customer(app: AppTest, app_world: AppWorld, item: Hostile) -> list[str]:
    before = customers(app_world)
    box = name_box(app)
    typed = item.value[:box.max_chars] if box.max_chars else item.value  # a browser stops at max_chars
    box.input(typed)
    next(b for b in app.button if b.label == "Create customer").click()
    app.run()
    where = f"customer form {item!r}"
    if app.exception:
        return [f"{where}: exception {app.exception[0].value[:200]!r}"]
    after = customers(app_world)
    if app.error:
        failures = [] if after == before else [f"{where}: refused but {after - before} rows written"]
        if name_box(app).value != typed:
            failures.append(f"{where}: the typed name was not kept")
        return failures
    if app.success and after == before + 1:
        return []
    if app.warning and after == before:  # a possible duplicate: asked, nothing written yet
        return []
    return [f"{where}: neither a refusal nor a success ({after - before} rows)"]


def search_grid(app: AppTest, item: Hostile) -> list[str]:
    app.text_input(key="customers_search").input(item.value[:200]).run()
    return [f"grid search {item!r}: exception {app.exception[0].value[:200]!r}"] if app.exception else []


def search_everywhere(app_world: AppWorld, item: Hostile) -> list[str]:
    """The sidebar's box, in a session of its own: AppTest keeps the sidebar only on the first run after
    login, and does not follow the switch to the Customer 360 that a hit makes."""
    app = log_in(app_world.world.rep.username)
    app.text_input(key="global_search_query").input(item.value[:200])  # the box takes 200 characters
    next(b for b in app.button if b.label.endswith("Search")).click()
    app.run()
    return [f"global search {item!r}: exception {app.exception[0].value[:200]!r}"] if app.exception else []


def test_hostile_values_in_the_customer_form_and_both_search_boxes(app_world: AppWorld) -> None:
    started = time.monotonic()
    app = log_in(app_world.world.rep.username)
    app.switch_page("pages/customers.py").run()
    failures: list[str] = []
    for item in VALUES:
        failures += type_a_customer(app, app_world, item)
        failures += search_grid(app, item)
        failures += search_everywhere(app_world, item)
    print(f"\npages: {len(VALUES)} values x 3 boxes = {3 * len(VALUES)} AppTest runs in "
          f"{time.monotonic() - started:.1f}s")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures)
