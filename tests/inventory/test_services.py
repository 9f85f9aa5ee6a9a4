from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.utils import timezone

from inventory.models import InventoryAlert, Reservation, Stock, StockMovement, Warehouse
from inventory.levels import stockout_eta_hours
from inventory.services.alerts import alert_acknowledge, alert_resolve, alerts_evaluate
from inventory.services.errors import InsufficientStock, StockError
from inventory.services.stock import (
    ReservationRequest,
    SellableCount,
    stock_adjust,
    stock_commit,
    stock_release,
    stock_reserve,
    stock_restock,
    stock_reconcile,
    stock_set_on_hand,
)
from orders.models import Order, OrderItem

pytestmark = pytest.mark.django_db

Alert = InventoryAlert


def _stock(product) -> Stock:
    return Stock.objects.get(product=product, warehouse__is_default=True)


def _order_item(creator, product, quantity: int, external_id: str = "O1") -> OrderItem:
    now = timezone.now()
    order, _ = Order.objects.get_or_create(
        creator=creator, external_id=external_id, defaults={"placed_at": now, "tiktok_updated_at": now}
    )
    return OrderItem.objects.create(order=order, product=product, quantity=quantity)


def _reserve(creator, *lines, expires_at=None, external_id="O1"):
    requests = []
    for product, quantity in lines:
        item = _order_item(creator, product, quantity, external_id)
        requests.append(ReservationRequest(item.pk, product.pk, quantity))
    return stock_reserve(requests=requests, expires_at=expires_at, sold_at=timezone.now(), reference=external_id)


def assert_ledger_replays(*stocks):
    for stock in stocks:
        stock.refresh_from_db()
        sums = StockMovement.objects.filter(stock=stock).aggregate(on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta"))
        assert (sums["on_hand"] or 0, sums["reserved"] or 0) == (stock.on_hand, stock.reserved)


def test_stock_restock_adds_on_hand_and_writes_ledger(creator, make_product):
    product = make_product(creator)
    stock_restock(product=product, quantity=7, reference="PO-1")
    stock_restock(product=product, quantity=3, reference="PO-2")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 0, 10)
    assert list(StockMovement.objects.filter(stock=stock).values_list("reason", "on_hand_delta", "reference")) == [
        ("restock", 7, "PO-1"),
        ("restock", 3, "PO-2"),
    ]


def test_stock_reserve_holds_units_without_touching_on_hand(creator, make_product):
    product = make_product(creator, stock=10)
    reservations = _reserve(creator, (product, 4))
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 4, 6)
    assert [(r.quantity, r.status) for r in reservations] == [(4, "active")]
    assert_ledger_replays(stock)


def test_stock_reserve_refuses_more_than_available_and_writes_nothing(creator, make_product):
    plenty = make_product(creator, stock=10, name="Plenty")
    scarce = make_product(creator, stock=2, name="Scarce")
    movements_before = StockMovement.objects.count()
    with pytest.raises(InsufficientStock) as error:
        _reserve(creator, (plenty, 3), (scarce, 5))
    assert [(s.product_name, s.requested, s.available) for s in error.value.shortages] == [("Scarce", 5, 2)]
    assert "Scarce needs 5, 2 available" in str(error.value)
    assert [(s.on_hand, s.reserved) for s in Stock.objects.order_by("pk")] == [(10, 0), (2, 0)]
    assert Reservation.objects.count() == 0
    assert StockMovement.objects.count() == movements_before


def test_stock_reserve_sums_lines_of_the_same_product(creator, make_product):
    product = make_product(creator, stock=5)
    with pytest.raises(InsufficientStock):
        _reserve(creator, (product, 3), (product, 3))
    assert _stock(product).reserved == 0


def test_stock_reserve_spreads_a_line_over_warehouses(creator, make_product):
    product = make_product(creator, stock=3)
    second = Warehouse.objects.create(creator=creator, name="Overflow", external_id="W2")
    stock_restock(product=product, quantity=4, warehouse=second)
    reservations = _reserve(creator, (product, 6))
    assert sorted(r.quantity for r in reservations) == [3, 3]
    assert sum(Stock.objects.filter(product=product).values_list("available", flat=True)) == 1


