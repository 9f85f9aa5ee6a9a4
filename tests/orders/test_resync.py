"""tiktok_resync end to end against the local fake TikTok Shop API."""

import io
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from inventory.models import Product, ProductSku, Reservation, Stock, StockMovement
from orders.models import Order, SyncOperation
from orders.payloads import order_event_from_api
from orders.resync import ResyncError, tiktok_resync
from orders.services import order_apply_event
from orders.syncs import STALE_MESSAGE, sync_operations_fail_stale
from orders.tiktok import TikTokClient

from .conftest import inventory_body, order_body

pytestmark = pytest.mark.django_db


def _product(product_id: str, quantity: int, *, warehouse="W1", title=None):
    return {
        "id": product_id,
        "title": title or f"Product {product_id}",
        "update_time": int(time.time()),
        "skus": [{"id": f"S-{product_id}", "seller_sku": f"SKU-{product_id}",
                  "inventory": [{"warehouse_id": warehouse, "quantity": quantity}]}],
    }


def _client(shop, **options):
    return TikTokClient.for_shop(shop, backoff=0, sleep=lambda seconds: None, **options)


def snapshot():
    return {
        "orders": sorted(Order.objects.values_list("external_id", "status", "flags", "updated_at")),
        "stock": sorted(Stock.objects.values_list("product__external_id", "on_hand", "reserved")),
        "movements": StockMovement.objects.count(),
        "reservations": sorted(Reservation.objects.values_list("pk", "status", "quantity")),
        "products": sorted(Product.objects.values_list("external_id", "name", "sku", "updated_at")),
    }


def test_resync_pulls_products_stock_and_orders_over_many_pages(tiktok_shop, fake_tiktok):
    fake_tiktok.products = [_product(f"P{n}", 20 + n) for n in range(120)]
    for n in range(130):
        fake_tiktok.order_add(f"O{n}", status="AWAITING_SHIPMENT", lines=[(f"P{n % 120}", 2, "4.50")], total="9.00")
    seen = []
    operation = tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop), progress=lambda done, total: seen.append((done, total)))
    assert (operation.status, operation.entity_count, operation.processed_count, operation.error_count) == (
        "completed", 250, 250, 0
    )
    assert Product.objects.filter(creator=tiktok_shop.creator).count() == 120
    # TikTok sold 4 of P7's 27 units to two open orders; CreatorFlow holds them: 27 on hand, 23 available.
    stock = Stock.objects.get(product__external_id="P7", warehouse__external_id="W1")
    assert (stock.on_hand, stock.reserved, stock.available) == (27, 4, 23)
    assert Order.objects.filter(creator=tiktok_shop.creator).count() == 130
    assert Reservation.objects.filter(status="active").count() == 130
    assert seen[-1] == (250, 250) and len(seen) == 6  # three pages of products, three of orders
    searches = [request for request in fake_tiktok.requests if request.path.endswith(("products/search", "orders/search"))]
    assert [r.query.get("page_token", "") for r in searches] == ["", "page-50", "page-100", "", "page-50", "page-100"]


def test_resync_after_webhooks_changes_nothing(tiktok_shop, fake_tiktok, post_webhook, make_product):
    now = int(time.time())
    for product_id, quantity in (("P1", 40), ("P2", 15)):
        fake_tiktok.product_add(product_id, quantity)
        assert post_webhook(tiktok_shop, inventory_body(tiktok_shop, product_id=product_id, quantity=quantity,
                                                        warehouse_id="W1", name=f"Product {product_id}",
                                                        sku=f"SKU-{product_id}", timestamp=now)).status_code == 200
    for number, (status, lines) in enumerate([("UNPAID", [("P1", 2)]), ("AWAITING_SHIPMENT", [("P1", 1), ("P2", 3)]),
                                              ("IN_TRANSIT", [("P2", 1)])]):
        order_id = f"57000{number}"
        body = order_body(tiktok_shop, order_id=order_id, status="UNPAID", items=[(p, q, "5.00") for p, q in lines],
                          total="20.00", timestamp=now - 60)
        assert post_webhook(tiktok_shop, body).status_code == 200
        if status != "UNPAID":
            body = order_body(tiktok_shop, order_id=order_id, status=status, total="20.00", timestamp=now)
            assert post_webhook(tiktok_shop, body).status_code == 200
        # TikTok sold the same units: they left its sellable quantity (and, shipped, its committed units).
        fake_tiktok.order_add(order_id, status=status, lines=[(p, q, "5.00") for p, q in lines], total="20.00",
                              update_time=now if status != "UNPAID" else now - 60, create_time=now - 60, currency="")
    assert (fake_tiktok.quantity("P1"), fake_tiktok.committed("P1")) == (37, 3)
    assert (fake_tiktok.quantity("P2"), fake_tiktok.committed("P2")) == (11, 3)
    before = snapshot()
    operation = tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert operation.status == "completed" and operation.processed_count == 5
    assert snapshot() == before
    again = tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert again.status == "completed"
    assert snapshot() == before


