"""POST /webhooks/tiktok/: verification, the durable inbox, both payload shapes, failures and replay."""

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from django.db import connections, transaction

from creatorflow.asgi import application
from inventory.models import InventoryAlert, Product, Reservation, Stock, StockMovement, Warehouse
from orders.models import Order, SyncOperation, WebhookEvent
from orders.inbox import webhook_process, webhook_receive, webhooks_replay
from creatorflow.models import SystemHealth

from .conftest import WEBHOOK_URL, in_thread, inventory_body, order_body, signed, tiktok_body

pytestmark = pytest.mark.django_db


def _stock(product) -> Stock:
    return Stock.objects.get(product=product)


# --- verification --------------------------------------------------------------------------


def test_webhook_with_valid_signature_creates_order_and_reserves_stock(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=10, external_id="P-1")

    response = post_webhook(shop, order_body(shop, order_id="A1", items=[("P-1", 3)]))

    assert response.status_code == 200
    assert response.json()["status"] == "processed"
    order = Order.objects.get(external_id="A1")
    assert order.status == "AWAITING_SHIPMENT"
    assert [(item.product_id, item.quantity) for item in order.items.all()] == [(product.pk, 3)]
    assert (_stock(product).on_hand, _stock(product).reserved) == (10, 3)
    assert WebhookEvent.objects.get().status == WebhookEvent.Status.PROCESSED


def test_webhook_without_signature_is_refused_and_nothing_is_stored(shop, make_product, post_webhook):
    make_product(shop.creator, stock=10, external_id="P-1")

    response = post_webhook(shop, order_body(shop, items=[("P-1", 1)]), signature=False)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert not WebhookEvent.objects.exists()
    assert not Order.objects.exists()


def test_webhook_with_wrong_signature_is_refused_and_nothing_is_stored(shop, make_product, post_webhook):
    make_product(shop.creator, stock=10, external_id="P-1")
    body = order_body(shop, items=[("P-1", 1)])

    wrong_secret = post_webhook(shop, body, signature=signed(type(shop)(app_key=shop.app_key, app_secret="x"), body))
    tampered = post_webhook(shop, body.replace(b'"quantity": 1', b'"quantity": 2'), signature=signed(shop, body))

    assert (wrong_secret.status_code, tampered.status_code) == (401, 401)
    assert not WebhookEvent.objects.exists()
    assert _stock(Product.objects.get()).reserved == 0


def test_webhook_signature_covers_the_app_key(shop, post_webhook):
    body = order_body(shop)
    other_key = type(shop)(app_key="another-key", app_secret=shop.app_secret)

    response = post_webhook(shop, body, signature=signed(other_key, body))

    assert response.status_code == 401


