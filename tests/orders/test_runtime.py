import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from inventory.models import Reservation, Stock, StockMovement
from orders.runtime import expiry_timer_start
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event, reservations_expire


def _unpaid_order(shop, product, order_id, quantity=1, *, expired=True):
    order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id=order_id, status="UNPAID", updated_at=timezone.now(), lines=[OrderLine(product.external_id, quantity)]
        ),
    )
    if expired:
        Reservation.objects.filter(order_item__order__external_id=order_id).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )


@pytest.mark.django_db
def test_reservations_expire_command_releases_and_reports(shop, creator, make_product, capsys):
    product = make_product(creator, stock=10)
    _unpaid_order(shop, product, "A", 3)
    _unpaid_order(shop, product, "B", 2, expired=False)
    call_command("reservations_expire")
    assert "Released 1 expired reservation(s)." in capsys.readouterr().out
    assert Stock.objects.get(product=product).reserved == 2
    call_command("reservations_expire")
    assert "Released 0 expired reservation(s)." in capsys.readouterr().out


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_expiry_runs_at_once_release_each_reservation_once(shop, creator, make_product):
    product = make_product(creator, stock=100)
    for number in range(30):
        _unpaid_order(shop, product, f"O{number}", 2)
    barrier = threading.Barrier(2)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(reservations_expire())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sum(results) == 30
    assert Stock.objects.get(product=product).reserved == 0
    assert StockMovement.objects.filter(reason="expire").count() == 30


@pytest.mark.django_db(transaction=True)
def test_in_process_timer_releases_expired_reservations(shop, creator, make_product):
    product = make_product(creator, stock=10)
    _unpaid_order(shop, product, "A", 4)
    timer = expiry_timer_start(interval=0.05)
    try:
        deadline = time.monotonic() + 10
        while Stock.objects.get(product=product).reserved and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timer.stop()
        timer.join(timeout=5)
    assert Stock.objects.get(product=product).reserved == 0
    assert Reservation.objects.get().status == "expired"
