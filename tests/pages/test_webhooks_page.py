"""Webhooks page (AppTest): an admin subscribes (the secret shown once), sees deliveries with their
attempts, replays one, is told about an endpoint disabled after failures; bad input keeps the input;
another tenant's admin sees none of it; the page speaks Chinese."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select

from crm_core.models import utcnow
from crm_core.models.webhooks import WebhookDelivery, WebhookSubscription
from crm_core.services.webhooks import SubscriptionForm, create_subscription, send_ping, set_allow_private_targets
from crm_core.webhooks.dispatch import dispatch_due
from tests.factories import create_random_customer
from tests.http_receiver import Receiver
from tests.pages.conftest import AppWorld, log_in


def open_webhooks(username: str, language: str = "en"):  # type: ignore[no-untyped-def]
    app = log_in(username)
    if language != "en":
        app.session_state["kestrel_lang"] = language
        app.session_state["kestrel_lang_chosen"] = True
    app.switch_page("pages/webhooks.py").run()
    assert not app.exception, app.exception
    return app


def texts(elements) -> str:  # type: ignore[no-untyped-def]
    return " ".join(element.value.replace("\\", "") for element in elements)


def subscriptions(app_world: AppWorld) -> list[WebhookSubscription]:
    with app_world.db.system_session("test") as session:
        return list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id)))


def test_an_admin_subscribes_and_sees_the_secret_once(app_world: AppWorld) -> None:
    set_allow_private_targets(app_world.db, app_world.world.admin, True)
    app = open_webhooks(app_world.world.admin.username)
    assert app.title[0].value == "Webhooks"
    app.text_input(key="webhooks_new_url").input("http://127.0.0.1:9/hook")
    app.text_input(key="webhooks_new_description").input("CRM → Slack")
    app.multiselect(key="webhooks_new_events").select("deal.won").select("customer.*")
    next(b for b in app.button if b.label == "Subscribe").click().run()
    assert not app.exception, app.exception

    (stored,) = subscriptions(app_world)
    assert (stored.url, stored.event_types, stored.description) == (
        "http://127.0.0.1:9/hook", ["deal.won", "customer.*"], "CRM → Slack")
    assert [code.value for code in app.code] == [stored.signing_secret]
    assert "Subscription created." in texts(app.toast)
    app.run()
    assert stored.signing_secret not in [code.value for code in app.code]  # shown once


def test_a_refused_url_is_explained_and_the_input_kept(app_world: AppWorld) -> None:
    app = open_webhooks(app_world.world.admin.username)
    app.text_input(key="webhooks_new_url").input("http://10.0.0.8/hook")
    app.multiselect(key="webhooks_new_events").select("customer.created")
    next(b for b in app.button if b.label == "Subscribe").click().run()
    assert "private, loopback or link-local" in texts(app.error)
    assert app.text_input(key="webhooks_new_url").value == "http://10.0.0.8/hook"
    assert subscriptions(app_world) == []


def test_the_delivery_log_shows_attempts_and_replays_one(app_world: AppWorld) -> None:
    world = app_world.world
    receiver = Receiver()
    try:
        set_allow_private_targets(app_world.db, world.admin, True)
        subscription_id, _ = create_subscription(app_world.db, world.admin,
                                                 SubscriptionForm(receiver.url(), ["customer.created"]))
        create_random_customer(app_world.db, world.rep, name="Logged Ltd")
        dispatch_due(app_world.db, now=utcnow() + dt.timedelta(seconds=1))

        app = open_webhooks(world.admin.username)
        log = app.dataframe[1].value
        assert list(log["Event"]) == ["customer.created"] and list(log["Status"]) == ["Delivered"]
        assert list(log["HTTP status"]) == [200]
        assert "Attempt 1" in texts(app.markdown)
        assert '"Logged Ltd"' in app.code[0].value  # the payload
        next(b for b in app.button if b.label == "Replay this delivery").click().run()
        assert "Replay queued as a new delivery." in texts(app.toast)
        with app_world.db.system_session("test") as session:
            made = session.scalars(select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
                                   .order_by(WebhookDelivery.id)).all()
        assert [d.replay_of_id for d in made] == [None, made[0].id]
    finally:
        receiver.close()


def test_admins_are_told_when_an_endpoint_was_disabled_after_failures(app_world: AppWorld) -> None:
    world = app_world.world
    set_allow_private_targets(app_world.db, world.admin, True)
    create_subscription(app_world.db, world.admin, SubscriptionForm("http://127.0.0.1:9/gone", ["customer.*"]))
    create_random_customer(app_world.db, world.rep)
    start = utcnow() + dt.timedelta(seconds=1)  # after the first change: its delivery is due by then
    for day in range(6):  # nothing listens on port 9: every attempt fails
        if day:
            create_random_customer(app_world.db, world.rep)
        dispatch_due(app_world.db, now=start + dt.timedelta(days=day))
    app = open_webhooks(world.admin.username)
    assert "was disabled on" in texts(app.error) and "127.0.0.1:9/gone" in texts(app.error)
    assert "Disabled after failures" in list(app.dataframe[0].value["State"])
    next(b for b in app.button if b.label == "Enable").click().run()
    assert "Subscription enabled." in texts(app.toast)
    assert "was disabled on" not in texts(app.error)


def test_another_tenants_admin_sees_nothing_and_the_page_speaks_chinese(app_world: AppWorld) -> None:
    set_allow_private_targets(app_world.db, app_world.world.admin, True)
    create_subscription(app_world.db, app_world.world.admin, SubscriptionForm("http://127.0.0.1:9/a", ["deal.won"]))
    app = open_webhooks(app_world.world.other_admin.username, "zh-CN")
    assert app.title[0].value == "Webhook"
    assert "还没有订阅。打开上方的“新建订阅”" in texts(app.info)
    assert "127.0.0.1:9/a" not in " ".join(str(frame.value) for frame in app.dataframe)


def test_only_admins_have_the_page_in_their_menu() -> None:
    from crm_core.models import Role
    from crm_ui.navigation import pages_for

    holders = {role for role in Role if "pages/webhooks.py" in [spec.path for spec in pages_for(role)]}
    assert holders == {Role.ADMIN}


def test_the_delivery_log_is_paged_and_filtered(app_world: AppWorld) -> None:
    world = app_world.world
    set_allow_private_targets(app_world.db, world.admin, True)
    create_subscription(app_world.db, world.admin, SubscriptionForm("http://127.0.0.1:9/a", ["customer.*"]))
    for _ in range(55):
        create_random_customer(app_world.db, world.rep)
    app = open_webhooks(world.admin.username)
    assert len(app.dataframe[1].value) == 50
    next(b for b in app.button if b.label == "Next page").click().run()
    assert len(app.dataframe[1].value) == 5 and "Page 2" in texts(app.caption)
    app.selectbox(key="webhooks_log_status").select("succeeded").run()
    assert "No deliveries match." in texts(app.info)  # a new filter starts again at page 1
    assert "Page 1" in texts(app.caption)


def test_an_admin_edits_a_subscription_and_a_change_saved_meanwhile_is_not_overwritten(app_world: AppWorld) -> None:
    from crm_core.services.webhooks import update_subscription

    admin = app_world.world.admin
    set_allow_private_targets(app_world.db, admin, True)
    subscription_id, _ = create_subscription(app_world.db, admin, SubscriptionForm(
        "http://127.0.0.1:9/hook", ["customer.created"], "ERP"))
    app = open_webhooks(admin.username)

    def form_input(label: str):  # type: ignore[no-untyped-def]
        return next(w for w in app.text_input if w.label == label and w.key is None)

    form_input("Endpoint URL").input("http://127.0.0.1:9/v2/hook")
    next(m for m in app.multiselect if m.label == "Event types" and m.key is None).select("deal.won")
    next(b for b in app.button if b.label == "Save subscription").click().run()
    assert not app.exception and not app.error
    [saved] = subscriptions(app_world)
    assert (saved.url, sorted(saved.event_types), saved.version) == (
        "http://127.0.0.1:9/v2/hook", ["customer.created", "deal.won"], 2)

    # another admin changes it while this one edits: this save is refused, the other change stays
    form_input("Description").input("ERP (prod)")
    update_subscription(app_world.db, admin, subscription_id,
                        SubscriptionForm("http://127.0.0.1:9/v3/hook", ["customer.created"], "ERP"), version=2)
    next(b for b in app.button if b.label == "Save subscription").click().run()
    assert not app.exception
    assert app.error and f"{admin.full_name} changed this record" in app.error[0].value
    assert any(w.value == "ERP (prod)" for w in app.text_input)  # the typing is kept
    [kept] = subscriptions(app_world)
    assert (kept.url, kept.description) == ("http://127.0.0.1:9/v3/hook", "ERP")
    next(b for b in app.button if b.label == "Show the latest version of this subscription").click().run()
    assert any(w.value == "http://127.0.0.1:9/v3/hook" for w in app.text_input)


def two_pings(app_world: AppWorld) -> tuple[int, list[int]]:
    """A subscription whose description holds Markdown, and two test pings waiting: its id and theirs."""
    admin = app_world.world.admin
    set_allow_private_targets(app_world.db, admin, True)
    subscription_id, _ = create_subscription(app_world.db, admin, SubscriptionForm(
        "http://127.0.0.1:9/hook", ["customer.created"], "Orders **BOLD** [Click](http://phish.example)"))
    return subscription_id, [send_ping(app_world.db, admin, subscription_id) for _ in range(2)]


@pytest.mark.parametrize(("language", "facts", "open_label", "manage_label"), [
    ("en", " · Status: Waiting · Attempts: 0 · ", "Details and replay", "Manage this subscription"),
    ("zh-CN", " · 状态：等待中 · 尝试次数：0 · ", "详情与重放", "管理此订阅"),
])
def test_on_a_phone_the_subscriptions_and_the_log_are_cards_with_their_actions(
    app_world: AppWorld, language: str, facts: str, open_label: str, manage_label: str
) -> None:
    """The phone's cards beside the wide tables: a subscription's (its description as text) with a button
    that picks it for the actions, and each delivery's with a button to its details and replay."""
    subscription_id, pings = two_pings(app_world)
    app = open_webhooks(app_world.world.admin.username, language)
    assert len(app.dataframe[1].value) == 2  # the wide screen's log
    captions = [re.sub(r"\\(.)", r"\1", caption.value) for caption in app.caption]
    assert any("Orders **BOLD** [Click](http\u2060://phish.example)" in caption for caption in captions)  # as text
    assert not any("**BOLD**" in markdown.value for markdown in app.markdown)
    assert app.button(key=f"webhooks_list_pick_{subscription_id}").label == manage_label
    assert [app.button(key=f"webhooks_log_pick_{ping}").label for ping in pings] == [open_label, open_label]
    assert sum(facts in caption for caption in captions) == 2  # a card per delivery


def test_a_deliverys_card_picks_it_and_its_replay_is_one_tap_below(app_world: AppWorld) -> None:
    """On a phone a delivery's details and replay are reached from its card. (In English: AppTest formats the
    page's pickers outside the run, in English.)"""
    subscription_id, pings = two_pings(app_world)
    app = open_webhooks(app_world.world.admin.username)
    other = next(ping for ping in pings if ping != app.selectbox(key="webhooks_delivery").value)
    app.button(key=f"webhooks_log_pick_{other}").click().run()
    assert not app.exception
    assert app.selectbox(key="webhooks_delivery").value == other
    next(b for b in app.button if b.label == "Replay this delivery").click().run()
    assert "Replay queued as a new delivery." in texts(app.toast)
    with app_world.db.system_session("test") as session:
        replays = session.scalars(select(WebhookDelivery.replay_of_id).where(
            WebhookDelivery.subscription_id == subscription_id, WebhookDelivery.replay_of_id.is_not(None))).all()
    assert replays == [other]