def test_webhook_for_unknown_shop_is_404(shop, post_webhook):
    body = order_body(type(shop)(shop_id="no-such-shop"))

    response = post_webhook(shop, body)

    assert response.status_code == 404
    assert "no-such-shop" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_webhook_refuses_methods_other_than_post(client):
    assert client.get(WEBHOOK_URL).status_code == 405
    assert client.put(WEBHOOK_URL, data=b"{}").status_code == 405


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"{not json", "not valid JSON"),
        ('{"shop_id": "shop-1"}'.encode("utf-16"), "not UTF-8"),
        (b"[1, 2]", "JSON object"),
        (b'{"type": "ORDER_STATUS_CHANGE"}', "shop_id"),
        (b'{"type": "ORDER_STATUS_CHANGE", "shop_id": 42}', "shop_id"),
    ],
)
def test_webhook_with_malformed_envelope_is_400_naming_the_problem(shop, post_webhook, body, named):
    response = post_webhook(shop, body, signature="0" * 64)

    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d.pop("type"), "body.type"),
        (lambda d: d.pop("timestamp"), "body.timestamp"),
        (lambda d: d.update(timestamp="yesterday"), "body.timestamp"),
        (lambda d: d.update(timestamp=1_700_000_000_000), "Unix seconds"),
        (lambda d: d.pop("data"), "body.data"),
        (lambda d: d["data"].pop("order_id"), "data.order_id"),
        (lambda d: d["data"].update(order_id=123), "data.order_id"),
        (lambda d: d["data"].pop("status"), "data.status"),
        (lambda d: d["data"].update(status="SHIPPED_BY_PIGEON"), "Unknown order status"),
        (lambda d: d["data"].update(items="P-1"), "data.items must be an array"),
        (lambda d: d["data"].update(items=[]), "data.items is empty"),
        (lambda d: d["data"]["items"][0].pop("product_id"), "data.items[0].product_id"),
        (lambda d: d["data"]["items"][0].update(quantity="2"), "data.items[0].quantity must be a whole number"),
        (lambda d: d["data"]["items"][0].update(quantity=2.5), "data.items[0].quantity must be a whole number"),
        (lambda d: d["data"]["items"][0].update(quantity=-1), "data.items[0].quantity must be between"),
        (lambda d: d["data"]["items"][0].update(quantity=0), "data.items[0].quantity must be between"),
        (lambda d: d["data"]["items"][0].update(quantity=10**9), "data.items[0].quantity must be between"),
        (lambda d: d["data"]["items"][0].update(price="-1"), "data.items[0].price"),
        (lambda d: d["data"]["items"][0].update(price="NaN"), "data.items[0].price"),
        (lambda d: d["data"].update(total_amount=[1]), "data.total_amount"),
    ],
)
def test_order_webhook_with_bad_fields_is_400_and_changes_nothing(shop, make_product, post_webhook, change, named):
    product = make_product(shop.creator, stock=10, external_id="P-1")
    document = json.loads(order_body(shop, order_id="B1", items=[("P-1", 2)]))
    change(document)

    response = post_webhook(shop, json.dumps(document).encode())

    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    assert not Order.objects.exists()
    assert (_stock(product).on_hand, _stock(product).reserved) == (10, 0)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda d: d["data"].pop("quantity"), "data.quantity"),
        (lambda d: d["data"].update(quantity=-5), "data.quantity must be between"),
        (lambda d: d["data"].update(quantity=10**12), "data.quantity must be between"),
        (lambda d: d["data"].update(quantity=True), "data.quantity must be a whole number"),
        (lambda d: d["data"].update(product_id=""), "data.product_id"),
        (lambda d: d["data"].update(reorder_point=-1), "data.reorder_point"),
        (lambda d: d["data"].update(unit_cost="abc"), "data.unit_cost"),
        (lambda d: d["data"].update(warehouse_id=7), "data.warehouse_id"),
    ],
)
def test_inventory_webhook_with_bad_fields_is_400_and_changes_nothing(shop, make_product, post_webhook, change, named):
    product = make_product(shop.creator, stock=10, external_id="P-1")
    document = json.loads(inventory_body(shop, product_id="P-1", quantity=4))
    change(document)

    response = post_webhook(shop, json.dumps(document).encode())

    assert response.status_code == 400
    assert named in response.json()["detail"]
    assert not WebhookEvent.objects.exists()
    assert _stock(product).on_hand == 10


def test_tiktok_shaped_webhook_with_bad_fields_is_400(tiktok_shop, post_webhook):
    document = json.loads(tiktok_body(tiktok_shop, notification_id="n1", order_id="T1"))
    document["data"]["update_time"] = "now"

    response = post_webhook(tiktok_shop, json.dumps(document).encode())

    assert response.status_code == 400
    assert "data.update_time" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_webhook_body_over_the_limit_is_413(shop, post_webhook, settings):
    settings.WEBHOOK_MAX_BODY_BYTES = 2_000
    body = order_body(shop, note="x" * 3_000)

    response = post_webhook(shop, body)

    assert response.status_code == 413
    assert not WebhookEvent.objects.exists()


def _http_scope(method: str, path: str, headers: list[tuple[bytes, bytes]], host: bytes = b"127.0.0.1") -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", host), *headers], "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
    }


