from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from accounts.models import Creator
from inventory.models import InventoryAlert, Product
from inventory.services.alerts import alert_acknowledge
from inventory.services.catalogue import product_upsert
from inventory.services.stock import stock_adjust, stock_restock, stock_set_on_hand
from orders.models import Order, ShopConnection, SyncOperation
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event, reservations_expire
from creatorflow import health
from orders import rollups
from realtime import selectors, services
from orders.models import OrderMinute, OrderStatsBucket, OrderTotals, ProductShortage
from realtime.models import DashboardMetric

pytestmark = pytest.mark.django_db


def stored(creator) -> dict:
    return selectors.metrics_stored(creator_id=creator.pk)


def place(shop, order_id, *, status="UNPAID", placed_at=None, lines=None, total="10.00", updated_at=None):
    placed_at = placed_at or timezone.now()
    return order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id=order_id,
            status=status,
            updated_at=updated_at or placed_at,
            placed_at=placed_at,
            total_amount=Decimal(total),
            lines=lines,
        ),
    )[0]


def test_metrics_follow_orders_after_commit(shop, creator, make_product, django_capture_on_commit_callbacks):
    product = make_product(creator, stock=5, reorder_point=3, unit_cost="2.50")
    with django_capture_on_commit_callbacks(execute=True):
        place(shop, "A", lines=[OrderLine(product.external_id, 3)], total="30.00")
    with django_capture_on_commit_callbacks(execute=True):
        place(shop, "A", status="COMPLETED", total="30.00", updated_at=timezone.now() + timedelta(minutes=30))
    metrics = stored(creator)
    assert metrics[("orders", "total_count")] == 1
    assert metrics[("orders", "today_count")] in (0, 1)  # 1 unless the test straddles local midnight
    assert metrics[("orders", "total_revenue")] == "30.00"
    assert metrics[("orders", "avg_processing_time")] == 30.0
    assert metrics[("inventory", "total_products")] == 1
    assert metrics[("inventory", "low_stock_count")] == 1
    assert metrics[("inventory", "total_value")] == "5.00"  # 2 left on hand × 2.50


def test_metrics_are_recomputed_once_per_transaction_per_creator(
    shop, creator, make_creator, make_shop, make_product, django_capture_on_commit_callbacks, monkeypatch
):
    other = make_creator("bob")
    other_shop = make_shop(other)
    products = [make_product(creator, stock=100) for _ in range(3)]
    other_product = make_product(other, stock=100)
    calls = []
    real = services.metrics_recompute_many
    monkeypatch.setattr(services, "metrics_recompute_many", lambda **kw: calls.extend(kw["metric_types"]) or real(**kw))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for number in range(5):
            place(shop, f"A{number}", lines=[OrderLine(p.external_id, 1) for p in products])
        place(other_shop, "B1", lines=[OrderLine(other_product.external_id, 1)])
    assert sorted(calls) == sorted([creator.pk, other.pk])
    assert stored(creator)[("orders", "total_count")] == 5


def test_rolled_back_changes_announce_nothing(shop, creator, make_product, django_capture_on_commit_callbacks):
    product = make_product(creator, stock=10)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(RuntimeError), transaction.atomic():
            place(shop, "A", lines=[OrderLine(product.external_id, 1)])
            raise RuntimeError("abort")
    assert callbacks == []
    assert not OrderTotals.objects.filter(creator=creator).exists()


def test_today_counts_in_the_creators_time_zone(make_creator, make_shop):
    tokyo = make_creator("tokyo", timezone="Asia/Tokyo")
    shop = make_shop(tokyo)
    now = datetime(2026, 3, 10, 16, 30, tzinfo=ZoneInfo("UTC"))  # 01:30 on March 11 in Tokyo
    place(shop, "yesterday-tokyo", placed_at=datetime(2026, 3, 10, 14, 59, tzinfo=ZoneInfo("UTC")))
    place(shop, "today-tokyo", placed_at=datetime(2026, 3, 10, 15, 0, tzinfo=ZoneInfo("UTC")))
    values = selectors.metrics_compute(creator_id=tokyo.pk, metric_types={"orders"}, now=now)
    assert values[("orders", "today_count")] == 1
    assert values[("orders", "total_count")] == 2


def test_today_handles_a_quarter_hour_time_zone(make_creator, make_shop):
    kathmandu = make_creator("ktm", timezone="Asia/Kathmandu")  # UTC+05:45
    shop = make_shop(kathmandu)
    now = datetime(2026, 3, 10, 20, 0, tzinfo=ZoneInfo("UTC"))  # 01:45 on March 11 local
    place(shop, "before", placed_at=datetime(2026, 3, 10, 18, 14, tzinfo=ZoneInfo("UTC")))
    place(shop, "after", placed_at=datetime(2026, 3, 10, 18, 15, tzinfo=ZoneInfo("UTC")))
    values = selectors.metrics_compute(creator_id=kathmandu.pk, metric_types={"orders"}, now=now)
    assert values[("orders", "today_count")] == 1


