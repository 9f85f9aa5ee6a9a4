"""The group-committed inbox: batches, a bad event among good ones, crash recovery, racing appliers,
and the statement budget of the order path."""

import json
import threading
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creatorflow.prepared import _UNCACHEABLE, Prepared
from inventory import locks as inventory_locks
from inventory.models import InventoryAlert, Product, Reservation, Stock, StockMovement
from inventory.services import alerts, catalogue
from orders import inbox
from orders import locks as order_locks
from orders import services as order_services
from orders import streams
from orders.events import OrderLine
from orders.models import Order, SyncOperation, WebhookEvent
from orders.runtime import Applier

from .conftest import order_body, signed

pytestmark = pytest.mark.django_db(transaction=True)

Status = WebhookEvent.Status


def stored(shop, body: bytes) -> inbox.Pending:
    """Verify and store a delivery as the webhook does, without applying it (a process dying here)."""
    receipt = inbox.webhook_receive(body=body, signature=signed(shop, body))
    return inbox.Pending(event=receipt.event, payload=receipt.payload)


def new_orders(shop, product, count: int, *, prefix: str, quantity: int = 1) -> list[inbox.Pending]:
    return [stored(shop, order_body(shop, order_id=f"{prefix}-{n}", items=[(product.external_id, quantity)]))
            for n in range(count)]


def test_a_batch_with_one_refused_event_fails_only_that_event(shop, make_product):
    product = make_product(shop.creator, stock=10)
    first, second, third = new_orders(shop, product, 3, prefix="GOOD")
    bad = stored(shop, order_body(shop, order_id="BAD", items=[(product.external_id, 1)]))
    # What a TikTok order detail could say although the delivery itself was well formed.
    bad.payload = replace(bad.payload, lines=[OrderLine(product_id=product.external_id, quantity=0, unit_price=Decimal(1))])

    results = inbox.webhooks_apply([first, bad, second, third])

    assert {event_id: result.status for event_id, result in results.items()} == {
        first.event.pk: Status.PROCESSED, bad.event.pk: Status.FAILED,
        second.event.pk: Status.PROCESSED, third.event.pk: Status.PROCESSED,
    }
    assert "quantity must be 1" in results[bad.event.pk].error
    failed = WebhookEvent.objects.get(pk=bad.event.pk)
    assert (failed.status, failed.attempts) == (Status.FAILED, 1)
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["GOOD-0", "GOOD-1", "GOOD-2"]
    assert Stock.objects.get(product=product).reserved == 3


@pytest.mark.postgres
def test_a_database_error_in_a_batch_is_retried_one_event_at_a_time(shop, make_product):
    product = make_product(shop.creator, stock=10)
    first, second = new_orders(shop, product, 2, prefix="GOOD")
    bad = stored(shop, order_body(shop, order_id="TOO-LONG", items=[(product.external_id, 1)]))
    bad.payload = replace(bad.payload, currency="EUROS")  # the column holds 3 characters: the batch's INSERT fails

    results = inbox.webhooks_apply([first, bad, second])

    assert [results[p.event.pk].status for p in (first, bad, second)] == [Status.PROCESSED, Status.FAILED, Status.PROCESSED]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["GOOD-0", "GOOD-1"]
    assert Stock.objects.get(product=product).reserved == 2
    assert StockMovement.objects.filter(reason="reserve").count() == 2


