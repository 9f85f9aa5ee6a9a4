"""An alert resolved by hand while its condition still holds comes back with the product's next change."""

from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import InventoryAlert
from inventory.services.alerts import alert_resolve
from inventory.services.stock import stock_set_on_hand
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event

pytestmark = pytest.mark.django_db


def _order(shop, product, *, order_id: str, quantity: int):
    now = timezone.now()
    order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id=order_id, status="AWAITING_SHIPMENT", updated_at=now, placed_at=now,
            total_amount=Decimal("5.00") * quantity,
            lines=[OrderLine(product_id=product.external_id, quantity=quantity, unit_price=Decimal("5.00"))],
        ),
    )


def _open(product, type: str) -> list[InventoryAlert]:
    return list(InventoryAlert.objects.filter(product=product, type=type, status__in=InventoryAlert.OPEN_STATUSES))


def test_a_stockout_resolved_by_hand_is_raised_again_by_the_next_order(creator, shop, make_product):
    product = make_product(creator, stock=2, reorder_point=5, external_id="TT-OUT")
    _order(shop, product, order_id="A-1", quantity=2)
    [stockout] = _open(product, "stockout")
    alert_resolve(alert=stockout)
    assert _open(product, "stockout") == []

    _order(shop, product, order_id="A-2", quantity=1)  # short: nothing left

    [again] = _open(product, "stockout")
    assert again.pk != stockout.pk and again.severity == "emergency" and again.status == "active"


def test_a_short_order_alert_resolved_by_hand_is_raised_again_and_counts_every_short_order(creator, shop, make_product):
    product = make_product(creator, stock=1, reorder_point=1, external_id="TT-SHORT")
    _order(shop, product, order_id="S-1", quantity=3)
    [short] = _open(product, "insufficient_stock")
    alert_resolve(alert=short)

    _order(shop, product, order_id="S-2", quantity=2)

    [again] = _open(product, "insufficient_stock")
    assert again.pk != short.pk
    assert "2 short orders (5 units)" in again.message


def test_a_low_stock_alert_resolved_by_hand_is_raised_again_by_a_stock_count(creator, make_product):
    product = make_product(creator, stock=3, reorder_point=10)
    [low] = _open(product, "low_stock")
    alert_resolve(alert=low)

    stock_set_on_hand(product=product, quantity=3, reference="count")  # the same count: still low

    [again] = _open(product, "low_stock")
    assert again.pk != low.pk