def test_resync_retries_through_a_429_and_a_500(tiktok_shop, fake_tiktok):
    fake_tiktok.products = [_product("P1", 5)]
    fake_tiktok.order_add("O1", lines=[("P1", 1, "3.00")])
    fake_tiktok.fail_next(429)
    fake_tiktok.fail_next(500)
    operation = tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert (operation.status, operation.processed_count) == ("completed", 2)
    assert [request.status for request in fake_tiktok.requests[:3]] == [429, 500, 200]


def test_resync_stops_with_a_clear_error_on_bad_credentials(tiktok_shop, fake_tiktok):
    tiktok_shop.app_secret = "not-the-secret"
    tiktok_shop.save()
    with pytest.raises(ResyncError, match="failed \\(credentials\\).*signature"):
        tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    operation = SyncOperation.objects.get(type="resync")
    assert operation.status == "failed" and "signature" in operation.last_error
    assert not Product.objects.exists()


def test_resync_gives_up_after_retries_and_marks_the_operation_failed(tiktok_shop, fake_tiktok):
    fake_tiktok.fail_next(503, times=10)
    with pytest.raises(ResyncError, match="availability"):
        tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop, retries=2))
    assert SyncOperation.objects.get(type="resync").status == "failed"


def test_resync_counts_a_bad_order_and_carries_on(tiktok_shop, fake_tiktok):
    fake_tiktok.order_add("GOOD", lines=[("P1", 1, "3.00")])
    bad = fake_tiktok.order_add("BAD", lines=[("P1", 1, "3.00")])
    bad["status"] = "TELEPORTED"
    operation = tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert (operation.status, operation.processed_count, operation.error_count) == ("completed", 1, 1)
    assert "TELEPORTED" in operation.last_error
    assert list(Order.objects.values_list("external_id", flat=True)) == ["GOOD"]


def test_tiktok_resync_command_reports_and_refuses_unknown_shops(tiktok_shop, fake_tiktok, capsys):
    fake_tiktok.products = [_product("P1", 5)]
    call_command("tiktok_resync", "--shop-id", tiktok_shop.shop_id, "--since", "2026-01-01")
    assert "Resynced shop tts-shop: 1 of 1 products and orders reconciled, 0 error(s)." in capsys.readouterr().out
    assert fake_tiktok.requests[0].body == b'{"update_time_ge":1767225600}'
    with pytest.raises(CommandError, match="No shop 'nope'"):
        call_command("tiktok_resync", "--shop-id", "nope")
    with pytest.raises(CommandError, match="--since must be a date"):
        call_command("tiktok_resync", "--shop-id", tiktok_shop.shop_id, "--since", "last tuesday")


def _available(product_id: str) -> int:
    return sum(Stock.objects.filter(product__external_id=product_id).values_list("available", flat=True))


def _sell(shop, fake, order_id: str, lines, *, status="AWAITING_SHIPMENT", heard=True):
    """TikTok sells (its quantity drops); CreatorFlow hears of it through the order detail when ``heard``."""
    order = fake.order_add(order_id, status=status, lines=[(product_id, units, "5.00") for product_id, units in lines])
    if heard:
        order_apply_event(shop=shop, event=order_event_from_api(order))


def _cancel(shop, fake, order_id: str, *, heard=True):
    order = fake.order_update(order_id, status="CANCELLED")
    if heard:
        order_apply_event(shop=shop, event=order_event_from_api(order))


@pytest.fixture(params=["inventory search", "product quantity only"])
def shop_selling(request, tiktok_shop, fake_tiktok, make_product):
    """Two products with 20 units each, in CreatorFlow and on TikTok; with and without committed figures."""
    fake_tiktok.reports_committed = request.param == "inventory search"
    for product_id in ("P1", "P2"):
        make_product(tiktok_shop.creator, stock=20, external_id=product_id)
        fake_tiktok.product_add(product_id, 20, warehouse="")
    return tiktok_shop


def test_resync_while_orders_are_open_changes_no_available(shop_selling, fake_tiktok):
    _sell(shop_selling, fake_tiktok, "A", [("P1", 2), ("P2", 1)])
    _sell(shop_selling, fake_tiktok, "B", [("P2", 2)], status="UNPAID")
    _sell(shop_selling, fake_tiktok, "C", [("P2", 4)])
    order_apply_event(shop=shop_selling, event=order_event_from_api(fake_tiktok.order_update("C", status="IN_TRANSIT")))
    assert (_available("P1"), _available("P2")) == (18, 13) == (fake_tiktok.quantity("P1"), fake_tiktok.quantity("P2"))

    for _ in range(2):
        operation = tiktok_resync(shop=shop_selling, client=_client(shop_selling))
        assert (operation.status, operation.error_count) == ("completed", 0)
        assert (_available("P1"), _available("P2")) == (18, 13)
    stock = Stock.objects.get(product__external_id="P2")
    assert (stock.on_hand, stock.reserved) == (16, 3)