def test_an_event_left_received_by_a_crash_is_applied_by_the_next_applier_without_replay(shop, make_product, settings):
    settings.CREATORFLOW = {**settings.CREATORFLOW, "INBOX_ORPHAN_SECONDS": 5}
    product = make_product(shop.creator, stock=10)
    (orphan,) = new_orders(shop, product, 1, prefix="ORPHAN")
    (recent,) = new_orders(shop, product, 1, prefix="RECENT")
    # The orphan was stored a minute ago by a process that died before applying it; the recent one
    # may still be on its way through a live process's applier, so it is left alone.
    WebhookEvent.objects.filter(pk=orphan.event.pk).update(received_at=timezone.now() - timedelta(minutes=1))

    applier = Applier(batch_max=50, sweep_seconds=0.1)
    applier.start()
    try:
        deadline = timezone.now() + timedelta(seconds=20)
        while WebhookEvent.objects.get(pk=orphan.event.pk).status != Status.PROCESSED and timezone.now() < deadline:
            threading.Event().wait(0.05)
    finally:
        applier.stop()
        applier.join(timeout=10)

    assert WebhookEvent.objects.get(pk=orphan.event.pk).status == Status.PROCESSED
    assert WebhookEvent.objects.get(pk=recent.event.pk).status == Status.RECEIVED
    assert list(Order.objects.values_list("external_id", flat=True)) == ["ORPHAN-0"]
    assert Stock.objects.get(product=product).reserved == 1


def test_an_applier_stores_the_deliveries_waiting_in_one_batch_and_applies_them_with_it(shop, make_product, make_shop):
    product = make_product(shop.creator, stock=10)
    stranger = make_shop(shop.creator, shop_id="other-shop", app_secret="another-secret")
    first, second = (order_body(shop, order_id=f"BATCH-{n}", items=[(product.external_id, 2)]) for n in range(2))
    ignored = json.dumps({"type": "PRODUCT_CHANGE", "shop_id": shop.shop_id, "timestamp": 1, "data": {}}).encode()
    applier = Applier(batch_max=50)
    # Handed over before the applier runs: all of them are waiting when it takes its first batch.
    jobs = [
        applier.receive(first, signed(shop, first)),
        applier.receive(second, signed(stranger, second)),  # signed with another shop's secret
        applier.receive(second, signed(shop, second)),
        applier.receive(first, signed(shop, first)),  # a retry arriving with the original
        applier.receive(ignored, signed(shop, ignored)),
        applier.receive(ignored.replace(shop.shop_id.encode(), b"nobody"), "0" * 64),
    ]
    applier.start()
    try:
        received = [job.stored.result(timeout=30) for job in jobs]
        applied = {index: job.applied.result(timeout=30) for index, job in enumerate(jobs) if job.pending is not None}
    finally:
        applier.stop()
        applier.join(timeout=10)

    kept, refused, other, retry, skipped, unknown = received
    assert (type(refused), type(unknown)) == (inbox.WebhookSignatureError, inbox.WebhookShopUnknown)
    assert (kept.duplicate, other.duplicate, retry.duplicate, skipped.duplicate) == (False, False, True, False)
    assert retry.event.pk == kept.event.pk and skipped.event.status == Status.IGNORED
    # The first delivery and its retry are one event, applied once; the ignored one is not applied.
    assert {index: result.status for index, result in applied.items()} == {0: Status.PROCESSED, 2: Status.PROCESSED,
                                                                          3: Status.PROCESSED}
    assert applier.batches == 1
    assert WebhookEvent.objects.count() == 3
    assert WebhookEvent.objects.get(pk=kept.event.pk).attempts == 1
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["BATCH-0", "BATCH-1"]
    assert Stock.objects.get(product=product).reserved == 4


def test_an_inbox_row_that_cannot_be_stored_errs_alone_and_its_batch_mates_are_stored(shop):
    # The batch's INSERT fails on one row (its shop is gone), so every row is stored on its own.
    kept = WebhookEvent(shop=shop, delivery_key="kept", event_type="x", body="{}", status=Status.RECEIVED)
    orphan = WebhookEvent(shop_id=shop.pk + 10_000, delivery_key="orphan", event_type="x", body="{}", status=Status.RECEIVED)
    also = WebhookEvent(shop=shop, delivery_key="also", event_type="x", body="{}", status=Status.RECEIVED)

    stored = inbox._inbox_store([also, kept, orphan])

    assert {key: created for key, (_, created) in stored.items()} == {"also": True, "kept": True, "orphan": False}
    assert isinstance(stored["orphan"][0], IntegrityError)
    assert sorted(WebhookEvent.objects.values_list("delivery_key", flat=True)) == ["also", "kept"]