async def _asgi_request(
    method: str, path: str, body: bytes = b"", headers=(), *, host: bytes = b"127.0.0.1"
) -> tuple[int, dict[bytes, bytes], bytes]:
    communicator = ApplicationCommunicator(application, _http_scope(method, path, list(headers), host))
    await communicator.send_input({"type": "http.request", "body": body, "more_body": False})
    start = await communicator.receive_output(timeout=10)
    answer = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return start["status"], {name.lower(): value for name, value in start["headers"]}, answer["body"]


async def test_webhook_body_over_the_limit_without_content_length_is_413(settings):
    """A chunked body declares no length; the bytes actually received are counted."""
    settings.WEBHOOK_MAX_BODY_BYTES = 1_000
    communicator = ApplicationCommunicator(
        application,
        _http_scope("POST", WEBHOOK_URL, [(b"content-type", b"application/json"), (b"authorization", b"00")]),
    )
    await communicator.send_input({"type": "http.request", "body": b"{" + b" " * 800, "more_body": True})
    await communicator.send_input({"type": "http.request", "body": b" " * 800 + b"}", "more_body": False})
    start = await communicator.receive_output(timeout=10)
    assert start["type"] == "http.response.start"
    assert start["status"] == 413
    await communicator.wait(timeout=10)


@pytest.mark.django_db(transaction=True)
async def test_webhooks_are_served_without_the_browsers_middleware_and_pages_with_it(creator, shop, make_product):
    """Webhooks go through Django's URLs and views but skip the session, CSRF, security and htmx middleware."""
    product = await sync_to_async(make_product)(creator, stock=5)
    body = order_body(shop, order_id="O-ASGI", items=[(product.external_id, 2)])

    status, headers, answer = await _asgi_request(
        "POST", WEBHOOK_URL, body, [(b"content-type", b"application/json"), (b"authorization", signed(shop, body).encode())]
    )
    refused, _, _ = await _asgi_request("GET", WEBHOOK_URL)
    other = order_body(shop, order_id="O-ASGI-HOST", items=[(product.external_id, 1)])
    wrong_host, _, _ = await _asgi_request(
        "POST", WEBHOOK_URL, other, [(b"content-type", b"application/json"), (b"authorization", signed(shop, other).encode())],
        host=b"evil.example",
    )
    page_status, page_headers, _ = await _asgi_request("GET", "/accounts/login/")

    assert (status, json.loads(answer)["status"]) == (200, "processed")
    assert headers[b"content-length"] == str(len(answer)).encode()  # a plain answer, not chunked
    assert await Order.objects.filter(creator_id=creator.pk, external_id="O-ASGI").aexists()
    assert not {b"x-frame-options", b"x-content-type-options", b"vary"} & set(headers)  # no clickjacking, security, session middleware
    assert refused == 405
    assert wrong_host == 400  # a Host outside ALLOWED_HOSTS is refused, as for pages
    assert not await Order.objects.filter(external_id="O-ASGI-HOST").aexists()
    assert page_status == 200 and page_headers[b"x-frame-options"] == b"DENY"  # pages keep every middleware


@pytest.mark.django_db(transaction=True)
async def test_over_asgi_a_tiktok_notice_is_stored_by_the_applier_and_fetched_by_its_request(tiktok_shop, fake_tiktok,
                                                                                              make_product):
    product = await sync_to_async(make_product)(tiktok_shop.creator, stock=5, external_id="P-1")
    fake_tiktok.order_add("T-ASGI", lines=[("P-1", 2, "4.00")], total="8.00", currency="GBP")
    body = tiktok_body(tiktok_shop, notification_id="n-asgi", order_id="T-ASGI")

    status, _, answer = await _asgi_request(
        "POST", WEBHOOK_URL, body, [(b"content-type", b"application/json"), (b"authorization", signed(tiktok_shop, body).encode())]
    )

    assert (status, json.loads(answer)["status"]) == (200, "processed")
    assert await sync_to_async(lambda: _stock(product).reserved)() == 2
    assert [(seen.path, seen.query["ids"]) for seen in fake_tiktok.requests] == [("/order/202309/orders", "T-ASGI")]


