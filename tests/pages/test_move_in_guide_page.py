"""The Imports page's "Move in" guide (issue 18): the order of the files in en and zh-CN, each step marked with
whether the workspace holds records of it; a file whose header matches a preset gets the preset preselected."""

from __future__ import annotations

from pathlib import Path

from crm_core.i18n import t
from crm_core.importing.guide import MOVE_IN_ORDER
from tests.factories import create_random_customer
from tests.pages.conftest import AppWorld, open_as

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "move_in"


def markdown(app) -> str:  # type: ignore[no-untyped-def]
    return "\n".join(element.value for element in app.markdown)


def test_the_guide_lists_the_steps_in_both_languages_and_marks_the_entities_held(app_world: AppWorld) -> None:
    create_random_customer(app_world.db, app_world.world.admin)
    for language in ("en", "zh-CN"):
        app = open_as(app_world.world.manager.username, "pages/imports.py", language)
        assert not app.exception
        assert t("move_in.tab", language) in [tab.label for tab in app.tabs]
        text = markdown(app)
        positions = [text.index(f"{number}. {t(f'imports.entity.{entity}', language)}")
                     for number, entity in enumerate(MOVE_IN_ORDER, start=1)]
        assert positions == sorted(positions)
        for paragraph in ("move_in.step.opportunities", "move_in.orphans", "move_in.dry_run", "move_in.revert"):
            assert t(paragraph, language) in text
        customers_line = next(line for line in text.splitlines() if t("imports.entity.customers", language) in line
                              and line.startswith("**2."))
        products_line = next(line for line in text.splitlines() if line.startswith("**1."))
        assert t("move_in.has_records", language) in customers_line
        assert t("move_in.no_records", language) in products_line


def test_a_hubspot_export_gets_its_preset_detected(app_world: AppWorld) -> None:
    app = open_as(app_world.world.admin.username, "pages/imports.py")
    app.file_uploader(key="imports_upload").set_value(
        ("deals.csv", (SAMPLES / "hubspot_deals.csv").read_bytes(), "text/csv"))
    app = app.run()
    app.selectbox(key="imports_entity").set_value("opportunities")
    app = app.run()
    assert not app.exception
    assert app.selectbox(key="imports_preset_opportunities").value == "detect"
    assert t("move_in.detected", "en", preset=t("move_in.preset.hubspot", "en")) in [c.value for c in app.caption]
    # the columns follow the preset: the deal stage, the company's HubSpot ID and the deal's own
    boxes = {box.label: box.value for box in app.selectbox if box.key and box.key.startswith("imports_map_")}
    assert (boxes["Deal Stage"], boxes["Associated Company ID"], boxes["Record ID"]) == (
        "stage", "customer", "external_id")