@pytest.mark.parametrize("heard", [True, False], ids=["cancellation heard", "cancellation first seen by resync"])
def test_resync_after_a_cancellation_gives_the_units_back_once(shop_selling, fake_tiktok, heard):
    _sell(shop_selling, fake_tiktok, "A", [("P1", 5)])
    _sell(shop_selling, fake_tiktok, "B", [("P1", 3)])
    _cancel(shop_selling, fake_tiktok, "A", heard=heard)

    for _ in range(2):
        tiktok_resync(shop=shop_selling, client=_client(shop_selling))
        assert _available("P1") == 17 == fake_tiktok.quantity("P1")
    assert Order.objects.get(external_id="A").status == "CANCELLED"
    assert StockMovement.objects.filter(reason="release").count() == 1


def test_resync_first_to_hear_of_an_order_counts_its_units_once(shop_selling, fake_tiktok):
    _sell(shop_selling, fake_tiktok, "A", [("P1", 2)])
    _sell(shop_selling, fake_tiktok, "MISSED", [("P1", 6), ("P2", 20)], heard=False)

    operation = tiktok_resync(shop=shop_selling, client=_client(shop_selling))

    assert (operation.status, operation.error_count) == ("completed", 0)
    assert Order.objects.get(external_id="MISSED").flags == []  # not short: TikTok had the units
    assert (_available("P1"), _available("P2")) == (12, 0) == (fake_tiktok.quantity("P1"), fake_tiktok.quantity("P2"))


def test_resync_and_order_details_store_each_products_tiktok_sku_ids(tiktok_shop, fake_tiktok):
    fake_tiktok.product_add("P1", 10)
    fake_tiktok.product_add("P2", 10, skus=2)
    fake_tiktok.order_add("O1", lines=[("P1", 1, "3.00"), ("P9", 1, "3.00")])  # P9: not in the product search
    tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert sorted(ProductSku.objects.values_list("product__external_id", "external_id")) == [
        ("P1", "S-P1"), ("P2", "S-P2"), ("P2", "S-P2-1"), ("P9", "sku-P9")
    ]
    fake_tiktok.products[1]["skus"].pop()  # TikTok dropped one of P2's SKUs
    tiktok_resync(shop=tiktok_shop, client=_client(tiktok_shop))
    assert list(ProductSku.objects.filter(product__external_id="P2").values_list("external_id", flat=True)) == ["S-P2"]


def test_tiktok_resync_says_the_access_token_is_missing_before_any_request(tiktok_shop, fake_tiktok):
    tiktok_shop.access_token = ""
    tiktok_shop.save()

    with pytest.raises(CommandError, match="Shop tts-shop has no TikTok access token.*--access-token"):
        call_command("tiktok_resync", "--shop-id", tiktok_shop.shop_id)

    assert fake_tiktok.requests == []
    assert not SyncOperation.objects.exists()



def test_tiktok_resync_command_that_partly_failed_exits_non_zero_saying_how_many(tiktok_shop, fake_tiktok, capsys):
    fake_tiktok.order_add("GOOD", lines=[("P1", 1, "3.00")])
    fake_tiktok.order_add("BAD", lines=[("P1", 1, "3.00")])["status"] = "TELEPORTED"

    with pytest.raises(CommandError, match=r"^1 of 2 products and orders failed to reconcile; last error: .*TELEPORTED"):
        call_command("tiktok_resync", "--shop-id", tiktok_shop.shop_id)

    assert "Resynced shop tts-shop: 1 of 2 products and orders reconciled, 1 error(s)." in capsys.readouterr().out



def test_resync_interrupted_mid_run_is_marked_failed_not_left_running(tiktok_shop, fake_tiktok):
    fake_tiktok.products = [_product("P1", 5)]
    fake_tiktok.fail_next(503)

    def interrupted(seconds):
        raise KeyboardInterrupt  # the operator pressed Ctrl-C during the backoff

    with pytest.raises(KeyboardInterrupt):
        tiktok_resync(shop=tiktok_shop, client=TikTokClient.for_shop(tiktok_shop, sleep=interrupted))

    operation = SyncOperation.objects.get(type="resync")
    assert (operation.status, operation.last_error) == ("failed", "Resync stopped by KeyboardInterrupt: ")
    assert operation.completed_at is not None



def resync_heard_from(shop, minutes_ago: float) -> SyncOperation:
    operation = SyncOperation.objects.create(creator_id=shop.creator_id, shop=shop, type="resync", status="running")
    SyncOperation.objects.filter(pk=operation.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes_ago))
    return operation


def test_a_resync_not_heard_from_in_ten_minutes_is_marked_failed(tiktok_shop):
    dead, alive = resync_heard_from(tiktok_shop, 10.5), resync_heard_from(tiktok_shop, 9.5)

    assert sync_operations_fail_stale() == 1

    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.last_error) == ("failed", STALE_MESSAGE)
    assert dead.completed_at is not None
    assert alive.status == "running"



def test_tiktok_resync_command_marks_a_dead_earlier_resync_failed(tiktok_shop, fake_tiktok):
    dead = resync_heard_from(tiktok_shop, 60)

    call_command("tiktok_resync", "--shop-id", tiktok_shop.shop_id, stdout=io.StringIO())

    dead.refresh_from_db()
    assert dead.status == "failed"
    assert SyncOperation.objects.exclude(pk=dead.pk).get().status == "completed"