def test_stock_release_returns_units_to_available(creator, make_product):
    product = make_product(creator, stock=10)
    reservations = _reserve(creator, (product, 4))
    released = stock_release(reservations=reservations, reference="cancel", sold_at=timezone.now())
    assert released == 1
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved) == (10, 0)
    assert Reservation.objects.get().status == "released"
    assert_ledger_replays(stock)


def test_stock_release_twice_releases_once(creator, make_product):
    product = make_product(creator, stock=10)
    reservations = _reserve(creator, (product, 4))
    stock_release(reservations=reservations, reference="cancel", sold_at=None)
    assert stock_release(reservations=reservations, reference="cancel again", sold_at=None) == 0
    assert _stock(product).reserved == 0
    assert StockMovement.objects.filter(reason="release").count() == 1


def test_stock_commit_takes_units_out_of_on_hand_and_reserved(creator, make_product):
    product = make_product(creator, stock=10)
    reservations = _reserve(creator, (product, 4))
    stock_commit(reservations=reservations, reference="shipped")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved, stock.available) == (6, 0, 6)
    assert Reservation.objects.get().status == "committed"
    assert_ledger_replays(stock)


def test_stock_release_expired_marks_reservation_expired(creator, make_product):
    product = make_product(creator, stock=10)
    reservations = _reserve(creator, (product, 4), expires_at=timezone.now() - timedelta(minutes=1))
    stock_release(reservations=reservations, reference="expired", sold_at=None, expired=True)
    assert Reservation.objects.get().status == "expired"
    assert StockMovement.objects.filter(reason="expire", reserved_delta=-4).count() == 1


def test_stock_set_on_hand_records_the_difference_as_sync(creator, make_product):
    product = make_product(creator, stock=10)
    stock_set_on_hand(product=product, quantity=25, reference="tiktok")
    stock_set_on_hand(product=product, quantity=25, reference="tiktok again")
    stock_set_on_hand(product=product, quantity=8, reference="tiktok")
    stock = _stock(product)
    assert stock.on_hand == 8
    assert list(StockMovement.objects.filter(reason="sync").values_list("on_hand_delta", flat=True)) == [15, -17]
    assert_ledger_replays(stock)


def test_stock_set_on_hand_never_drops_below_reserved(creator, make_product):
    product = make_product(creator, stock=10)
    _reserve(creator, (product, 6))
    stock_set_on_hand(product=product, quantity=2, reference="tiktok")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved, stock.available) == (6, 6, 0)
    assert "reported 2, 6 reserved" in StockMovement.objects.filter(reason="sync").get().reference


def test_stock_reconcile_keeps_available_equal_to_what_tiktok_can_sell(creator, make_product):
    product = make_product(creator, stock=20)
    _reserve(creator, (product, 3))
    stock_reconcile(product=product, counts=[SellableCount(None, 17)], reference="tiktok")
    assert (_stock(product).on_hand, _stock(product).available) == (20, 17)
    stock_reconcile(product=product, counts=[SellableCount(None, 15, committed=3)], reference="tiktok")
    assert (_stock(product).on_hand, _stock(product).available) == (18, 15)
    stock_reconcile(product=product, counts=[SellableCount(None, 0, committed=1)], reference="tiktok")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved, stock.available) == (3, 3, 0)
    assert "reported 0 + 1, 3 reserved" in StockMovement.objects.filter(reason="sync").last().reference
    assert_ledger_replays(stock)


def test_stock_reconcile_new_rows_only_leaves_counted_rows_alone(creator, make_product):
    product = make_product(creator, stock=20)
    warehouse = Warehouse.objects.create(creator=creator, name="Second", external_id="W2")
    stock_reconcile(
        product=product, counts=[SellableCount(None, 5), SellableCount(warehouse, 7)], new_rows_only=True
    )
    assert sorted(Stock.objects.filter(product=product).values_list("on_hand", flat=True)) == [7, 20]