def test_avg_processing_time_counts_orders_shipped_in_the_last_7_days(shop, creator):
    now = timezone.now()
    old = now - timedelta(days=9)
    place(shop, "old", placed_at=old)
    place(shop, "old", status="IN_TRANSIT", updated_at=old + timedelta(minutes=600))
    place(shop, "recent", placed_at=now - timedelta(hours=3))
    place(shop, "recent", status="IN_TRANSIT", updated_at=now - timedelta(hours=2))
    values = selectors.metrics_compute(creator_id=creator.pk, metric_types={"orders"}, now=now)
    assert values[("orders", "avg_processing_time")] == 60.0


def test_health_status_is_the_worst_latest_status_per_component(creator):
    health.health_record(component="tiktok_webhook", status="critical", creator_id=creator.pk)
    health.health_record(component="tiktok_webhook", status="nominal", creator_id=creator.pk)
    health.health_record(component="database", status="warning")
    values = selectors.metrics_compute(creator_id=creator.pk, metric_types={"system"})
    assert values[("system", "health_status")] == "warning"


def test_sync_status_follows_the_latest_resync_and_the_webhook_stream(creator):
    def system() -> dict:
        values = selectors.metrics_compute(creator_id=creator.pk, metric_types={"system"})
        return {key: values[("system", key)] for key in ("sync_status", "last_sync")}

    now = timezone.now()
    resync = SyncOperation.Type.RESYNC
    assert system() == {"sync_status": "synced", "last_sync": None}
    failed = SyncOperation.objects.create(creator=creator, type=resync, status="failed", completed_at=now - timedelta(hours=2))
    assert system() == {"sync_status": "error", "last_sync": None}
    done = SyncOperation.objects.create(creator=creator, type=resync, status="completed", completed_at=now - timedelta(hours=1))
    assert system() == {"sync_status": "synced", "last_sync": done.completed_at.isoformat()}
    running = SyncOperation.objects.create(creator=creator, type=resync, status="running")
    assert system()["sync_status"] == "syncing"
    running.status, running.completed_at = "failed", now - timedelta(minutes=5)
    running.save()
    assert system() == {"sync_status": "error", "last_sync": done.completed_at.isoformat()}  # the latest resync failed
    failed.delete()
    stream = SyncOperation.objects.create(
        creator=creator, type=SyncOperation.Type.WEBHOOK_STREAM, status="completed", last_event_at=now - timedelta(minutes=1)
    )
    assert system() == {"sync_status": "error", "last_sync": stream.last_event_at.isoformat()}
    running.delete()
    assert system()["sync_status"] == "synced"
    SyncOperation.objects.filter(pk=stream.pk).update(status="failed")
    assert system()["sync_status"] == "error"


def test_metrics_recompute_reads_a_fixed_number_of_statements(creator, make_product):
    for n in range(5):
        make_product(creator, stock=n + 1, unit_cost="2.00")
    services.metrics_recompute(creator_id=creator.pk)
    with CaptureQueriesContext(connection) as queries:
        values = services.metrics_recompute(creator_id=creator.pk)
    # timezone, totals, buckets; products, alerts; health, sync operations; one upsert of every value.
    assert len(queries) == 8
    assert values[("inventory", "total_value")] == "30.00"  # (1+2+3+4+5) on hand × 2.00


def test_order_cost_does_not_grow_with_history(shop, creator, make_product):
    product = make_product(creator, stock=10_000, reorder_point=0)

    def queries_for_one_order(order_id):
        with CaptureQueriesContext(connection) as queries:
            place(shop, order_id, lines=[OrderLine(product.external_id, 1)])
        recompute = CaptureQueriesContext(connection)
        with recompute:
            services.metrics_recompute(creator_id=creator.pk)
        return len(queries) + len(recompute)

    first = queries_for_one_order("first")
    # A long history: many orders spread over many days.
    start = timezone.now() - timedelta(days=400)
    Order.objects.bulk_create(
        Order(creator=creator, external_id=f"H{n}", placed_at=start + timedelta(hours=n), tiktok_updated_at=start)
        for n in range(3000)
    )
    services.metrics_resync(creator_id=creator.pk)
    later = queries_for_one_order("later")
    assert later == first


def test_metrics_resync_reports_and_fixes_drift(shop, creator, make_product):
    product = make_product(creator, stock=10)
    place(shop, "A", lines=[OrderLine(product.external_id, 1)])
    services.metrics_recompute(creator_id=creator.pk)
    DashboardMetric.objects.filter(creator=creator, metric_key="total_count").update(value=99)
    OrderTotals.objects.filter(creator=creator).update(orders_count=42)
    drifts = services.metrics_resync(creator_id=creator.pk)
    assert [(d.metric, d.stored, d.actual) for d in drifts] == [("orders.total_count", 99, 1)]
    assert stored(creator)[("orders", "total_count")] == 1
    assert OrderTotals.objects.get(creator=creator).orders_count == 1
    assert services.metrics_resync(creator_id=creator.pk) == []