@pytest.mark.postgres
def test_two_appliers_at_once_never_apply_an_event_twice(shop, make_product):
    product = make_product(shop.creator, stock=30)
    pending = new_orders(shop, product, 40, prefix="RACE")
    appliers = [Applier(batch_max=7), Applier(batch_max=11)]  # each its own connection, as two processes
    for applier in appliers:
        applier.start()
    try:
        # Both are handed every event, in opposite orders, at once.
        futures = [appliers[0].submit(item) for item in pending] + [appliers[1].submit(item) for item in reversed(pending)]
        results = [future.result(timeout=60) for future in futures]
    finally:
        for applier in appliers:
            applier.stop()
            applier.join(timeout=10)

    assert {result.status for result in results} <= {Status.PROCESSED, Status.RECEIVED}
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert WebhookEvent.objects.filter(attempts=1).count() == 40
    assert Order.objects.count() == 40
    assert Reservation.objects.count() == 30
    assert Order.objects.filter(flags=["insufficient_stock"]).count() == 10
    assert StockMovement.objects.filter(reason="reserve").count() == 30
    stock = Stock.objects.get(product=product)
    assert (stock.on_hand, stock.reserved) == (30, 30)


# --- statement budget ---------------------------------------------------------------------------

# Statements for one new order webhook at low load (verify + store, then apply alone), and for a
# batch of new orders of one creator on three SKUs. Publishing is not counted: it runs after
# commit, away from the delivery (realtime.publisher). Raise these only with a reason.
RECEIVE_BUDGET = 2
APPLY_ONE_BUDGET = 25
APPLY_BATCH_BUDGET = 20


def _statements(run, log=None, *, applying: bool = True) -> int:
    # Applying runs inside an outer transaction, so the after-commit publishing comes after the
    # count (and the batch's own transaction is a savepoint: two statements more than in production).
    with transaction.atomic() if applying else nullcontext(), CaptureQueriesContext(connection) as captured:
        run()
    if log is not None:
        log.extend(query["sql"][:90] for query in captured.captured_queries)
    return len(captured.captured_queries)


def test_statement_budget_of_one_webhook_and_of_a_batch(shop, make_product):
    products = [make_product(shop.creator, stock=1_000) for _ in range(3)]

    def batch_of(count: int, prefix: str) -> list[inbox.Pending]:
        return [
            stored(shop, order_body(shop, order_id=f"{prefix}-{n}",
                                    items=[(products[n % 3].external_id, 1), (products[(n + 1) % 3].external_id, 2)]))
            for n in range(count)
        ]

    body = order_body(shop, order_id="ONE", items=[(products[0].external_id, 1)])
    receipts = []
    receive = _statements(lambda: receipts.append(inbox.webhook_receive(body=body, signature=signed(shop, body))),
                          applying=False)
    apply_one = _statements(lambda: inbox.webhooks_apply([inbox.Pending(receipts[0].event, receipts[0].payload)]))
    # An applier stores what waits for it together: fifty deliveries, two of them stored already.
    deliveries = [order_body(shop, order_id=f"STORE-{n}", items=[(products[0].external_id, 1)]) for n in range(48)]
    deliveries = [(delivery, signed(shop, delivery)) for delivery in [*deliveries, body, deliveries[0]]]
    stored_fifty = []
    receive_fifty = _statements(lambda: stored_fifty.extend(inbox.webhooks_receive(deliveries)), applying=False)
    # The first burst raises the SKUs' selling-fast alerts; the two measured batches then meet
    # the same alert state, so what differs between them is the number of orders alone.
    burst = batch_of(50, "BURST")
    first_burst = _statements(lambda: inbox.webhooks_apply(burst))
    small, large = batch_of(5, "FIVE"), batch_of(50, "FIFTY")
    five, fifty = [], []
    apply_five = _statements(lambda: inbox.webhooks_apply(small), five)
    apply_fifty = _statements(lambda: inbox.webhooks_apply(large), fifty)

    assert Order.objects.count() == 106
    assert WebhookEvent.objects.count() == 106 + 48
    assert first_burst <= APPLY_BATCH_BUDGET + 3 * 3, first_burst  # + three alerts written
    assert receive <= RECEIVE_BUDGET, receive
    assert [receipt.duplicate for receipt in stored_fifty] == [False] * 48 + [True, True]
    assert receive_fifty <= RECEIVE_BUDGET + 1, receive_fifty  # + reading back the two stored already
    assert apply_one <= APPLY_ONE_BUDGET, apply_one
    assert apply_fifty <= APPLY_BATCH_BUDGET, apply_fifty
    # O(1) in the batch's size: fifty orders cost what five do.
    assert apply_fifty == apply_five, "\n".join(fifty)