# --- unknown types and duplicates ----------------------------------------------------------


def test_unknown_event_types_are_acknowledged_and_stored_as_ignored(shop, post_webhook):
    own = json.dumps({"type": "PRODUCT_DELETED", "shop_id": shop.shop_id, "timestamp": 1_700_000_000}).encode()
    tiktoks = json.dumps({"type": 6, "tts_notification_id": "n-6", "shop_id": shop.shop_id, "data": {}}).encode()

    answers = [post_webhook(shop, own), post_webhook(shop, tiktoks)]

    assert [answer.status_code for answer in answers] == [200, 200]
    assert [answer.json()["status"] for answer in answers] == ["ignored", "ignored"]
    events = WebhookEvent.objects.order_by("pk")
    assert [(event.event_type, event.status) for event in events] == [
        ("PRODUCT_DELETED", "ignored"),
        ("tiktok:6", "ignored"),
    ]
    assert events[0].body == own.decode()


def test_duplicate_delivery_is_acknowledged_without_a_second_effect(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=10, external_id="P-1")
    body = order_body(shop, order_id="D1", items=[("P-1", 4)])

    first, second = post_webhook(shop, body), post_webhook(shop, body)

    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.json()["status"], second.json()["status"]) == ("processed", "duplicate")
    assert second.json()["event_id"] == first.json()["event_id"]
    assert WebhookEvent.objects.count() == 1
    assert _stock(product).reserved == 4
    assert StockMovement.objects.filter(reason="reserve").count() == 1


def test_tiktok_retry_with_same_notification_id_is_a_duplicate(tiktok_shop, fake_tiktok, make_product, post_webhook):
    make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    fake_tiktok.order_add("T1", lines=[("P-1", 2, "5.00")], total="10.00")
    first = tiktok_body(tiktok_shop, notification_id="n-1", order_id="T1", timestamp=1_700_000_000)
    retry = tiktok_body(tiktok_shop, notification_id="n-1", order_id="T1", timestamp=1_700_000_060)
    assert first != retry

    answers = [post_webhook(tiktok_shop, first).json()["status"], post_webhook(tiktok_shop, retry).json()["status"]]

    assert answers == ["processed", "duplicate"]
    assert len([seen for seen in fake_tiktok.requests if seen.path == "/order/202309/orders"]) == 1


# --- the two shapes ------------------------------------------------------------------------


def test_order_status_changes_move_stock_through_reserve_and_commit(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=10, external_id="P-1")
    placed = int(time.time()) - 60

    post_webhook(shop, order_body(shop, order_id="S1", status="UNPAID", items=[("P-1", 2)], timestamp=placed))
    post_webhook(shop, order_body(shop, order_id="S1", status="AWAITING_SHIPMENT", timestamp=placed + 10))
    post_webhook(shop, order_body(shop, order_id="S1", status="IN_TRANSIT", timestamp=placed + 20))

    order = Order.objects.get(external_id="S1")
    assert order.status == "IN_TRANSIT"
    assert order.paid_at is not None and order.shipped_at is not None
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved) == (8, 0)
    assert Reservation.objects.get().status == Reservation.Status.COMMITTED


def test_older_order_event_arriving_late_changes_nothing_but_is_kept(shop, make_product, post_webhook):
    make_product(shop.creator, stock=10, external_id="P-1")
    now = int(time.time())
    post_webhook(shop, order_body(shop, order_id="L1", status="CANCELLED", items=[("P-1", 1)], timestamp=now))

    late = post_webhook(shop, order_body(shop, order_id="L1", status="AWAITING_SHIPMENT", timestamp=now - 100))

    assert late.json()["status"] == "processed"
    assert Order.objects.get(external_id="L1").status == "CANCELLED"
    assert WebhookEvent.objects.count() == 2


