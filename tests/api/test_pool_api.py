"""The customer pool over the API: claim and release with clear status codes, the same rules as the pages."""

from __future__ import annotations

from sqlalchemy import select

from crm_core.models import Customer
from crm_core.services.pool import PoolRuleForm, save_pool_rule
from tests.api.conftest import Api
from tests.factories import World, create_random_customer


def owner(api: Api, customer_id: int) -> int | None:
    with api.db.system_session("test") as session:
        return session.scalar(select(Customer.owner_id).where(Customer.id == customer_id))


def test_a_rep_releases_over_the_api_and_a_team_mate_claims_within_the_caps(api: Api, world: World) -> None:
    save_pool_rule(api.db, world.admin, PoolRuleForm(team_id=world.east_team_id, daily_claim_cap=1))
    first, second = (create_random_customer(api.db, world.rep) for _ in range(2))
    rep = api.headers(world.rep, **{"If-Match": '"1"'})
    no_version = api.client.post(f"/api/v1/customers/{first}/release", headers=api.headers(world.rep))
    assert no_version.status_code == 428
    released = api.client.post(f"/api/v1/customers/{first}/release", json={"note": "Wrong region"}, headers=rep)
    assert released.status_code == 200 and released.json()["owner_id"] is None
    assert api.client.post(f"/api/v1/customers/{second}/release", headers=rep).status_code == 200

    # the previous owner waits out the cooldown: 409 with the rule's code, in the caller's language
    again = api.client.post(f"/api/v1/customers/{first}/claim",
                            headers=api.headers(world.rep, **{"Accept-Language": "zh-CN"}))
    assert again.status_code == 409 and again.json()["code"] == "pool.error.cooldown"
    assert "才能再次领取" in again.json()["detail"]

    mate = api.headers(world.rep_same_team)
    claimed = api.client.post(f"/api/v1/customers/{first}/claim", headers=mate)
    assert claimed.status_code == 200 and claimed.json()["owner_id"] == world.rep_same_team.user_id
    capped = api.client.post(f"/api/v1/customers/{second}/claim", headers=mate)
    assert capped.status_code == 409 and capped.json()["code"] == "pool.error.daily_cap"
    taken = api.client.post(f"/api/v1/customers/{first}/claim", headers=api.headers(world.manager))
    assert taken.status_code == 409 and taken.json()["code"] == "pool.error.not_in_pool"
    # setting oneself as owner is no way round the caps
    patched = api.client.patch(f"/api/v1/customers/{second}", json={"owner_id": world.rep_same_team.user_id},
                               headers=api.headers(world.rep_same_team, **{"If-Match": '"2"'}))
    assert patched.status_code == 409 and patched.json()["code"] == "pool.error.claim_required"
    assert owner(api, second) is None
    # another team's rep does not see the east pool; a read-only token writes nothing
    assert api.client.post(f"/api/v1/customers/{second}/claim",
                           headers=api.headers(world.rep_other_team)).status_code == 404
    assert api.client.post(f"/api/v1/customers/{second}/claim",
                           headers=api.headers(world.manager, scope="read")).status_code == 403