def test_stock_adjust_cannot_remove_reserved_units(creator, make_product):
    product = make_product(creator, stock=10)
    _reserve(creator, (product, 8))
    with pytest.raises(StockError):
        stock_adjust(product=product, delta=-3, reference="damaged")
    stock_adjust(product=product, delta=-2, reference="damaged")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved) == (8, 8)
    assert_ledger_replays(stock)


@pytest.mark.parametrize("quantity", [0, -1, 1_000_001, 2.5, True, "3"])
def test_stock_restock_rejects_bad_quantities(creator, make_product, quantity):
    product = make_product(creator, stock=1)
    with pytest.raises(StockError):
        stock_restock(product=product, quantity=quantity)
    assert _stock(product).on_hand == 1


def test_database_refuses_negative_available(creator, make_product):
    product = make_product(creator, stock=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Stock.objects.filter(product=product).update(reserved=4)


def test_ledger_replays_after_mixed_operations(creator, make_product):
    product = make_product(creator, stock=20)
    first = _reserve(creator, (product, 5), external_id="A")
    second = _reserve(creator, (product, 3), external_id="B")
    stock_commit(reservations=first, reference="ship A")
    stock_release(reservations=second, reference="cancel B", sold_at=None)
    stock_set_on_hand(product=product, quantity=30, reference="count")
    stock_adjust(product=product, delta=-1, reference="broken")
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved) == (29, 0)
    assert_ledger_replays(stock)


# --- alerts ----------------------------------------------------------------------------------


def _open_alerts(product):
    return {
        alert.type: alert.severity
        for alert in Alert.objects.filter(product=product, status__in=Alert.OPEN_STATUSES)
    }


@pytest.mark.parametrize(
    ("on_hand", "expected"),
    [
        (11, {}),
        (10, {"low_stock": "warning"}),
        (6, {"low_stock": "warning"}),
        (5, {"low_stock": "critical"}),
        (1, {"low_stock": "critical"}),
        (0, {"stockout": "emergency"}),
    ],
)
def test_alert_thresholds_at_the_boundaries(creator, make_product, on_hand, expected):
    product = make_product(creator, reorder_point=10)
    stock_set_on_hand(product=product, quantity=on_hand)
    assert _open_alerts(product) == expected


def test_alert_threshold_half_of_odd_reorder_point_rounds_down(creator, make_product):
    product = make_product(creator, reorder_point=5, stock=3)
    assert _open_alerts(product) == {"low_stock": "warning"}
    stock_set_on_hand(product=product, quantity=2)
    assert _open_alerts(product) == {"low_stock": "critical"}


def test_alert_escalates_and_deescalates_in_place(creator, make_product):
    product = make_product(creator, reorder_point=10, stock=8)
    alert = Alert.objects.get(product=product)
    stock_set_on_hand(product=product, quantity=4)
    stock_set_on_hand(product=product, quantity=9)
    alert.refresh_from_db()
    assert Alert.objects.filter(product=product, type="low_stock").count() == 1
    assert (alert.severity, alert.status, alert.available) == ("warning", "active", 9)


def test_acknowledged_alert_stays_open_and_reactivates_when_it_gets_worse(creator, make_product):
    product = make_product(creator, reorder_point=10, stock=8)
    alert = alert_acknowledge(alert=Alert.objects.get(product=product), by=creator)
    stock_set_on_hand(product=product, quantity=7)
    alert.refresh_from_db()
    assert (alert.status, alert.severity) == ("acknowledged", "warning")
    stock_set_on_hand(product=product, quantity=3)
    alert.refresh_from_db()
    assert (alert.status, alert.severity, alert.acknowledged_at) == ("active", "critical", None)


def test_alerts_resolve_themselves_above_the_reorder_point(creator, make_product):
    product = make_product(creator, reorder_point=10, stock=0)
    stock_set_on_hand(product=product, quantity=0)
    assert _open_alerts(product) == {"stockout": "emergency"}
    stock_restock(product=product, quantity=3)
    assert _open_alerts(product) == {"low_stock": "critical"}
    stock_restock(product=product, quantity=20)
    assert _open_alerts(product) == {}
    assert set(Alert.objects.filter(product=product).values_list("type", "status")) == {
        ("stockout", "resolved"),
        ("low_stock", "resolved"),
    }


