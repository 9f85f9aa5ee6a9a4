"""The reads a publishing cycle makes for many creators at once answer exactly what each
creator's own read answers, and never one creator's rows for another."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from creatorflow.health import health_record
from inventory import selectors as inventory_selectors
from orders import selectors as order_selectors
from orders.events import OrderEvent, OrderLine
from orders.models import Order, SyncOperation
from orders.services import order_apply_event
from realtime import selectors
from realtime.live import selectors as live_selectors
from realtime.live.services import live_start

pytestmark = pytest.mark.django_db


def _order(shop, product, number: int, *, currency: str = "", hours_ago: float = 0) -> Order:
    placed = timezone.now() - timedelta(hours=hours_ago)
    order, _ = order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id=f"M-{shop.pk}-{number}", status="AWAITING_SHIPMENT", updated_at=placed, placed_at=placed,
            total_amount=Decimal("20.00"), currency=currency,
            lines=[OrderLine(product_id=product.external_id, quantity=2, unit_price=Decimal("10.00"))],
        ),
    )
    return order


@pytest.fixture
def sellers(make_creator, make_shop, make_product):
    """Three sellers unlike each other: busy in Tokyo during a LIVE, quiet in UTC, and brand new."""
    tokyo, quiet, new = make_creator("tokyo", timezone="Asia/Tokyo"), make_creator("quiet"), make_creator("new")
    tokyo_shop, quiet_shop = make_shop(tokyo), make_shop(quiet, currency="EUR")
    make_shop(new)
    tokyo_products = [make_product(tokyo, stock=6, reorder_point=10), make_product(tokyo, stock=500)]
    quiet_product = make_product(quiet, stock=3, reorder_point=10)
    live_start(creator_id=tokyo.pk, title="Tokyo LIVE")
    orders = {tokyo.pk: [], quiet.pk: [], new.pk: []}
    for number in range(6):
        orders[tokyo.pk].append(_order(tokyo_shop, tokyo_products[number % 2], number, currency="JPY", hours_ago=number * 3))
    orders[quiet.pk].append(_order(quiet_shop, quiet_product, 1, hours_ago=30))  # no currency: the shop's
    SyncOperation.objects.create(creator=tokyo, shop=tokyo_shop, type=SyncOperation.Type.RESYNC, status="running")
    SyncOperation.objects.create(
        creator=quiet, shop=quiet_shop, type=SyncOperation.Type.RESYNC, status="failed", completed_at=timezone.now()
    )
    for number in range(8):
        SyncOperation.objects.create(creator=tokyo, type=SyncOperation.Type.RESYNC, status="completed", completed_at=timezone.now())
    health_record(component="database", status="nominal")
    health_record(component="tiktok_webhook", status="critical", creator_id=quiet.pk)
    health_record(component="database", status="warning", creator_id=tokyo.pk)
    products = {tokyo.pk: {p.pk for p in tokyo_products}, quiet.pk: {quiet_product.pk}, new.pk: set()}
    return [tokyo.pk, quiet.pk, new.pk], orders, products


def test_metrics_of_several_creators_equal_each_creators_own(sellers):
    ids, _, _ = sellers
    now = timezone.now()
    together = selectors.metrics_compute_many(metric_types=dict.fromkeys(ids), now=now)
    assert together == {creator_id: selectors.metrics_compute(creator_id=creator_id, now=now) for creator_id in ids}
    assert together[ids[0]][("orders", "total_count")] == 6 and together[ids[2]][("orders", "total_count")] == 0
    assert together[ids[1]][("system", "health_status")] == "critical"  # its own record, not another's
    assert together[ids[0]][("system", "health_status")] == "warning"
    assert together[ids[2]][("system", "health_status")] == "nominal"
    assert (together[ids[0]][("system", "sync_status")], together[ids[1]][("system", "sync_status")]) == ("syncing", "error")


def test_the_panels_reads_of_several_creators_equal_each_creators_own(sellers):
    ids, _, _ = sellers
    now = timezone.now()
    assert order_selectors.orders_currency_many(creator_ids=ids) == {
        creator_id: order_selectors.orders_currency(creator_id=creator_id) for creator_id in ids
    }
    assert order_selectors.orders_currency_many(creator_ids=ids)[ids[1]] == "EUR"
    recent = order_selectors.sync_operations_recent_many(creator_ids=ids)
    assert {c: [op.pk for op in ops] for c, ops in recent.items()} == {
        c: [op.pk for op in order_selectors.sync_operations_recent(creator_id=c)] for c in ids
    }
    assert len(recent[ids[0]]) == order_selectors.SYNC_OPERATIONS_LIMIT and recent[ids[0]][0].status == "running"
    assert live_selectors.live_running_many(creator_ids=ids) == {c: live_selectors.live_running(creator_id=c) for c in ids}
    assert selectors.orders_per_hour_many(creator_ids=ids, now=now) == {
        c: selectors.orders_per_hour(creator_id=c, now=now) for c in ids
    }
    assert selectors.creator_tz_many(ids) == {c: selectors.creator_tz(c) for c in ids}
    assert selectors.metrics_stored_many(creator_ids=ids) == {c: selectors.metrics_stored(creator_id=c) for c in ids}


def test_the_rows_of_several_creators_are_each_creators_own_and_no_one_elses(sellers):
    ids, orders, products = sellers
    tokyo, quiet, new = ids
    stolen = orders[tokyo][0].pk  # asked for on behalf of another seller: never answered
    asked = {tokyo: {order.pk for order in orders[tokyo][:3]}, quiet: {orders[quiet][0].pk, stolen}, new: {stolen}}
    found = order_selectors.orders_with_ids_many(order_ids=asked)
    assert {c: sorted(o.pk for o in found[c]) for c in ids} == {
        c: sorted(o.pk for o in order_selectors.orders_with_ids(creator_id=c, order_ids=asked[c])) for c in ids
    }
    assert [o.pk for o in found[quiet]] == [orders[quiet][0].pk] and found[new] == []

    wanted = {tokyo: products[tokyo], quiet: products[quiet] | products[tokyo], new: products[tokyo]}
    rows = inventory_selectors.inventory_rows_many(product_ids=wanted)
    assert rows == {
        c: inventory_selectors.inventory_rows(creator_id=c, product_ids=list(wanted[c] & products[c]), limit=None)[0]
        for c in ids
    }
    assert {row.product_pk for row in rows[quiet]} == products[quiet] and rows[new] == []
    alerts = inventory_selectors.alerts_open_many(product_ids=wanted)
    assert {c: [a.pk for a in alerts[c]] for c in ids} == {
        c: [a.pk for a in inventory_selectors.alerts_open(creator_id=c, product_ids=list(wanted[c]))] for c in ids
    }
    assert alerts[tokyo] and alerts[quiet] and alerts[new] == []
    available = inventory_selectors.products_available_many(product_ids=wanted)
    assert available == {
        **inventory_selectors.products_available(creator_id=tokyo, product_ids=products[tokyo]),
        **inventory_selectors.products_available(creator_id=quiet, product_ids=products[quiet]),
    }


def test_a_burst_of_rows_reads_each_creators_newest_up_to_the_lists_length_with_their_items(sellers, django_assert_num_queries):
    ids, orders, _ = sellers
    tokyo, quiet, _ = ids
    asked = {tokyo: {order.pk for order in orders[tokyo]}, quiet: {orders[quiet][0].pk, orders[tokyo][0].pk}}

    found = order_selectors.orders_with_ids_many(order_ids=asked, limit=2)

    assert [o.pk for o in found[tokyo]] == [o.pk for o in orders[tokyo][:2]]  # the newest placed, newest first
    assert [o.pk for o in found[quiet]] == [orders[quiet][0].pk]  # another's newer order takes no place
    expected = [(item.quantity, item.product.name) for item in orders[tokyo][0].items.select_related("product")]
    with django_assert_num_queries(0):  # the kept orders' items and products came with the read
        assert [(item.quantity, item.product.name) for item in found[tokyo][0].items.all()] == expected
