"""Customer tiers over the API: the tiers list and a visible customer's tier with its reason, every database."""

from __future__ import annotations

from crm_core.models import utcnow
from crm_core.services import customer_tiers as tiers
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from tests.api.conftest import Api
from tests.factories import World, create_random_customer, unique


def test_the_tiers_and_a_customers_tier_read_with_their_reason(api: Api, world: World) -> None:
    gold = tiers.save_tier(api.db, world.admin, tiers.TierInput(code="gold", name_en="Gold", name_zh="金牌", rank=2,
                                                               min_order_total="100000"))
    customer_id = create_random_customer(api.db, world.rep)
    product = create_product(api.db, world.manager, ProductInput(unique("P-"), "Licence", "123456"))
    create_order(api.db, world.admin, OrderInput(customer_id, [OrderLineInput(product, 1)]))
    tiers.run_tier_refresh(api.db, world.admin.tenant_id)

    listed = api.client.get("/api/v1/customer-tiers", headers=api.headers(world.rep))
    assert listed.status_code == 200
    [tier] = listed.json()["data"]
    assert (tier["code"], tier["min_order_total"], tier["customers_by_orders"]) == ("gold", "100000.00", 1)
    assert api.client.get("/api/v1/customer-tiers", headers=api.headers(world.other_admin)).json()["data"] == []

    mine = api.client.get(f"/api/v1/customers/{customer_id}/tier", headers=api.headers(world.rep))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert (body["tier_id"], body["tier_code"], body["basis"], body["order_total"], body["months"]) == (
        gold, "gold", "orders", "123456.00", 12)
    # a customer the caller does not see, or of another tenant, is missing
    assert api.client.get(f"/api/v1/customers/{customer_id}/tier",
                          headers=api.headers(world.rep_other_team)).status_code == 404
    assert api.client.get(f"/api/v1/customers/{customer_id}/tier",
                          headers=api.headers(world.other_admin)).status_code == 404

    until = utcnow().date().replace(year=utcnow().year + 1)
    tiers.pin_customer_tier(api.db, world.admin, customer_id, None)
    plain = create_random_customer(api.db, world.rep)
    tiers.pin_customer_tier(api.db, world.admin, plain, gold, until)
    pinned = api.client.get(f"/api/v1/customers/{plain}/tier", headers=api.headers(world.rep)).json()
    assert (pinned["basis"], pinned["pinned_until"], pinned["order_total"]) == ("pinned", until.isoformat(), None)
    other = create_random_customer(api.db, world.rep)
    default = api.client.get(f"/api/v1/customers/{other}/tier", headers=api.headers(world.rep)).json()
    assert (default["tier_id"], default["basis"]) == (None, "default")