# --- property: any sequence of operations leaves metrics equal to a from-scratch recomputation ---

STATUSES = ["UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "IN_TRANSIT", "DELIVERED", "COMPLETED", "CANCELLED"]

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("order"),
            st.integers(0, 7),  # order number
            st.sampled_from(STATUSES),
            st.integers(-60 * 24 * 9, 0),  # placed, minutes from now
            st.integers(0, 600),  # event delay, minutes
            st.lists(st.tuples(st.integers(0, 2), st.integers(1, 6)), min_size=1, max_size=3),
            st.integers(1, 500),  # total
        ),
        st.tuples(st.just("restock"), st.integers(0, 2), st.integers(1, 20)),
        st.tuples(st.just("sync"), st.integers(0, 2), st.integers(0, 30)),
        st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-3, 3).filter(bool)),
        st.tuples(st.just("expire"), st.integers(0, 48)),
        st.tuples(st.just("acknowledge"),),
        st.tuples(st.just("reorder"), st.integers(0, 2), st.integers(0, 25)),
    ),
    max_size=25,
)


class MetricsPropertyTests(TestCase):
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(operations)
    def test_metrics_equal_a_from_scratch_recomputation(self, steps):
        creator = Creator.objects.create_user(username="prop", password="x", timezone="America/New_York")
        shop = ShopConnection.objects.create(creator=creator, shop_id="prop-shop", app_key="k", app_secret="s")
        products = [
            product_upsert(creator_id=creator.pk, external_id=f"P{n}", name=f"P{n}", reorder_point=5, unit_cost=Decimal("1.25"))[0]
            for n in range(3)
        ]
        now = timezone.now()
        with self.captureOnCommitCallbacks(execute=True):
            for product in products:
                stock_restock(product=product, quantity=10)
        for step in steps:
            with self.captureOnCommitCallbacks(execute=True):
                self._apply(step, shop, products, now)
        expected = selectors.metrics_from_source(creator_id=creator.pk)
        actual = selectors.metrics_stored(creator_id=creator.pk)
        for key in (key for key in expected if key[0] != "system"):
            assert actual.get(key) == expected[key], key
        rebuilt = rollups.order_rollups_from_source(creator_id=creator.pk)
        stored_buckets = {
            b.start: (b.placed_count, b.shipped_count, b.processing_seconds, b.paid_amount)
            for b in OrderStatsBucket.objects.filter(creator=creator)
            if (b.placed_count, b.shipped_count, b.processing_seconds, b.paid_amount) != (0, 0, 0, 0)
        }
        assert stored_buckets == rebuilt.buckets
        stored_minutes = {
            m.minute: (m.orders, m.units, m.paid_amount, m.short_orders, m.short_units)
            for m in OrderMinute.objects.filter(creator=creator)
            if (m.orders, m.units, m.paid_amount, m.short_orders, m.short_units) != (0, 0, 0, 0, 0)
        }
        assert stored_minutes == rebuilt.minutes
        totals = OrderTotals.objects.filter(creator=creator).first() or OrderTotals(creator=creator)
        assert (totals.orders_count, totals.completed_revenue, totals.short_count, totals.short_units) == rebuilt.totals
        stored_shortages = {
            s.product_id: (s.orders, s.units) for s in ProductShortage.objects.filter(product__creator=creator)
            if (s.orders, s.units) != (0, 0)
        }
        assert stored_shortages == rebuilt.shortages

    def _apply(self, step, shop, products, now):
        kind = step[0]
        if kind == "order":
            _, number, status, placed_minutes, delay, lines, total = step
            placed_at = now + timedelta(minutes=placed_minutes)
            order_apply_event(
                shop=shop,
                event=OrderEvent(
                    order_id=f"O{number}",
                    status=status,
                    updated_at=placed_at + timedelta(minutes=delay),
                    placed_at=placed_at,
                    total_amount=Decimal(total),
                    lines=[OrderLine(products[index].external_id, quantity) for index, quantity in lines],
                ),
            )
        elif kind == "restock":
            stock_restock(product=products[step[1]], quantity=step[2])
        elif kind == "sync":
            stock_set_on_hand(product=products[step[1]], quantity=step[2])
        elif kind == "adjust":
            product = Product.objects.get(pk=products[step[1]].pk)
            stock = product.stocks.get()
            if stock.on_hand + step[2] >= stock.reserved:
                stock_adjust(product=product, delta=step[2])
        elif kind == "expire":
            reservations_expire(now=timezone.now() + timedelta(hours=step[1]))
        elif kind == "acknowledge":
            alert = InventoryAlert.objects.filter(status="active").first()
            if alert:
                alert_acknowledge(alert=alert, by=shop.creator)
        elif kind == "reorder":
            product_upsert(creator_id=shop.creator_id, external_id=products[step[1]].external_id, reorder_point=step[2])
