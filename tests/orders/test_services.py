from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import InventoryAlert, Reservation, Stock, StockMovement
from orders.models import Order
from orders.events import OrderError, OrderEvent, OrderLine
from orders.services import Outcome, order_apply_event, reservations_expire

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def event(order_id="O1", status="UNPAID", minutes=0, lines=None, total="30.00"):
    return OrderEvent(
        order_id=order_id,
        status=status,
        updated_at=T0 + timedelta(minutes=minutes),
        placed_at=T0,
        total_amount=Decimal(total),
        lines=lines,
    )


@pytest.fixture
def lipstick(creator, make_product):
    return make_product(creator, stock=10, reorder_point=2, name="Lipstick")


@pytest.fixture
def balm(creator, make_product):
    return make_product(creator, stock=10, reorder_point=2, name="Balm")


def stock_of(product) -> tuple[int, int]:
    stock = Stock.objects.get(product=product)
    return stock.on_hand, stock.reserved


def new_order(shop, *products_quantities, order_id="O1", status="UNPAID"):
    lines = [OrderLine(product.external_id, quantity, Decimal("10")) for product, quantity in products_quantities]
    return order_apply_event(shop=shop, event=event(order_id, status, lines=lines))


def test_new_unpaid_order_reserves_every_line_with_24h_expiry(shop, lipstick, balm):
    order, outcome = new_order(shop, (lipstick, 2), (balm, 3))
    assert outcome == Outcome.CREATED
    assert stock_of(lipstick) == (10, 2) and stock_of(balm) == (10, 3)
    expiries = {r.expires_at for r in Reservation.objects.all()}
    assert len(expiries) == 1
    assert timedelta(hours=23, minutes=59) < expiries.pop() - timezone.now() <= timedelta(hours=24)


def test_paid_status_keeps_the_reservation_from_expiring(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order, _ = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=5))
    assert order.paid_at == T0 + timedelta(minutes=5)
    assert list(Reservation.objects.values_list("status", "expires_at")) == [("active", None)]


def test_first_shipped_status_commits_the_reservation(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order, _ = order_apply_event(shop=shop, event=event(status="IN_TRANSIT", minutes=5))
    assert stock_of(lipstick) == (8, 0)
    assert order.shipped_at == T0 + timedelta(minutes=5)
    order_apply_event(shop=shop, event=event(status="DELIVERED", minutes=9))
    assert stock_of(lipstick) == (8, 0)
    assert StockMovement.objects.filter(reason="ship").count() == 1


def test_cancelled_before_shipping_releases(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order, _ = order_apply_event(shop=shop, event=event(status="CANCELLED", minutes=5))
    assert stock_of(lipstick) == (10, 0)
    assert order.status == "CANCELLED" and order.cancelled_at is not None
    assert Reservation.objects.get().status == "released"


def test_cancel_spelled_cancel_is_accepted(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order, _ = order_apply_event(shop=shop, event=event(status="CANCEL", minutes=5))
    assert order.status == "CANCELLED"
    assert stock_of(lipstick) == (10, 0)


def test_cancelled_after_shipment_does_not_release(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order_apply_event(shop=shop, event=event(status="AWAITING_COLLECTION", minutes=5))
    order, _ = order_apply_event(shop=shop, event=event(status="CANCELLED", minutes=9))
    assert order.status == "CANCELLED"
    assert stock_of(lipstick) == (8, 0)
    assert Reservation.objects.get().status == "committed"


def test_status_regression_is_ignored(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order_apply_event(shop=shop, event=event(status="IN_TRANSIT", minutes=5))
    order, outcome = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=9))
    assert outcome == Outcome.REGRESSION
    assert Order.objects.get().status == "IN_TRANSIT"
    assert stock_of(lipstick) == (8, 0)


def test_older_event_changes_nothing(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=10))
    _, outcome = order_apply_event(shop=shop, event=event(status="CANCELLED", minutes=5))
    assert outcome == Outcome.STALE
    assert Order.objects.get().status == "AWAITING_SHIPMENT"
    assert stock_of(lipstick) == (10, 2)


def test_completed_order_is_not_cancelled_later(shop, lipstick):
    new_order(shop, (lipstick, 2), status="COMPLETED")
    _, outcome = order_apply_event(shop=shop, event=event(status="CANCELLED", minutes=5))
    assert outcome == Outcome.REGRESSION
    assert Order.objects.get().status == "COMPLETED"


def test_order_first_seen_shipped_leaves_stock_alone(shop, lipstick):
    order, _ = new_order(shop, (lipstick, 2), status="IN_TRANSIT")
    assert stock_of(lipstick) == (10, 0)
    assert order.shipped_at is not None and order.paid_at is not None


def test_insufficient_stock_reserves_nothing_flags_the_order_and_raises_a_critical_alert(shop, lipstick, balm):
    order, _ = new_order(shop, (lipstick, 2), (balm, 11))
    assert stock_of(lipstick) == (10, 0) and stock_of(balm) == (10, 0)
    assert Reservation.objects.count() == 0
    assert order.flags == ["insufficient_stock"]
    alert = InventoryAlert.objects.get(type="insufficient_stock")
    assert (alert.product, alert.severity, alert.status) == (balm, "critical", "active")
    assert "needs 11, 10 available" in alert.message


def test_flagged_order_reserves_once_stock_arrives(shop, lipstick):
    from inventory.services.stock import stock_restock

    new_order(shop, (lipstick, 12))
    stock_restock(product=lipstick, quantity=5)
    order, _ = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=5))
    assert order.flags == []
    assert stock_of(lipstick) == (15, 12)


