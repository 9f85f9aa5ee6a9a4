"""Stock write-back end to end: webhooks in, the applier commits, the writer tells the fake TikTok shop."""

import time

import pytest
from django.core.management import call_command

from inventory.models import Stock
from inventory.services.catalogue import product_skus_learn
from orders import writeback
from orders.models import ShopConnection, SyncOperation

from .conftest import order_body

# The writer thread reads and records while the applier writes; SQLite's shared in-memory cache
# refuses such overlaps ("table is locked"), so the end-to-end tests need PostgreSQL. The writer's
# decisions are also tested turn by turn below, on either database.


def end_to_end(test):
    return pytest.mark.postgres(pytest.mark.django_db(transaction=True)(test))
UPDATE_PATH = "/product/202309/products/{}/inventory/update"


def _until(predicate, *, timeout=10.0):
    """Poll ``predicate`` until it is true or the deadline passes; return its last value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def _settled(predicate, *, timeout=10.0):
    """Poll until ``predicate`` holds and the writer owes nothing (SQLite's shared cache locks whole tables)."""
    return _until(lambda: writeback.writer_idle() and predicate(), timeout=timeout)


def _available(product_id: str) -> int:
    return sum(Stock.objects.filter(product__external_id=product_id).values_list("available", flat=True))


def _updates(fake, product_id: str) -> list:
    return [seen for seen in fake.requests if seen.path == UPDATE_PATH.format(product_id)]


@pytest.fixture
def write_back(fake_tiktok, make_product):
    """Turn write-back on for a shop whose products have their TikTok SKUs on both sides; stop the writer after.

    Products are "ID" (one SKU) or ("ID", number of SKUs).
    """
    writeback.writer_stop()

    def on(shop, *products, stock=20):
        for product_id, skus in [(item, 1) if isinstance(item, str) else item for item in products or ["P1"]]:
            product = make_product(shop.creator, stock=stock, external_id=product_id)
            tiktok = fake_tiktok.product_add(product_id, stock, skus=skus)
            product_skus_learn(skus=[(product.pk, sku["id"]) for sku in tiktok["skus"]])
        shop.stock_write_back = True
        shop.save()
        writeback.write_back_forget()

    yield on
    writeback.writer_stop()
    writeback.write_back_forget()


def _order(post_webhook, shop, order_id, product_id="P1", units=1) -> float:
    """Post an order; return when its answer came (monotonic), after checking it was processed."""
    answer = post_webhook(shop, order_body(shop, order_id=order_id, items=[(product_id, units)]))
    assert answer.status_code == 200 and answer.json()["status"] == "processed"
    return time.monotonic()


@end_to_end
def test_write_back_tells_tiktok_the_new_available_within_a_second_of_each_order(
    tiktok_shop, fake_tiktok, write_back, post_webhook
):
    write_back(tiktok_shop)
    placed = _order(post_webhook, tiktok_shop, "A", units=3)
    assert _settled(lambda: fake_tiktok.inventory_sets)
    first = fake_tiktok.inventory_sets[0]
    assert (first.sku_id, first.quantity) == ("S-P1", 17)
    assert first.at - placed < 1.0

    placed = _order(post_webhook, tiktok_shop, "B", units=2)  # inside the interval: sent when it ends
    assert _settled(lambda: len(fake_tiktok.inventory_sets) == 2)
    second = fake_tiktok.inventory_sets[1]
    assert second.quantity == 15 == _available("P1") == fake_tiktok.quantity("P1")
    assert second.at - placed < 1.0
    assert second.at - first.at >= writeback.INTERVAL_SECONDS * 0.95
    operation = _until(lambda: SyncOperation.objects.filter(type="stock_write_back", processed_count=2).first())
    assert (operation.shop_id, operation.target, operation.status, operation.error_count) == (
        tiktok_shop.pk, "tiktok", "running", 0
    )


@end_to_end
def test_write_back_sends_at_once_when_a_product_reaches_zero(tiktok_shop, fake_tiktok, write_back, post_webhook):
    write_back(tiktok_shop)
    _order(post_webhook, tiktok_shop, "A", units=2)
    assert _settled(lambda: fake_tiktok.inventory_sets)
    placed = _order(post_webhook, tiktok_shop, "LAST", units=18)
    assert _settled(lambda: fake_tiktok.quantity("P1") == 0, timeout=5)
    first, zero = fake_tiktok.inventory_sets
    assert (first.quantity, zero.quantity) == (18, 0)
    assert zero.at - placed < 0.5 and zero.at - first.at < writeback.INTERVAL_SECONDS


@end_to_end
def test_a_burst_of_orders_gives_far_fewer_calls_and_ends_on_the_right_value(
    tiktok_shop, fake_tiktok, write_back, post_webhook
):
    write_back(tiktok_shop, stock=200)
    started = time.monotonic()
    for number in range(60):
        _order(post_webhook, tiktok_shop, f"BURST-{number}", units=2)
    seconds = time.monotonic() - started
    assert _available("P1") == 80
    assert _until(lambda: fake_tiktok.quantity("P1") == 80)
    calls = len(_updates(fake_tiktok, "P1"))
    assert calls <= seconds / writeback.INTERVAL_SECONDS + 2
    assert calls * 5 <= 60
    assert fake_tiktok.inventory_sets[-1].quantity == 80


@end_to_end
def test_a_tiktok_outage_during_a_burst_loses_no_update_and_holds_no_order(
    tiktok_shop, fake_tiktok, write_back, post_webhook
):
    write_back(tiktok_shop, stock=100)
    fake_tiktok.outage_start(503)
    fake_tiktok.delay = 1.5  # TikTok is slow to fail, too
    answered = []
    for number in range(12):
        started = time.monotonic()
        _order(post_webhook, tiktok_shop, f"OUT-{number}", units=3)
        answered.append(time.monotonic() - started)
    assert max(answered) < fake_tiktok.delay  # no order waited for TikTok
    assert _until(lambda: SyncOperation.objects.filter(type="stock_write_back", error_count__gte=1).exists())
    assert fake_tiktok.inventory_sets == []

    fake_tiktok.outage_end()
    fake_tiktok.delay = 0
    assert _until(lambda: fake_tiktok.inventory_sets, timeout=15)
    assert _until(lambda: SyncOperation.objects.filter(type="stock_write_back", status="running").exists())
    assert [update.quantity for update in fake_tiktok.inventory_sets] == [64] == [_available("P1")]
    operation = SyncOperation.objects.get(type="stock_write_back")
    assert operation.processed_count == 1 and "503" in operation.last_error


@end_to_end
def test_write_back_off_sends_nothing(make_creator, make_shop, tiktok_shop, fake_tiktok, write_back, post_webhook, make_product):
    make_product(tiktok_shop.creator, stock=20, external_id="OFF-1")
    fake_tiktok.product_add("OFF-1", 20)
    other = make_shop(
        make_creator("bob"), shop_id="tts-other", app_key=fake_tiktok.app_key, app_secret=fake_tiktok.app_secret,
        access_token=fake_tiktok.access_token, shop_cipher=fake_tiktok.shop_cipher, api_base_url=fake_tiktok.base_url,
    )
    write_back(other, "ON-1")
    _order(post_webhook, tiktok_shop, "OFF-ORDER", "OFF-1", units=4)
    _order(post_webhook, other, "ON-ORDER", "ON-1", units=4)
    assert _settled(lambda: fake_tiktok.inventory_sets)  # the shop writing back was heard; the other one never
    assert [(update.product_id, update.quantity) for update in fake_tiktok.inventory_sets] == [("ON-1", 16)]
    assert _updates(fake_tiktok, "OFF-1") == []
    assert not SyncOperation.objects.filter(shop=tiktok_shop, type="stock_write_back").exists()


@end_to_end
def test_a_product_with_several_tiktok_skus_is_listed_and_not_written_back(
    tiktok_shop, fake_tiktok, write_back, post_webhook
):
    write_back(tiktok_shop, ("MULTI", 2), "SINGLE")
    _order(post_webhook, tiktok_shop, "A", "MULTI")
    assert _settled(lambda: True)
    _order(post_webhook, tiktok_shop, "B", "SINGLE")
    assert _settled(lambda: fake_tiktok.inventory_sets)
    operation = _until(lambda: SyncOperation.objects.filter(type="stock_write_back", detail__contains="MULTI").first())
    assert operation.detail == "Not written back: MULTI (several TikTok SKUs)."
    assert _updates(fake_tiktok, "MULTI") == []


@pytest.mark.django_db
def test_shop_connect_turns_stock_write_back_on_and_off():
    arguments = ["maya", "--shop-id", "S1", "--app-key", "key", "--app-secret", "secret", "--password", "maya-pass-1234"]
    call_command("shop_connect", *arguments)
    assert ShopConnection.objects.get().stock_write_back is False
    call_command("shop_connect", *arguments, "--stock-write-back")
    assert ShopConnection.objects.get().stock_write_back is True
    call_command("shop_connect", *arguments)  # not named: left as it is
    assert ShopConnection.objects.get().stock_write_back is True
    call_command("shop_connect", *arguments, "--no-stock-write-back")
    assert ShopConnection.objects.get().stock_write_back is False


@pytest.fixture
def turns(tiktok_shop, fake_tiktok, make_product):
    """A writer driven turn by turn (not started), for a write-back shop with products P1 (one SKU) and P2 (two)."""
    products = {}
    for product_id, skus in (("P1", 1), ("P2", 2)):
        products[product_id] = make_product(tiktok_shop.creator, stock=20, external_id=product_id)
        tiktok = fake_tiktok.product_add(product_id, 20, skus=skus)
        product_skus_learn(skus=[(products[product_id].pk, sku["id"]) for sku in tiktok["skus"]])
    tiktok_shop.stock_write_back = True
    tiktok_shop.save()
    writer = writeback.StockWriter(interval=0.3)

    def turn(*product_ids):
        writer.notify(products[product_id].pk for product_id in product_ids)
        writer.write_due()
        return [(update.product_id, update.quantity) for update in fake_tiktok.inventory_sets]

    turn.writer, turn.products = writer, products
    return turn


@pytest.mark.django_db
def test_writer_turns_throttle_send_zero_at_once_and_keep_what_tiktok_missed(turns, tiktok_shop, fake_tiktok):
    from inventory.services.stock import stock_adjust

    p1 = turns.products["P1"]
    assert turns("P1", "P2") == [("P1", 20)]  # P2 has two SKUs: passed over, and listed
    assert turns("P1") == [("P1", 20)]  # TikTok has 20 already: nothing to say
    stock_adjust(product=p1, delta=-5)
    assert turns("P1") == [("P1", 20)]  # inside the interval: owed, not sent
    stock_adjust(product=p1, delta=-3)  # latest value wins
    assert _until(lambda: turns() == [("P1", 20), ("P1", 12)], timeout=2)  # when the interval is over
    stock_adjust(product=p1, delta=-12)
    assert turns("P1") == [("P1", 20), ("P1", 12), ("P1", 0)]  # reaching 0 does not wait for the interval

    fake_tiktok.outage_start(429)
    stock_adjust(product=p1, delta=7)
    assert _until(lambda: turns("P1") and fake_tiktok.requests[-1].status == 429, timeout=2)
    stock_adjust(product=p1, delta=1)
    assert turns("P1")[-1] == ("P1", 0)  # backing off
    fake_tiktok.outage_end()
    assert _until(lambda: turns()[-1] == ("P1", 8), timeout=5)  # the last value, once TikTok answers
    assert turns() == [("P1", 20), ("P1", 12), ("P1", 0), ("P1", 8)]
    operation = SyncOperation.objects.get(type="stock_write_back")
    assert (operation.processed_count, operation.status, operation.source, operation.target) == (4, "running", "creatorflow", "tiktok")
    assert operation.error_count >= 1 and "429" in operation.last_error
    assert operation.detail == "Not written back: P2 (several TikTok SKUs)."
    assert turns.writer.calls == 4 + operation.error_count
