"""Merging customers and contacts (issue 17): every row that pointed at the merged record moves to the
survivor, nothing is orphaned, both histories stay, the old id leads to the survivor; on every database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.db import Database
from crm_core.errors import AccessDenied, MergeRefused, NotFound, StaleRecord, ValidationFailed
from crm_core.models import (
    Activity,
    AuditEvent,
    Campaign,
    Case,
    Contact,
    Customer,
    FieldDefinition,
    Opportunity,
    Order,
    PipelineStage,
    Task,
    User,
)
from crm_core.models.automation import AutomationFiring, AutomationRule, LifecycleOverride, LifecycleTransition
from crm_core.models.marketing import CampaignStep, ConsentRecord, MarketingEvent, MarketingMessage
from crm_core.models.merges import Merge
from crm_core.models.notifications import AccessRequest
from crm_core.models.pool import PoolEvent
from crm_core.models.segments import CampaignMember, Score, ScoringModel
from crm_core.models.service_tiers import CustomerTier, CustomerTierPin, CustomerTierStanding
from crm_core.quality.checks import CHECKS, measure
from crm_core.quality.runs import run_suite_for_tenant
from crm_core.queries.merges import merge_preview, references_to, survivor_of
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.merging import Versions, merge_contacts, merge_customers
from tests.factories import World, build_world, create_random_customer, unique

Builder = Callable[[Session, int, int, int], None]  # session, tenant, customer id, contact id


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture(autouse=True)
def private_data_docs(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("crm_core.quality.runs.gx_directory", lambda: tmp_path / "gx")


def _stage(session: Session, tenant_id: int) -> PipelineStage:
    found = session.scalars(select(PipelineStage).where(PipelineStage.tenant_id == tenant_id,
                                                        PipelineStage.kind == "open")).first()
    assert found is not None
    return found


def _deal(session: Session, tenant_id: int, customer_id: int, _contact_id: int) -> None:
    stage = _stage(session, tenant_id)
    session.add(Opportunity(tenant_id=tenant_id, customer_id=customer_id, pipeline_id=stage.pipeline_id,
                            stage_id=stage.id, name=unique("Deal "), amount=Decimal("100")))


def _tier(session: Session, tenant_id: int) -> int:
    tier = CustomerTier(tenant_id=tenant_id, code=unique("tier"), name_en="Gold", name_zh="金牌", rank=1,
                        min_order_total=Decimal("1"), months=12)
    session.add(tier)
    session.flush()
    return tier.id


def _campaign(session: Session, tenant_id: int, name: str = "") -> int:
    name = name or unique("Campaign ")
    found = session.scalar(select(Campaign.id).where(Campaign.tenant_id == tenant_id, Campaign.name == name))
    if found is None:
        campaign = Campaign(tenant_id=tenant_id, name=name)
        session.add(campaign)
        session.flush()
        found = campaign.id
    return found


def _firing(session: Session, tenant_id: int, customer_id: int, _contact_id: int) -> None:
    rule = AutomationRule(tenant_id=tenant_id, name=unique("Rule "), stage="prospect", trigger="entered_stage",
                          action="create_task")
    session.add(rule)
    session.flush()
    session.add(AutomationFiring(tenant_id=tenant_id, rule_id=rule.id, customer_id=customer_id))


def _score(session: Session, tenant_id: int, customer_id: int, _contact_id: int) -> None:
    model = ScoringModel(tenant_id=tenant_id, scorer="churn_risk", version=next_model_version(session, tenant_id),
                         method="fallback")
    session.add(model)
    session.flush()
    session.add(Score(tenant_id=tenant_id, scorer=unique("scorer"), entity="customer", entity_id=customer_id,
                      model_id=model.id, score=0.5))


def next_model_version(session: Session, tenant_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.max(ScoringModel.version), 0))
                              .where(ScoringModel.tenant_id == tenant_id)) or 0) + 1


def _access_request(session: Session, tenant_id: int, customer_id: int, _contact_id: int) -> None:
    # a pending 撞单 request follows the customer to its survivor
    requester = session.scalar(select(User.id).where(User.tenant_id == tenant_id).order_by(User.id).limit(1))
    session.add(AccessRequest(tenant_id=tenant_id, customer_id=customer_id, requester_id=requester))


def _member(session: Session, tenant_id: int, customer_id: int, contact_id: int | None = None) -> CampaignMember:
    member = CampaignMember(tenant_id=tenant_id, campaign_id=_campaign(session, tenant_id), customer_id=customer_id,
                            contact_id=contact_id)
    session.add(member)
    session.flush()
    return member


def _enrol(session: Session, tenant_id: int, customer_id: int, contact_id: int) -> None:
    _member(session, tenant_id, customer_id, contact_id)


def _message(session: Session, tenant_id: int, customer_id: int, contact_id: int | None) -> None:
    member = _member(session, tenant_id, customer_id)
    step = CampaignStep(tenant_id=tenant_id, campaign_id=member.campaign_id, position=1, kind="wait",
                        config={"days": 1})
    session.add(step)
    session.flush()
    session.add(MarketingMessage(tenant_id=tenant_id, campaign_id=member.campaign_id, step_id=step.id,
                                 member_id=member.id, customer_id=customer_id, contact_id=contact_id,
                                 token=unique("token-"), status="sent"))


def _touch(session: Session, tenant_id: int, customer_id: int, contact_id: int | None) -> None:
    session.add(MarketingEvent(tenant_id=tenant_id, campaign_id=_campaign(session, tenant_id), customer_id=customer_id,
                               contact_id=contact_id, kind="opened"))


def _consent(session: Session, tenant_id: int, customer_id: int, contact_id: int | None) -> None:
    session.add(ConsentRecord(tenant_id=tenant_id, channel="email", address=unique("p") + "@example.cn",
                              customer_id=customer_id, contact_id=contact_id, action="grant", basis="consent",
                              proof_kind="manual", proof="asked at the counter"))


# One row in every table that points at a customer (or a contact), keyed as references_to names them.
CUSTOMER_ROWS: dict[str, Builder] = {
    "access_requests.customer_id": _access_request,
    "activities.customer_id": lambda s, t, c, k: s.add(Activity(tenant_id=t, customer_id=c, summary="Call")),
    "automation_firings.customer_id": _firing,
    "campaign_members.customer_id": lambda s, t, c, k: s.add(
        CampaignMember(tenant_id=t, campaign_id=_campaign(s, t), customer_id=c)),
    "cases.customer_id": lambda s, t, c, k: s.add(Case(tenant_id=t, customer_id=c, subject="Broken")),
    "consent_records.customer_id": lambda s, t, c, k: _consent(s, t, c, None),
    "contacts.customer_id": lambda s, t, c, k: s.add(Contact(tenant_id=t, customer_id=c, name=unique("Person "))),
    "customer_tier_pins.customer_id": lambda s, t, c, k: s.add(
        CustomerTierPin(tenant_id=t, customer_id=c, tier_id=_tier(s, t))),
    "customer_tier_standings.customer_id": lambda s, t, c, k: s.add(
        CustomerTierStanding(tenant_id=t, customer_id=c, tier_id=_tier(s, t), order_total=Decimal("1"))),
    "lifecycle_overrides.customer_id": lambda s, t, c, k: s.add(
        LifecycleOverride(tenant_id=t, customer_id=c, stage="intent", rule_stage="prospect", reason="call")),
    "lifecycle_transitions.customer_id": lambda s, t, c, k: s.add(
        LifecycleTransition(tenant_id=t, customer_id=c, from_stage="prospect", to_stage="intent")),
    "marketing_events.customer_id": lambda s, t, c, k: _touch(s, t, c, None),
    "marketing_messages.customer_id": lambda s, t, c, k: _message(s, t, c, None),
    "opportunities.customer_id": _deal,
    "orders.customer_id": lambda s, t, c, k: s.add(
        Order(tenant_id=t, customer_id=c, order_number=unique("SO-"), total_amount=Decimal("0"))),
    "pool_events.customer_id": lambda s, t, c, k: s.add(PoolEvent(tenant_id=t, customer_id=c, kind="released")),
    "scores.entity_id": _score,
    "tasks.customer_id": lambda s, t, c, k: s.add(Task(tenant_id=t, customer_id=c, title="Call back")),
}
CONTACT_ROWS: dict[str, Builder] = {
    "activities.contact_id": lambda s, t, c, k: s.add(
        Activity(tenant_id=t, customer_id=c, contact_id=k, summary="Met")),
    "campaign_members.contact_id": lambda s, t, c, k: _enrol(s, t, c, k),
    "cases.contact_id": lambda s, t, c, k: s.add(Case(tenant_id=t, customer_id=c, contact_id=k, subject="Help")),
    "consent_records.contact_id": _consent,
    "marketing_events.contact_id": _touch,
    "marketing_messages.contact_id": _message,
}


def test_every_column_pointing_at_a_customer_or_contact_is_covered_by_these_tests() -> None:
    # a new table with a foreign key to customers or contacts fails here until it gets a row above
    assert {reference.key for reference in references_to("customers")} == set(CUSTOMER_ROWS)
    assert {reference.key for reference in references_to("contacts")} == set(CONTACT_ROWS)


def seed_related(db: Database, tenant_id: int, customer_id: int) -> int:
    """One row of every kind on the customer, and on one of its contacts; returns that contact."""
    with db.system_transaction("test: related rows") as session:
        contact = Contact(tenant_id=tenant_id, customer_id=customer_id, name=unique("Contact "), is_primary=True)
        session.add(contact)
        session.flush()
        for build in (*CUSTOMER_ROWS.values(), *CONTACT_ROWS.values()):
            build(session, tenant_id, customer_id, contact.id)
            session.flush()
        return contact.id


def pointing_at(db: Database, key: str, record_id: int) -> int:
    table_name = key.split(".")[0]
    reference = next(r for r in references_to("contacts" if key in CONTACT_ROWS else "customers")
                     if r.key == key and r.table.name == table_name)
    with db.system_session("test: count") as session:
        return int(session.scalar(select(func.count()).select_from(reference.table)
                                  .where(reference.column == record_id, *reference.where)) or 0)


def versions(db: Database, survivor_id: int, merged_id: int, model: type = Customer) -> Versions:
    with db.system_session("test: versions") as session:
        found = dict(session.execute(select(model.id, model.version)  # type: ignore[attr-defined]
                                     .where(model.id.in_([survivor_id, merged_id]))).all())  # type: ignore[attr-defined]
    return Versions(found[survivor_id], found[merged_id])


def test_a_merge_moves_every_related_row_and_leaves_no_orphan(db: Database, world: World) -> None:
    tenant_id = world.admin.tenant_id
    survivor_id = create_random_customer(db, world.admin, email="", industry="Retail", tags="vip")
    merged_id = create_random_customer(db, world.manager, email="buyer@merge.example", industry="Food",
                                       tags="expo,vip")
    seed_related(db, tenant_id, survivor_id)
    seed_related(db, tenant_id, merged_id)
    before = {key: (pointing_at(db, key, survivor_id), pointing_at(db, key, merged_id)) for key in CUSTOMER_ROWS}
    assert all(merged >= 1 for _, merged in before.values())

    result = merge_customers(db, world.admin, survivor_id, merged_id, {}, versions(db, survivor_id, merged_id))

    for key, (survivor_before, merged_before) in before.items():
        assert pointing_at(db, key, merged_id) == 0, key
        if key == "lifecycle_overrides.customer_id":
            continue  # the survivor's own may be released by the lifecycle refresh that follows the merge
        expected = survivor_before + merged_before - result.dropped.get(key, 0)
        if key == "lifecycle_transitions.customer_id":  # plus the survivor's new stage, if the refresh moved it
            assert pointing_at(db, key, survivor_id) in (expected, expected + 1)
        else:
            assert pointing_at(db, key, survivor_id) == expected, key
    # a manual stage of the merged record does not hold for the survivor; the survivor's own tier pin and
    # standing win over the merged record's (one per customer); nothing else had a twin here
    assert result.dropped == {"lifecycle_overrides.customer_id": 1, "customer_tier_pins.customer_id": 1,
                              "customer_tier_standings.customer_id": 1}
    with db.system_session("test: check") as session:
        survivor, merged = session.get(Customer, survivor_id), session.get(Customer, merged_id)
        assert survivor is not None and merged is not None
        assert merged.archived_at is not None and survivor.archived_at is None
        # defaults: the survivor's non-empty values, else the other's; tags combined
        assert (survivor.email, survivor.email_normalized, survivor.industry) == (
            "buyer@merge.example", "buyer@merge.example", "Retail")
        assert survivor.tag_list == ["vip", "expo"]
        # orders and tasks carry their (new) customer's owner and team (triggers of 0010, 0015)
        scopes = list(session.execute(select(Order.customer_owner_id, Order.customer_team_id)
                                      .where(Order.customer_id == survivor_id)).all())
        scopes += session.execute(select(Task.customer_owner_id, Task.customer_team_id)
                                  .where(Task.customer_id == survivor_id)).all()
        assert set(scopes) == {(survivor.owner_id, survivor.team_id)}
        # one primary contact: the survivor's
        assert session.scalar(select(func.count()).select_from(Contact).where(
            Contact.customer_id == survivor_id, Contact.is_primary.is_(True))) == 1
        ledger = session.scalars(select(Merge).where(Merge.merged_id == merged_id)).one()
        assert (ledger.survivor_id, ledger.actor_id, ledger.entity) == (survivor_id, world.admin.user_id, "customer")
        assert ledger.field_choices["tags"] == "both" and ledger.field_choices["email"] == "merged"
        assert ledger.moved["orders.customer_id"] == 1
        # both histories: the merged record keeps its own trail and gets a merge row; the survivor too
        merge_rows = session.execute(select(AuditEvent.entity_id, AuditEvent.changes).where(
            AuditEvent.action == "merge", AuditEvent.entity == "customer")).all()
        assert {row.entity_id for row in merge_rows} == {survivor_id, merged_id}
        assert session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.entity == "customer", AuditEvent.entity_id == merged_id, AuditEvent.action == "create")) == 1
        # every moved record's own history says where it went
        moved_order = session.scalar(select(Order.id).where(Order.customer_id == survivor_id).order_by(Order.id.desc()))
        order_trail = session.scalars(select(AuditEvent.changes).where(
            AuditEvent.entity == "order", AuditEvent.entity_id == moved_order)).all()
        assert {"customer_id": [merged_id, survivor_id], "_merge": [None, ledger.id]} in order_trail
        survivor_transitions = session.scalar(select(func.count()).select_from(LifecycleTransition).where(
            LifecycleTransition.customer_id == survivor_id))
        assert survivor_transitions is not None and survivor_transitions >= 4  # both records' created + seeded
    # the data-quality suites are green after the merge (no orphan, nothing left on the merged record)
    for suite in ("db_integrity", "db_sales"):
        run = run_suite_for_tenant(db, world.admin, suite, data_docs=False)
        assert run.success, [check.check for check in run.failures]


def test_twins_of_rows_the_survivor_already_has_are_dropped_not_duplicated(db: Database, world: World) -> None:
    tenant_id = world.admin.tenant_id
    survivor_id = create_random_customer(db, world.admin)
    merged_id = create_random_customer(db, world.admin)
    with db.system_transaction("test: same campaign") as session:
        campaign_id = _campaign(session, tenant_id, unique("Spring "))
        for customer_id in (survivor_id, merged_id):
            session.add(CampaignMember(tenant_id=tenant_id, campaign_id=campaign_id, customer_id=customer_id))
        model = ScoringModel(tenant_id=tenant_id, scorer="churn_risk", version=next_model_version(session, tenant_id),
                             method="fallback")
        session.add(model)
        session.flush()
        for customer_id in (survivor_id, merged_id):
            session.add(Score(tenant_id=tenant_id, scorer="churn_risk", entity="customer", entity_id=customer_id,
                              model_id=model.id, score=0.1))
    result = merge_customers(db, world.admin, survivor_id, merged_id, {}, versions(db, survivor_id, merged_id))
    assert result.dropped == {"campaign_members.customer_id": 1, "scores.entity_id": 1}
    assert pointing_at(db, "campaign_members.customer_id", survivor_id) == 1


def test_the_chosen_values_win_and_the_owner_brings_its_team_and_pool_clock(db: Database, world: World) -> None:
    with db.transaction(world.admin) as session:
        session.add(FieldDefinition(tenant_id=world.admin.tenant_id, entity="customer", name="employees",
                                    label_en="Employees", label_zh="员工数", field_type="text"))
    survivor_id = create_random_customer(db, world.admin, owner_id=None, name="Kestrel Ltd",
                                         custom_fields={"employees": "10"})
    merged_id = create_random_customer(db, world.admin, owner_id=world.rep.user_id, name="Kestrel Limited",
                                       custom_fields={"employees": "12"})
    with db.system_transaction("test: an old claim") as session:
        merged = session.get(Customer, merged_id)
        assert merged is not None
        merged.owner_since = dt.datetime(2026, 1, 2, 3, 4, 5)
        merged.team_id = world.east_team_id
        pooled = session.get(Customer, survivor_id)
        assert pooled is not None
        pooled.team_id = world.west_team_id  # in west's pool
    choices = {"name": "merged", "owner": "merged", "custom.employees": "merged", "tags": "survivor"}
    merge_customers(db, world.admin, survivor_id, merged_id, choices, versions(db, survivor_id, merged_id))
    with db.system_session("test: check") as session:
        survivor = session.get(Customer, survivor_id)
        assert survivor is not None
        assert (survivor.name, survivor.owner_id, survivor.team_id) == (
            "Kestrel Limited", world.rep.user_id, world.east_team_id)
        assert survivor.custom_fields == {"employees": "12"}
        assert survivor.owner_since == dt.datetime(2026, 1, 2, 3, 4, 5)
        assert survivor.name_key is not None


def test_unknown_fields_and_choices_are_refused_and_nothing_changes(db: Database, world: World) -> None:
    survivor_id = create_random_customer(db, world.admin)
    merged_id = create_random_customer(db, world.admin)
    with pytest.raises(ValidationFailed) as refused:
        merge_customers(db, world.admin, survivor_id, merged_id, {"name": "both", "colour": "merged"},
                        versions(db, survivor_id, merged_id))
    assert set(refused.value.errors) == {"field_choices.name", "field_choices.colour"}
    assert survivor_of_in(db, world, merged_id) is None


def survivor_of_in(db: Database, world: World, record_id: int, entity: str = "customer") -> int | None:
    with db.session(world.admin) as session:
        return survivor_of(session, entity, record_id)


def test_the_old_id_leads_to_the_survivor_through_later_merges_too(db: Database, world: World) -> None:
    first, second, third = (create_random_customer(db, world.admin) for _ in range(3))
    merge_customers(db, world.admin, second, first, {}, versions(db, second, first))
    merge_customers(db, world.admin, third, second, {}, versions(db, third, second))
    assert survivor_of_in(db, world, first) == third
    assert survivor_of_in(db, world, second) == third
    assert survivor_of_in(db, world, third) is None


def test_merging_into_itself_an_already_merged_or_stale_record_is_refused(db: Database, world: World) -> None:
    survivor_id = create_random_customer(db, world.admin)
    merged_id = create_random_customer(db, world.admin)
    other_id = create_random_customer(db, world.admin)
    with pytest.raises(MergeRefused) as itself:
        merge_customers(db, world.admin, survivor_id, survivor_id, {}, Versions(1, 1))
    assert itself.value.message_key == "merge.error.same_record"
    with pytest.raises(StaleRecord):
        merge_customers(db, world.admin, survivor_id, merged_id, {}, Versions(1, 99))
    merge_customers(db, world.admin, survivor_id, merged_id, {}, versions(db, survivor_id, merged_id))
    with pytest.raises(MergeRefused) as again:
        merge_customers(db, world.admin, other_id, merged_id, {}, versions(db, other_id, merged_id))
    assert again.value.message_key == "merge.error.already_merged"
    with pytest.raises(MergeRefused) as into_merged:
        merge_customers(db, world.admin, merged_id, other_id, {}, versions(db, merged_id, other_id))
    assert into_merged.value.message_key == "merge.error.survivor_merged"


def test_only_managers_and_admins_merge_and_only_what_they_see(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep)
    mate = create_random_customer(db, world.rep_same_team)
    far = create_random_customer(db, world.rep_other_team)
    for actor in (world.rep, world.analyst):
        with pytest.raises(AccessDenied):
            merge_customers(db, actor, mine, mate, {}, versions(db, mine, mate))
    with pytest.raises(NotFound):  # the manager of east does not see west's customer
        merge_customers(db, world.manager, mine, far, {}, versions(db, mine, far))
    with pytest.raises(NotFound):  # tenants are isolated
        merge_customers(db, world.other_admin, mine, mate, {}, versions(db, mine, mate))
    assert survivor_of_in(db, world, far) is None
    merge_customers(db, world.manager, mine, mate, {}, versions(db, mine, mate))
    assert survivor_of_in(db, world, mate) == mine


def test_the_preview_counts_what_will_move_and_proposes_the_defaults(db: Database, world: World) -> None:
    survivor_id = create_random_customer(db, world.admin, phone="")
    merged_id = create_random_customer(db, world.admin, phone="+86 138 0013 8000")
    seed_related(db, world.admin.tenant_id, merged_id)
    with db.session(world.admin) as session:
        preview = merge_preview(session, "customer", survivor_id, merged_id)
    assert preview is not None
    assert preview.moves["contacts.customer_id"] == 2 and preview.moves["orders.customer_id"] == 1
    defaults = {row.name: row.default for row in preview.fields}
    assert defaults["phone"] == "merged" and defaults["name"] == "survivor" and defaults["tags"] == "both"
    with db.session(world.rep_other_team) as session:
        assert merge_preview(session, "customer", survivor_id, merged_id) is None


def test_a_contact_merge_moves_activities_and_cases_and_keeps_one_primary(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.admin)
    survivor_id = create_contact(db, world.admin, ContactInput(customer_id, "Lin Mei", email=""))
    merged_id = seed_related(db, world.admin.tenant_id, customer_id)  # the primary contact, with rows
    result = merge_contacts(db, world.admin, survivor_id, merged_id, {"name": "survivor"},
                            versions(db, survivor_id, merged_id, Contact))
    assert result.moved == {key: 1 for key in CONTACT_ROWS}  # one row of every kind that names a contact
    for key in CONTACT_ROWS:
        assert pointing_at(db, key, merged_id) == 0
    with db.system_session("test: check") as session:
        survivor, merged = session.get(Contact, survivor_id), session.get(Contact, merged_id)
        assert survivor is not None and merged is not None
        assert survivor.is_primary and not merged.is_primary and merged.archived_at is not None
    assert survivor_of_in(db, world, merged_id, "contact") == survivor_id
    other_customer = create_random_customer(db, world.admin)
    elsewhere = create_contact(db, world.admin, ContactInput(other_customer, "Lin Mei"))
    with pytest.raises(MergeRefused) as refused:
        merge_contacts(db, world.admin, survivor_id, elsewhere, {}, versions(db, survivor_id, elsewhere, Contact))
    assert refused.value.message_key == "merge.error.other_customer"


def test_the_quality_check_flags_rows_left_on_a_merged_record(db: Database, world: World) -> None:
    survivor_id = create_random_customer(db, world.admin)
    merged_id = create_random_customer(db, world.admin)
    merge_customers(db, world.admin, survivor_id, merged_id, {}, versions(db, survivor_id, merged_id))
    with db.system_transaction("test: a row written to the old id afterwards") as session:
        late = Task(tenant_id=world.admin.tenant_id, customer_id=merged_id, title="Late")
        session.add(late)
        session.flush()
        late_id = late.id
    with db.session(world.admin) as session:
        found = measure(session, CHECKS["rows_on_merged_records"])
    assert found[world.admin.tenant_id].violations == 1
    assert found[world.admin.tenant_id].examples == [{"id": late_id, "label": "tasks.customer_id"}]