def test_unknown_product_keeps_the_order_flagged_with_an_alert(shop):
    order, _ = order_apply_event(shop=shop, event=event(lines=[OrderLine("NEW-1", 1, Decimal("5"))]))
    assert sorted(order.flags) == ["insufficient_stock", "unknown_product"]
    assert order.items.get().product.external_id == "NEW-1"
    assert InventoryAlert.objects.filter(type="insufficient_stock", product__external_id="NEW-1").exists()


def test_insufficient_stock_alert_is_refreshed_in_place_for_the_next_short_order(shop, lipstick):
    new_order(shop, (lipstick, 20), order_id="A")
    new_order(shop, (lipstick, 30), order_id="B")
    alert = InventoryAlert.objects.get(type="insufficient_stock")
    assert "order B" in alert.message


@pytest.mark.parametrize(
    "bad",
    [
        {"status": "SHIPPED_TO_MARS"},
        {"order_id": ""},
        {"lines": [OrderLine("P", 0)]},
        {"lines": [OrderLine("P", -2)]},
        {"lines": [OrderLine("P", 10**9)]},
        {"lines": [OrderLine("P", 1, Decimal("-1"))]},
        {"total_amount": Decimal("-5")},
    ],
)
def test_bad_order_events_are_refused_and_change_nothing(shop, bad):
    fields = {"order_id": "O1", "status": "UNPAID", "updated_at": T0, "lines": [OrderLine("P", 1)], **bad}
    with pytest.raises(OrderError):
        order_apply_event(shop=shop, event=OrderEvent(**fields))
    assert Order.objects.count() == 0


def test_reservations_expire_releases_unpaid_holds_and_flags_the_order(shop, lipstick):
    new_order(shop, (lipstick, 3))
    assert reservations_expire(now=timezone.now() + timedelta(hours=23)) == 0
    assert reservations_expire(now=timezone.now() + timedelta(hours=25)) == 1
    assert stock_of(lipstick) == (10, 0)
    assert Order.objects.get().flags == ["reservation_expired"]
    assert Reservation.objects.get().status == "expired"
    assert reservations_expire(now=timezone.now() + timedelta(hours=26)) == 0
    assert StockMovement.objects.filter(reason="expire").count() == 1


def test_paid_orders_never_expire(shop, lipstick):
    new_order(shop, (lipstick, 3))
    order_apply_event(shop=shop, event=event(status="ON_HOLD", minutes=1))
    assert reservations_expire(now=timezone.now() + timedelta(days=30)) == 0
    assert stock_of(lipstick) == (10, 3)


def test_expired_order_reserves_again_when_paid(shop, lipstick):
    new_order(shop, (lipstick, 3))
    reservations_expire(now=timezone.now() + timedelta(hours=25))
    order_apply_event(shop=shop, event=event(status="UNPAID", minutes=1))
    assert stock_of(lipstick) == (10, 0)  # still unpaid: stays released
    order, _ = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=2))
    assert stock_of(lipstick) == (10, 3)
    assert order.flags == []


def test_repeated_event_writes_nothing(shop, lipstick):
    new_order(shop, (lipstick, 2))
    order, _ = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=5))
    stamp = Order.objects.get().updated_at
    again, outcome = order_apply_event(shop=shop, event=event(status="AWAITING_SHIPMENT", minutes=5))
    assert outcome == Outcome.UNCHANGED
    assert Order.objects.get().updated_at == stamp
    assert stock_of(lipstick) == (10, 2)
