"""tiktok_resync end to end against the local fake TikTok Shop API."""

import io
import time
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from inventory.models import Product, Reservation, Stock, StockMovement
from orders.models import Order, SyncOperation
from orders.resync import ResyncError, tiktok_resync
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
    assert Stock.objects.get(product__external_id="P7", warehouse__external_id="W1").on_hand == 27
    assert Order.objects.filter(creator=tiktok_shop.creator).count() == 130
    assert Reservation.objects.filter(status="active").count() == 130
    assert seen[-1] == (250, 250) and len(seen) == 6  # three pages of products, three of orders
    searches = [request for request in fake_tiktok.requests if request.path.endswith("/search")]
    assert [r.query.get("page_token", "") for r in searches] == ["", "page-50", "page-100", "", "page-50", "page-100"]


def test_resync_after_webhooks_changes_nothing(tiktok_shop, fake_tiktok, post_webhook, make_product):
    now = int(time.time())
    for product_id, quantity in (("P1", 40), ("P2", 15)):
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
        fake_tiktok.order_add(order_id, status=status, lines=[(p, q, "5.00") for p, q in lines], total="20.00",
                              update_time=now if status != "UNPAID" else now - 60, create_time=now - 60, currency="")
    # TikTok's counts already include the unit that shipped.
    fake_tiktok.products = [_product(stock.product.external_id, stock.on_hand) for stock in Stock.objects.all()]
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

