"""Campaign touches on the Customer 360's timeline, on every database: what happened and in which campaign,
newest first, paged with the other kinds, filtered by kind, and only for those who see the customer."""

from __future__ import annotations

from crm_core.db import Database
from crm_core.queries.customer_profile import customer_timeline
from tests.campaign_scene import build_scene
from tests.factories import build_world


def test_a_customers_campaign_touches_are_on_its_timeline_for_those_who_see_it(db: Database) -> None:
    world = build_world(db)
    story = build_scene(db, world)
    with db.session(world.rep) as session:
        entries = customer_timeline(session, story.rep_customer, kinds=["marketing"], limit=100).entries
        everything = customer_timeline(session, story.rep_customer, limit=100).entries
        paged: list[tuple[str, int]] = []
        cursor = None
        for _page in range(20):
            page = customer_timeline(session, story.rep_customer, after=cursor, limit=4)
            paged.extend((entry.kind, entry.id) for entry in page.entries)
            cursor = page.next_cursor
            if cursor is None:
                break
    touches = [(entry.text, entry.details["touch"]) for entry in entries]
    # newest first; a's delivery and its task are the results page's, not the story of the customer
    assert touches == [
        ("Spring nurture", "goal"), ("网络研讨会", "opened"), ("网络研讨会", "sent"), ("网络研讨会", "entered"),
        ("Spring nurture", "replied"), ("Spring nurture", "clicked"), ("Spring nurture", "opened"),
        ("Spring nurture", "opened"), ("Spring nurture", "sent"), ("Spring nurture", "entered"),
    ]
    clicked = next(entry for entry in entries if entry.details["touch"] == "clicked")
    assert clicked.details["detail"] == "https://example.com/offer" and clicked.actor_name is None
    assert paged == [(entry.kind, entry.id) for entry in everything]
    assert {"marketing", "lifecycle"} <= {entry.kind for entry in everything}
    with db.session(world.rep_other_team) as session:
        assert customer_timeline(session, story.rep_customer, kinds=["marketing"]).entries == []
        skipped_only = customer_timeline(session, story.far_customer, kinds=["marketing"]).entries
    assert [entry.details["touch"] for entry in skipped_only] == ["entered"]  # a skipped send is not shown
    with db.session(world.other_admin) as session:
        assert customer_timeline(session, story.rep_customer).entries == []
