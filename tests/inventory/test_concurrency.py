"""Reservations under contention: real threads, real PostgreSQL row locks."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.utils import timezone

from inventory.models import Reservation, Stock, StockMovement
from orders.models import Order
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_in_threads(count: int, work) -> list:
    barrier = threading.Barrier(count)

    def task(index):
        try:
            barrier.wait()
            return work(index)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(task, range(count)))


def test_32_buyers_of_a_10_unit_sku_get_exactly_10_reservations(shop, creator, make_product):
    product = make_product(creator, stock=10, reorder_point=0)

    def buy(index):
        order, _ = order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=f"buyer-{index}",
                status="AWAITING_SHIPMENT",
                updated_at=timezone.now(),
                total_amount=Decimal("9.99"),
                lines=[OrderLine(product.external_id, 1, Decimal("9.99"))],
            ),
        )
        return order.flags

    flags = _run_in_threads(32, buy)
    assert flags.count([]) == 10
    assert flags.count(["insufficient_stock"]) == 22
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved, stock.available) == (10, 10, 0)
    assert Reservation.objects.filter(status="active").count() == 10
    assert StockMovement.objects.filter(reason="reserve").count() == 10
    assert Order.objects.count() == 32


def test_orders_locking_the_same_skus_in_opposite_line_order_do_not_deadlock(shop, creator, make_product):
    first = make_product(creator, stock=1000, reorder_point=0)
    second = make_product(creator, stock=1000, reorder_point=0)
    with connection.cursor() as cursor:
        # Make a deadlock, were there one, fail fast instead of after the default second.
        cursor.execute("ALTER DATABASE " + connection.settings_dict["NAME"] + " SET deadlock_timeout = '100ms'")

    def buy(index):
        pair = (first, second) if index % 2 else (second, first)
        order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=f"pair-{index}",
                status="UNPAID",
                updated_at=timezone.now(),
                lines=[OrderLine(product.external_id, 1) for product in pair],
            ),
        )
        return True

    results = _run_in_threads(16, lambda index: all(buy(index * 10 + n) for n in range(10)))
    assert all(results)
    assert sorted(Stock.objects.values_list("reserved", flat=True)) == [160, 160]


def test_duplicate_deliveries_of_one_new_order_create_it_once(shop, creator, make_product):
    product = make_product(creator, stock=100, reorder_point=0)

    def deliver(index):
        order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id="same-order",
                status="UNPAID",
                updated_at=timezone.now().replace(microsecond=0),
                lines=[OrderLine(product.external_id, 2)],
            ),
        )

    _run_in_threads(10, deliver)
    assert Order.objects.count() == 1
    assert Reservation.objects.count() == 1
    assert Stock.objects.get(product=product).reserved == 2