def test_inventory_update_creates_product_and_sets_on_hand_with_sync_ledger(shop, post_webhook):
    body = inventory_body(shop, product_id="NEW-1", quantity=25, name="Glow serum", sku="GS-1", reorder_point=5,
                          unit_cost="3.50")

    response = post_webhook(shop, body)

    assert response.json()["status"] == "processed"
    product = Product.objects.get(external_id="NEW-1")
    assert (product.name, product.sku, product.reorder_point, str(product.unit_cost)) == ("Glow serum", "GS-1", 5, "3.50")
    assert _stock(product).on_hand == 25
    assert list(StockMovement.objects.values_list("reason", "on_hand_delta")) == [("sync", 25)]


def test_inventory_update_for_named_warehouse_creates_that_warehouse(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=10, external_id="P-1")

    post_webhook(shop, inventory_body(shop, product_id="P-1", quantity=7, warehouse_id="WH-EAST"))

    warehouse = Warehouse.objects.get(external_id="WH-EAST")
    assert Stock.objects.get(product=product, warehouse=warehouse).on_hand == 7
    assert Stock.objects.get(product=product, warehouse__is_default=True).on_hand == 10


def test_order_with_unknown_product_is_kept_flagged_and_alerted(shop, post_webhook):
    response = post_webhook(shop, order_body(shop, order_id="U1", items=[("NEVER-SEEN", 2)]))

    assert response.json()["status"] == "processed"
    order = Order.objects.get(external_id="U1")
    assert set(order.flags) == {"unknown_product", "insufficient_stock"}
    alert = InventoryAlert.objects.get(type="insufficient_stock")
    assert (alert.severity, alert.product.external_id) == ("critical", "NEVER-SEEN")


def test_order_larger_than_available_reserves_nothing_and_raises_alert(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=3, external_id="P-1")
    other = make_product(shop.creator, stock=10, external_id="P-2")

    post_webhook(shop, order_body(shop, order_id="X1", items=[("P-1", 5), ("P-2", 1)]))

    assert Order.objects.get(external_id="X1").flags == ["insufficient_stock"]
    assert (_stock(product).reserved, _stock(other).reserved) == (0, 0)
    assert InventoryAlert.objects.filter(type="insufficient_stock", product=product).exists()


def test_tiktok_shaped_order_is_completed_from_the_order_detail_api(
    tiktok_shop, fake_tiktok, make_product, post_webhook
):
    serum = make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    mask = make_product(tiktok_shop.creator, stock=10, external_id="P-2")
    fake_tiktok.order_add("T7", lines=[("P-1", 2, "4.00"), ("P-2", 1, "6.00")], total="14.00", currency="GBP")

    response = post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-7", order_id="T7"))

    assert response.json()["status"] == "processed"
    order = Order.objects.get(external_id="T7")
    assert (str(order.total_amount), order.currency, order.status) == ("14.00", "GBP", "AWAITING_SHIPMENT")
    assert sorted((item.product_id, item.quantity, str(item.unit_price)) for item in order.items.all()) == sorted(
        [(serum.pk, 2, "4.00"), (mask.pk, 1, "6.00")]
    )
    assert (_stock(serum).reserved, _stock(mask).reserved) == (2, 1)
    (seen,) = fake_tiktok.requests
    assert (seen.method, seen.path, seen.query["ids"], seen.status) == ("GET", "/order/202309/orders", "T7", 200)


# --- failures, health, stream, replay -------------------------------------------------------


def test_failed_processing_is_kept_reported_and_still_acknowledged(tiktok_shop, fake_tiktok, post_webhook):
    response = post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-9", order_id="MISSING"))

    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    event = WebhookEvent.objects.get()
    assert (event.status, event.attempts) == ("failed", 1)
    assert "MISSING" in event.error
    health = SystemHealth.objects.get(component="tiktok_webhook")
    assert (health.status, health.creator_id) == ("critical", tiktok_shop.creator_id)
    stream = SyncOperation.objects.get(shop=tiktok_shop, type="webhook_stream")
    assert (stream.status, stream.error_count, stream.processed_count) == ("failed", 1, 0)
    assert "MISSING" in stream.last_error
    assert not Order.objects.exists()