def test_a_batch_over_many_shops_costs_what_a_batch_over_two_does(make_creator, make_shop, make_product):
    """A busy hour's batch holds the orders of many sellers: its statements do not grow with them.

    Each shop's webhook stream counts the batch's events of that shop; the running streams are
    locked and counted together.
    """
    sellers = []
    for n in range(8):
        creator = make_creator(f"seller-{n}")
        sellers.append((make_shop(creator), make_product(creator, stock=1_000)))

    def batch(prefix: str, count: int) -> list[inbox.Pending]:
        return [stored(shop, order_body(shop, order_id=f"{prefix}-{n}", items=[(product.external_id, 1)]))
                for n, (shop, product) in enumerate(sellers[:count])]

    inbox.webhooks_apply(batch("FIRST", 8))  # each shop's first order starts its stream
    small, large = batch("TWO", 2), batch("EIGHT", 8)
    two, eight = [], []
    apply_two = _statements(lambda: inbox.webhooks_apply(small), two)
    apply_eight = _statements(lambda: inbox.webhooks_apply(large), eight)

    streams = dict(SyncOperation.objects.filter(type=SyncOperation.Type.WEBHOOK_STREAM).values_list("shop_id", "processed_count"))
    assert streams == {shop.pk: 3 if n < 2 else 2 for n, (shop, _) in enumerate(sellers)}
    assert set(SyncOperation.objects.filter(type=SyncOperation.Type.WEBHOOK_STREAM).values_list("status", flat=True)) == {"running"}
    assert apply_eight == apply_two, "\n".join(eight)


def test_the_reads_and_updates_of_the_order_path_are_prepared_and_none_falls_back_to_the_orm(shop, make_shop, make_product):
    """Deliveries received and applied in batches of several sizes: every prepared read and update of the path compiles once per shape."""
    products = [make_product(shop.creator, stock=100, reorder_point=95) for _ in range(3)]
    other, spare = make_shop(shop.creator), make_product(shop.creator, stock=100)
    for prefix in ("FIRST", "NEXT"):  # two shops' streams in one batch: started, then locked and counted together
        batch = [stored(seller, order_body(seller, order_id=f"{prefix}-{seller.pk}", items=[(spare.external_id, 1)]))
                 for seller in (shop, other)]
        assert {applied.status for applied in inbox.webhooks_apply(batch).values()} == {"processed"}
    for size in (1, 3, 6):
        batch = [
            stored(shop, order_body(shop, order_id=f"PREP-{size}-{n}", items=[(products[n % 3].external_id, 1)]))
            for n in range(size)
        ]
        assert {applied.status for applied in inbox.webhooks_apply(batch).values()} == {"processed"}
    again = stored(shop, order_body(shop, order_id="PREP-1-0", status="CANCELLED", items=[(products[0].external_id, 1)]))
    assert {applied.status for applied in inbox.webhooks_apply([again]).values()} == {"processed"}  # an existing order, locked
    # A sold-out product: the first short order raises its alert, the next batch's rewrite its counts.
    scarce = make_product(shop.creator, stock=2)
    for size in (1, 2):
        batch = [
            stored(shop, order_body(shop, order_id=f"SHORT-{size}-{n}", items=[(scarce.external_id, 5)])) for n in range(size)
        ]
        assert {applied.status for applied in inbox.webhooks_apply(batch).values()} == {"processed"}
    (short_alert,) = InventoryAlert.objects.filter(product=scarce, type="insufficient_stock", status="active")
    assert "3 short orders (15 units)" in short_alert.message
    reads = {
        f"{module.__name__}.{name}": read
        for module in (inbox, order_locks, inventory_locks, catalogue, alerts, order_services, streams)
        for name, read in vars(module).items()
        if isinstance(read, Prepared)
    }
    # The shop lookup of receiving, eleven reads of applying, and its two updates: the inbox rows
    # processed and the shop's running stream counted.
    assert len(reads) == 14
    assert sorted(name for name, read in reads.items() if not read._compiled) == []
    assert sorted(name for name, read in reads.items() if _UNCACHEABLE in read._compiled.values()) == []
    assert Order.objects.get(external_id="PREP-1-0").status == "CANCELLED"
    assert Stock.objects.get(product=products[0]).reserved == 3  # 4 orders of it held, 1 released