def test_one_open_alert_per_product_and_type_is_enforced_by_the_database(creator, make_product):
    product = make_product(creator, reorder_point=10, stock=5)
    with pytest.raises(IntegrityError), transaction.atomic():
        Alert.objects.create(
            creator=creator, product=product, type="low_stock", severity="warning", message="duplicate"
        )


def test_alert_acknowledge_and_resolve_by_hand(creator, make_product):
    product = make_product(creator, reorder_point=10, stock=5)
    alert = Alert.objects.get(product=product)
    alert_acknowledge(alert=alert, by=creator)
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", creator)
    alert_resolve(alert=alert)
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at is not None


def test_velocity_counts_units_sold_over_24_hours(creator, make_product):
    product = make_product(creator, stock=1000, reorder_point=0)
    _reserve(creator, (product, 12), external_id="A")
    _reserve(creator, (product, 12), external_id="B")
    product.refresh_from_db()
    assert product.velocity_per_hour == Decimal("1.000")  # 24 units in 24 hours, one order row each


def test_velocity_forgets_released_units(creator, make_product):
    product = make_product(creator, stock=1000, reorder_point=0)
    reservations = _reserve(creator, (product, 48))
    stock_release(reservations=reservations, reference="cancel", sold_at=timezone.now())
    product.refresh_from_db()
    assert product.velocity_per_hour == 0


def test_velocity_ignores_sales_older_than_24_hours(creator, make_product):
    product = make_product(creator, stock=1000, reorder_point=0)
    _reserve(creator, (product, 24))
    alerts_evaluate(product_ids=[product.pk], now=timezone.now() + timedelta(hours=24, minutes=1))
    product.refresh_from_db()
    assert product.velocity_per_hour == 0


@pytest.mark.parametrize(
    ("available", "velocity", "eta"),
    [(10, Decimal("2"), 5), (11, Decimal("2"), 6), (0, Decimal("3"), 0), (10, Decimal("0"), None)],
)
def test_stockout_eta_rounds_hours_up_and_is_unknown_without_sales(available, velocity, eta):
    assert stockout_eta_hours(available=available, velocity_per_hour=velocity) == eta


def test_velocity_anomaly_needs_three_times_the_daily_rate_and_ten_units(creator, make_product):
    product = make_product(creator, stock=1000, reorder_point=0)
    _reserve(creator, (product, 9), external_id="A")
    assert "velocity_anomaly" not in _open_alerts(product)  # 9 units: below the 10-unit floor
    _reserve(creator, (product, 1), external_id="B")
    assert _open_alerts(product)["velocity_anomaly"] == "warning"


def test_velocity_anomaly_resolves_when_the_last_hour_calms_down(creator, make_product):
    product = make_product(creator, stock=1000, reorder_point=0)
    _reserve(creator, (product, 20))
    assert "velocity_anomaly" in _open_alerts(product)
    alerts_evaluate(product_ids=[product.pk], now=timezone.now() + timedelta(hours=2))
    assert "velocity_anomaly" not in _open_alerts(product)


def test_velocity_anomaly_is_not_raised_for_steady_sales(creator, make_product):
    from inventory.models import ProductSalesMinute

    product = make_product(creator, stock=1000, reorder_point=0)
    now = timezone.now().replace(second=0, microsecond=0)
    # 10 units in every hour of the last day: the last hour is not 3× the hourly rate.
    ProductSalesMinute.objects.bulk_create(
        ProductSalesMinute(product=product, minute=now - timedelta(hours=hour, minutes=30), units=10)
        for hour in range(24)
    )
    alerts_evaluate(product_ids=[product.pk], now=now)
    product.refresh_from_db()
    assert product.velocity_per_hour == Decimal("10.000")
    assert "velocity_anomaly" not in _open_alerts(product)