def test_bad_api_credentials_fail_the_event_with_a_clear_error(tiktok_shop, fake_tiktok, post_webhook):
    tiktok_shop.access_token = "revoked"
    tiktok_shop.save()

    post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-10", order_id="T10"))

    event = WebhookEvent.objects.get()
    assert event.status == "failed"
    assert "TikTokAuthError" in event.error and "access token" in event.error


def test_replayed_failure_has_exactly_one_effect(tiktok_shop, fake_tiktok, make_product, post_webhook):
    product = make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-11", order_id="T11"))
    event = WebhookEvent.objects.get()
    assert event.status == "failed"
    fake_tiktok.order_add("T11", lines=[("P-1", 3, "2.00")])

    first = webhooks_replay(failed_only=True)
    second = webhooks_replay(failed_only=True)
    by_id = webhooks_replay(event_ids=[event.pk])

    assert (first.processed, second.processed, by_id.processed, by_id.skipped) == ([event.pk], [], [], [event.pk])
    event.refresh_from_db()
    assert (event.status, event.attempts, event.error) == ("processed", 2, "")
    assert _stock(product).reserved == 3
    assert StockMovement.objects.filter(reason="reserve").count() == 1
    stream = SyncOperation.objects.get(shop=tiktok_shop)
    assert (stream.status, stream.processed_count, stream.error_count) == ("running", 1, 1)
    assert SystemHealth.objects.filter(component="tiktok_webhook").latest("pk").status == "nominal"


def test_processing_an_already_processed_event_again_has_no_effect(shop, make_product, post_webhook):
    product = make_product(shop.creator, stock=10, external_id="P-1")
    post_webhook(shop, order_body(shop, order_id="R1", items=[("P-1", 2)]))
    event = WebhookEvent.objects.get()
    stale = WebhookEvent.objects.get(pk=event.pk)
    stale.status = WebhookEvent.Status.RECEIVED  # a copy read before the first run finished

    result = webhook_process(event=stale)

    assert result.status == "processed"
    assert result.attempts == 1
    assert _stock(product).reserved == 2
    assert Reservation.objects.count() == 1


def test_webhook_stream_counts_processed_events(shop, make_product, post_webhook):
    make_product(shop.creator, stock=10, external_id="P-1")

    for number in range(3):
        post_webhook(shop, order_body(shop, order_id=f"C{number}", items=[("P-1", 1)]))

    stream = SyncOperation.objects.get(shop=shop, type="webhook_stream")
    assert (stream.status, stream.processed_count, stream.error_count) == ("running", 3, 0)
    assert stream.last_event_at is not None


def test_webhook_answers_503_when_the_database_is_down(shop, client, database_down):
    body = order_body(shop, items=[("P-1", 1)])

    response = in_thread(
        lambda: client.post(WEBHOOK_URL, data=body, content_type="application/json",
                            HTTP_AUTHORIZATION=signed(shop, body))
    )

    assert response.status_code == 503
    assert response["Retry-After"]


# --- logging -------------------------------------------------------------------------------


def test_each_webhook_logs_one_line_without_secret_or_signature(shop, make_product, post_webhook, webhook_log):
    make_product(shop.creator, stock=10, external_id="P-1")
    body = order_body(shop, order_id="G1", items=[("P-1", 1)])
    signature = signed(shop, body)

    post_webhook(shop, body, signature=signature)
    post_webhook(shop, body, signature="f" * 64)

    lines = webhook_log
    assert len(lines) == 2
    assert lines[0].startswith("webhook shop=shop-1 type=ORDER_STATUS_CHANGE outcome=processed ms=")
    assert "outcome=rejected_401" in lines[1]
    assert not any(shop.app_secret in line or signature in line or "f" * 64 in line for line in lines)


# --- concurrency (PostgreSQL) --------------------------------------------------------------