def test_a_batchs_alerts_see_the_product_as_locked_with_its_stock_and_do_not_read_it_again(shop, make_product):
    """A reorder point raised since the last order counts at once; the product came with its stock rows."""
    product = make_product(shop.creator, stock=20, reorder_point=10)
    Product.objects.filter(pk=product.pk).update(reorder_point=30, name="Glow serum")  # as a bulk edit would
    batch = [stored(shop, order_body(shop, order_id="RAISED-1", items=[(product.external_id, 1)]))]
    log = []
    _statements(lambda: inbox.webhooks_apply(batch), log)
    (alert,) = InventoryAlert.objects.filter(product=product, type="low_stock", status="active")
    assert alert.message == "Low stock: Glow serum is at or below its reorder point (30)."
    assert alert.available == 19
    # The product is read once, found by its TikTok id; the alerts take it from the locked stock rows.
    assert len([sql for sql in log if sql.startswith('SELECT "inventory_product"')]) == 1, log


def test_a_new_order_is_inserted_as_its_event_leaves_it_and_updated_only_when_the_batch_changes_it(shop, make_product):
    plenty, none = make_product(shop.creator, stock=100), make_product(shop.creator, stock=0)
    at = int(timezone.now().timestamp()) - 60
    paid = [stored(shop, order_body(shop, order_id=f"PAID-{n}", items=[(plenty.external_id, 1)], timestamp=at)) for n in range(3)]
    log = []
    _statements(lambda: inbox.webhooks_apply(paid), log)
    assert [sql for sql in log if sql.startswith('UPDATE "orders_order"')] == [], log
    for order in Order.objects.filter(external_id__startswith="PAID-"):
        assert (order.status, order.flags, order.shipped_at) == ("AWAITING_SHIPMENT", [], None)
        assert order.paid_at == order.tiktok_updated_at == datetime.fromtimestamp(at, UTC)
    # Short of stock, and shipped by a second event in the same batch: both rows are written again.
    later = [
        stored(shop, order_body(shop, order_id="SHORT", items=[(none.external_id, 1)], timestamp=at)),
        stored(shop, order_body(shop, order_id="SHIPS", items=[(plenty.external_id, 1)], timestamp=at)),
        stored(shop, order_body(shop, order_id="SHIPS", status="IN_TRANSIT", items=[(plenty.external_id, 1)], timestamp=at + 5)),
    ]
    log = []
    _statements(lambda: inbox.webhooks_apply(later), log)
    assert len([sql for sql in log if sql.startswith('UPDATE "orders_order"')]) == 1, log
    assert Order.objects.get(external_id="SHORT").flags == ["insufficient_stock"]
    ships = Order.objects.get(external_id="SHIPS")
    assert (ships.status, ships.shipped_at) == ("IN_TRANSIT", datetime.fromtimestamp(at + 5, UTC))
    assert ships.paid_at == datetime.fromtimestamp(at, UTC)