def _post_all(bodies_and_signatures, *, threads: int):
    """POST every (body, signature) through the ASGI application as a server would, ``threads`` at a time.

    The deliveries wait for this process's applier together, as a burst does under a server.
    """

    async def post_all():
        gate = asyncio.Semaphore(threads)

        async def post(body: bytes, signature: str):
            async with gate:
                status, _, answer = await _asgi_request(
                    "POST", WEBHOOK_URL, body, [(b"content-type", b"application/json"), (b"authorization", signature.encode())]
                )
            return status, json.loads(answer)

        return await asyncio.gather(*(post(body, signature) for body, signature in bodies_and_signatures))

    return async_to_sync(post_all)()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_simultaneous_duplicate_deliveries_have_exactly_one_effect(shop, make_product, settings):
    product = make_product(shop.creator, stock=50, external_id="P-1")
    body = order_body(shop, order_id="SIM-1", items=[("P-1", 5)])

    answers = _post_all([(body, signed(shop, body))] * 8, threads=8)

    assert [status for status, _ in answers] == [200] * 8
    assert sorted(answer["status"] for _, answer in answers) == ["duplicate"] * 7 + ["processed"]
    assert WebhookEvent.objects.count() == 1
    assert Order.objects.count() == 1
    assert _stock(product).reserved == 5
    assert Reservation.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_delivery_the_held_up_applier_cannot_store_in_time_is_stored_by_its_request(shop, make_product, settings):
    """The applier waits on a lock while applying one order; the next delivery is still stored and answered in time."""
    settings.CREATORFLOW = {**settings.CREATORFLOW, "INBOX_ANSWER_WITHIN_SECONDS": 1}
    product = make_product(shop.creator, stock=10, external_id="LOCKED")
    held, behind = (order_body(shop, order_id=name, items=[("LOCKED", 1)]) for name in ("HELD", "BEHIND"))
    locked, release = threading.Event(), threading.Event()

    def hold_the_stock_row():
        with transaction.atomic():
            Stock.objects.select_for_update().get(product=product)
            locked.set()
            release.wait(timeout=30)
        connections.close_all()

    async def post(body: bytes) -> dict:
        headers = [(b"content-type", b"application/json"), (b"authorization", signed(shop, body).encode())]
        return json.loads((await _asgi_request("POST", WEBHOOK_URL, body, headers))[2])

    async def post_both():
        first = asyncio.create_task(post(held))
        await asyncio.sleep(0.3)  # the applier has stored HELD and now waits for the stock row
        second = await post(behind)
        stored_meanwhile = await WebhookEvent.objects.filter(body=behind.decode()).aexists()
        return await first, second, stored_meanwhile

    holder = threading.Thread(target=hold_the_stock_row)
    holder.start()
    try:
        assert locked.wait(timeout=10)
        first, second, stored_meanwhile = async_to_sync(post_both)()
    finally:
        release.set()
        holder.join(timeout=30)

    assert (first["status"], second["status"]) == ("queued", "queued")
    assert stored_meanwhile  # by its request, while the applier was still held
    deadline = time.monotonic() + 20
    while WebhookEvent.objects.filter(status="processed").count() < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(WebhookEvent.objects.values_list("status", "attempts")) == [("processed", 1), ("processed", 1)]
    assert sorted(Order.objects.values_list("external_id", flat=True)) == ["BEHIND", "HELD"]
    assert _stock(product).reserved == 2


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_orders_on_one_sku_never_oversell(shop, make_product, settings):
    product = make_product(shop.creator, stock=10, external_id="HOT")
    bodies = [order_body(shop, order_id=f"HOT-{n}", items=[("HOT", 1)]) for n in range(24)]

    answers = _post_all([(body, signed(shop, body)) for body in bodies], threads=8)

    assert [answer["status"] for _, answer in answers] == ["processed"] * 24
    stock = _stock(product)
    assert (stock.on_hand, stock.reserved) == (10, 10)
    assert Order.objects.filter(flags=["insufficient_stock"]).count() == 14
    assert SyncOperation.objects.get(shop=shop).processed_count == 24


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_replay_racing_the_live_delivery_applies_the_event_once(shop, make_product):
    product = make_product(shop.creator, stock=20, external_id="P-1")
    receipt = webhook_receive(body=(body := order_body(shop, order_id="RACE", items=[("P-1", 2)])),
                              signature=signed(shop, body))
    barrier = threading.Barrier(4)
    results, lock = [], threading.Lock()

    def run():
        try:
            barrier.wait(timeout=30)
            event = webhook_process(event=WebhookEvent.objects.get(pk=receipt.event.pk))
            with lock:
                results.append(event.status)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=run) for _ in range(4)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)

    assert results == ["processed"] * 4
    assert WebhookEvent.objects.get().attempts == 1
    assert _stock(product).reserved == 2
    assert StockMovement.objects.filter(reason="reserve").count() == 1
    assert SyncOperation.objects.get(shop=shop).processed_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_flash_sale_burst_publishes_coalesced_and_ends_on_current_metrics(shop, make_product, post_webhook, settings):
    from realtime import runtime as realtime_runtime
    from realtime.models import DashboardMetric

    settings.CREATORFLOW = {**settings.CREATORFLOW, "PUBLISH_COALESCE_SECONDS": 0.5}
    make_product(shop.creator, stock=100, external_id="P-1")
    realtime_runtime.coalescer_reset()

    for number in range(15):
        assert post_webhook(shop, order_body(shop, order_id=f"F{number}", items=[("P-1", 1)])).status_code == 200

    def total_orders():
        metric = DashboardMetric.objects.filter(creator=shop.creator, metric_type="orders", metric_key="total_count")
        return metric.values_list("value", flat=True).first()

    deadline = time.monotonic() + 10
    while total_orders() != 15 and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the database for the background publish, with a deadline
    assert total_orders() == 15
    assert 1 <= realtime_runtime.coalescer_current().publishes < 15


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_ends_with_the_dashboard_on_the_streams_last_event_though_sync_news_is_held(
    shop, make_product, post_webhook, settings
):
    from realtime import runtime as realtime_runtime
    from realtime.models import DashboardMetric

    settings.CREATORFLOW = {**settings.CREATORFLOW, "PUBLISH_COALESCE_SECONDS": 0.05, "PUBLISH_SYNC_SECONDS": 2.0}
    make_product(shop.creator, stock=100, external_id="P-1")
    realtime_runtime.coalescer_reset()

    # Within 2 s after the first (which goes at once, news and all), every later order's news is
    # held: only a publish of its own, after the orders stop, brings "last sync" current.
    started = time.monotonic()
    for number in range(8):
        assert post_webhook(shop, order_body(shop, order_id=f"S{number}", items=[("P-1", 1)])).status_code == 200
    assert time.monotonic() - started < 2.0

    last_event = SyncOperation.objects.get(shop=shop).last_event_at.isoformat()

    def last_sync():
        metric = DashboardMetric.objects.filter(creator=shop.creator, metric_type="system", metric_key="last_sync")
        return metric.values_list("value", flat=True).first()

    deadline = time.monotonic() + 10
    while last_sync() != last_event and time.monotonic() < deadline:
        time.sleep(0.05)  # polling the database for the held news's publish, with a deadline
    assert last_sync() == last_event  # the latest sync state was published after the orders stopped
    coalescer = realtime_runtime.coalescer_current()
    assert coalescer.slow_interval == 2.0 and coalescer.publishes <= 8 + 1


def test_tiktok_outage_during_a_delivery_fails_it_quickly_and_replay_recovers(
    tiktok_shop, fake_tiktok, make_product, post_webhook
):
    product = make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    fake_tiktok.order_add("T20", lines=[("P-1", 1, "3.00")])
    fake_tiktok.fail_next(500, times=2)

    response = post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-20", order_id="T20"))

    assert response.json()["status"] == "failed"
    assert [seen.status for seen in fake_tiktok.requests] == [500, 500]  # one retry while TikTok waits
    assert "TikTokUnavailable" in WebhookEvent.objects.get().error
    assert webhooks_replay(failed_only=True).processed == [WebhookEvent.objects.get().pk]
    assert _stock(product).reserved == 1
