"""The TikTok webhook inbox: verify, store raw, process exactly once, replay.

A delivery goes through three steps:

1. ``webhook_receive`` checks the signature (HMAC-SHA256 of app key + raw body with the
   shop's app secret), validates the payload, and commits it raw to the inbox
   (``WebhookEvent``). A delivery whose ``delivery_key`` is already stored is a duplicate and
   changes nothing: the unique index decides, also between simultaneous connections.
2. ``webhook_process`` applies the stored event in one transaction. The inbox row is claimed
   in that same transaction (``received``/``failed`` → ``processed``), so an event is applied
   at most once even when a replay races the live delivery; the loser rolls back.
3. A failure rolls the effects back and is kept: the row turns ``failed`` with the error and
   one more attempt, the shop's webhook stream and a critical ``tiktok_webhook`` SystemHealth
   record say so, and ``webhooks_replay`` can run it again.

The HTTP answer to a stored delivery is 200 whatever processing did: the delivery is durable,
and TikTok's retries would only bring back what the inbox already holds.
"""

import hashlib
import hmac
import json
import logging
import math
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from inventory.services import MAX_QUANTITY, product_upsert, stock_set_on_hand, warehouse_get_or_create
from realtime import services as realtime_services
from realtime.models import SystemHealth

from .models import ShopConnection, SyncOperation, WebhookEvent
from .services import OrderError, OrderEvent, OrderLine, order_apply_event, status_normalize
from .tiktok import TikTokClient, order_event_from_api

logger = logging.getLogger("creatorflow.webhooks")

HEALTH_COMPONENT = "tiktok_webhook"
ORDER_STATUS_CHANGE = "ORDER_STATUS_CHANGE"
INVENTORY_UPDATE = "INVENTORY_UPDATE"
TIKTOK_ORDER_STATUS_CHANGE = "tiktok:1"  # TikTok's own shape, numeric type 1
LINE_QUANTITY_MAX = 10_000  # more units on one order line is a broken payload, not a sale
LINES_MAX = 100
TEXT_MAX = 64
# Unix seconds between 2001-09-09 and 2100-01-01: anything else is milliseconds or nonsense.
TIMESTAMP_RANGE = (1_000_000_000, 4_102_444_800)
Status = WebhookEvent.Status


# --- errors ------------------------------------------------------------------------------


class WebhookRejected(Exception):
    """A delivery refused before it was stored; ``status`` is the HTTP answer."""

    status = 400
    code = "invalid_payload"

    def __init__(self, message: str, *, shop: ShopConnection | None = None):
        self.message, self.shop = message, shop
        super().__init__(message)


class WebhookPayloadError(WebhookRejected):
    status, code = 400, "invalid_payload"


class WebhookSignatureError(WebhookRejected):
    status, code = 401, "invalid_signature"


class WebhookShopUnknown(WebhookRejected):
    status, code = 404, "unknown_shop"


class WebhookTooLarge(WebhookRejected):
    status, code = 413, "body_too_large"


class _Claimed(Exception):
    """Another transaction applied the event first; roll this one back."""


# --- payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class InventoryUpdate:
    """What CreatorFlow's INVENTORY_UPDATE says: the absolute on-hand count of a product."""

    product_id: str
    quantity: int
    name: str | None = None
    sku: str | None = None
    warehouse_id: str | None = None
    reorder_point: int | None = None
    unit_cost: Decimal | None = None


@dataclass(frozen=True)
class OrderNotice:
    """TikTok's order status change: no lines, so the detail is fetched from the API."""

    order_id: str
    status: str
    updated_at: datetime


@dataclass(frozen=True)
class Delivery:
    """A parsed, validated delivery: its type, its idempotency key and what it says."""

    shop_id: str
    event_type: str
    delivery_key: str
    payload: OrderEvent | InventoryUpdate | OrderNotice | None = field(default=None)


def _fail(message: str) -> WebhookPayloadError:
    return WebhookPayloadError(message)


def _object(value: object, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(f"{name} must be a JSON object, got {_kind(value)}.")
    return value


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _text(data: Mapping, key: str, *, where: str = "data", required: bool = True, limit: int = TEXT_MAX) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"Field {where}.{key} must be a non-empty string, got {_kind(value)}.")
    if len(value) > limit:
        raise _fail(f"Field {where}.{key} is longer than {limit} characters.")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
        raise _fail(f"Field {where}.{key} must not contain NUL characters.")
    return value


def _whole(data: Mapping, key: str, *, where: str, low: int, high: int, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"Field {where}.{key} must be a whole number, got {_kind(value) if not isinstance(value, float) else value!r}.")
    if not low <= value <= high:
        raise _fail(f"Field {where}.{key} must be between {low:,} and {high:,}, got {value:,}.")
    return value


def _amount(data: Mapping, key: str, *, where: str, high: Decimal) -> Decimal | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(f"Field {where}.{key} must be a number or a decimal string, got {_kind(value)}.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _fail(f"Field {where}.{key} must be a number or a decimal string, got {value!r}.")
    if not amount.is_finite() or not Decimal(0) <= amount < high:
        raise _fail(f"Field {where}.{key} must be between 0 and {high:,}, got {value!r}.")
    return amount.quantize(Decimal("0.01"))


def _moment(data: Mapping, key: str, *, where: str, required: bool = True) -> datetime | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    # math.isfinite only for floats: it overflows on a JSON integer with hundreds of digits.
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise _fail(f"Field {where}.{key} must be Unix seconds (a number), got {_kind(value)}.")
    if not TIMESTAMP_RANGE[0] <= value < TIMESTAMP_RANGE[1]:
        raise _fail(f"Field {where}.{key} must be Unix seconds, got {value!r}.")
    return datetime.fromtimestamp(value, tz=UTC)


def _status(value: object, where: str) -> str:
    if value is None:
        raise _fail(f"Missing field {where}.")
    try:
        return status_normalize(value)
    except OrderError as error:
        raise _fail(f"Field {where}: {error}")


def _order_event(data: Mapping, timestamp: datetime) -> OrderEvent:
    order_id = _text(data, "order_id")
    status = _status(data.get("status"), "data.status")
    items = data.get("items")
    lines = None
    if items is not None:
        if not isinstance(items, list):
            raise _fail(f"Field data.items must be an array, got {_kind(items)}.")
        if len(items) > LINES_MAX:
            raise _fail(f"An order carries at most {LINES_MAX} items, got {len(items)}.")
        lines = []
        for index, item in enumerate(items):
            where = f"data.items[{index}]"
            item = _object(item, where)
            lines.append(
                OrderLine(
                    product_id=_text(item, "product_id", where=where),
                    quantity=_whole(item, "quantity", where=where, low=1, high=LINE_QUANTITY_MAX),
                    unit_price=_amount(item, "price", where=where, high=Decimal("1e10")) or Decimal(0),
                    name=_text(item, "name", where=where, required=False, limit=255) or "",
                    sku=_text(item, "sku", where=where, required=False, limit=100) or "",
                )
            )
        if not lines:
            raise _fail("Field data.items is empty; leave it out for a status change without lines.")
    currency = _text(data, "currency", required=False, limit=3) or ""
    return OrderEvent(
        order_id=order_id,
        status=status,
        updated_at=_moment(data, "update_time", where="data", required=False) or timestamp,
        placed_at=_moment(data, "create_time", where="data", required=False),
        total_amount=_amount(data, "total_amount", where="data", high=Decimal("1e12")),
        currency=currency,
        lines=lines,
    )


def _inventory_update(data: Mapping) -> InventoryUpdate:
    return InventoryUpdate(
        product_id=_text(data, "product_id"),
        quantity=_whole(data, "quantity", where="data", low=0, high=MAX_QUANTITY),
        name=_text(data, "name", required=False, limit=255),
        sku=_text(data, "sku", required=False, limit=100),
        warehouse_id=_text(data, "warehouse_id", required=False),
        reorder_point=_whole(data, "reorder_point", where="data", low=0, high=MAX_QUANTITY, required=False),
        unit_cost=_amount(data, "unit_cost", where="data", high=Decimal("1e10")),
    )


def _order_notice(data: Mapping) -> OrderNotice:
    return OrderNotice(
        order_id=_text(data, "order_id"),
        status=_status(data.get("order_status"), "data.order_status"),
        updated_at=_moment(data, "update_time", where="data"),
    )


def webhook_parse(*, body: bytes) -> dict:
    """Decode a delivery's JSON object and check its envelope names a shop; raise WebhookPayloadError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("Body is not UTF-8 text.")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise _fail(f"Body is not valid JSON: {error}.")
    except RecursionError:
        # Python's JSON parser recurses per nesting level; a hostile body must be a 400, not a 500.
        raise _fail("Body is not valid JSON: nested too deeply.")
    document = _object(document, "The body")
    _text(document, "shop_id", where="body")
    return document


def delivery_parse(*, document: Mapping, body: bytes, shop: ShopConnection) -> Delivery:
    """Validate a verified delivery of either shape and work out its type and idempotency key."""
    kind = document.get("type")
    body_key = "sha256:" + hashlib.sha256(body).hexdigest()
    if kind is None:
        raise _fail("Missing field body.type.")
    if isinstance(kind, bool) or not isinstance(kind, int | str):
        raise _fail(f"Field body.type must be a string or a number, got {_kind(kind)}.")
    if isinstance(kind, int):
        # TikTok's own shape: the notification id names the delivery, retries included.
        notification_id = _text(document, "tts_notification_id", where="body", required=False, limit=80)
        key = f"tts:{shop.pk}:{notification_id}" if notification_id else body_key
        event_type = f"tiktok:{kind}"
        if event_type != TIKTOK_ORDER_STATUS_CHANGE:
            return Delivery(shop.shop_id, event_type, key)
        _moment(document, "timestamp", where="body")
        return Delivery(shop.shop_id, event_type, key, _order_notice(_object(document.get("data"), "body.data")))
    event_type = kind.strip().replace("\x00", "\ufffd")[:TEXT_MAX]  # stored as text; PostgreSQL refuses NUL
    if event_type not in (ORDER_STATUS_CHANGE, INVENTORY_UPDATE):
        return Delivery(shop.shop_id, event_type or "(empty)", body_key)
    timestamp = _moment(document, "timestamp", where="body")
    data = _object(document.get("data"), "body.data")
    if event_type == ORDER_STATUS_CHANGE:
        return Delivery(shop.shop_id, event_type, body_key, _order_event(data, timestamp))
    return Delivery(shop.shop_id, event_type, body_key, _inventory_update(data))


# --- receive -------------------------------------------------------------------------------


def webhook_signature(*, app_key: str, app_secret: str, body: bytes) -> str:
    """Return the lowercase hex HMAC-SHA256 that signs ``body`` for a shop."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Receipt:
    event: WebhookEvent
    shop: ShopConnection
    duplicate: bool


def webhook_receive(*, body: bytes, signature: str | None) -> Receipt:
    """Verify a delivery and commit it raw to the inbox; a stored delivery key is a duplicate.

    Raises WebhookRejected (400/401/404/413) for a delivery that must not be stored.
    """
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise WebhookTooLarge(f"Body is {len(body):,} bytes; the limit is {settings.WEBHOOK_MAX_BODY_BYTES:,}.")
    if not signature or not signature.strip():
        raise WebhookSignatureError("Missing Authorization header (hex HMAC-SHA256 of app key + body).")
    document = webhook_parse(body=body)
    shop = ShopConnection.objects.filter(shop_id=document["shop_id"]).first()
    if shop is None:
        raise WebhookShopUnknown(f"No shop connection for shop_id {document['shop_id']!r}.")
    expected = webhook_signature(app_key=shop.app_key, app_secret=shop.app_secret, body=body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookSignatureError("Signature does not match.", shop=shop)
    try:
        delivery = delivery_parse(document=document, body=body, shop=shop)
    except WebhookRejected as rejection:
        rejection.shop = shop
        raise
    ignored = delivery.payload is None
    event = WebhookEvent(
        shop=shop,
        delivery_key=delivery.delivery_key,
        event_type=delivery.event_type,
        body=body.decode(),
        status=Status.IGNORED if ignored else Status.RECEIVED,
        processed_at=timezone.now() if ignored else None,
    )
    try:
        # One INSERT, committed on its own: the delivery is durable before any processing.
        # Inside a caller's transaction a savepoint keeps a duplicate from breaking it.
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            event.save(force_insert=True)
    except IntegrityError:
        existing = WebhookEvent.objects.filter(delivery_key=delivery.delivery_key).first()
        if existing is None:
            raise
        return Receipt(event=existing, shop=shop, duplicate=True)
    return Receipt(event=event, shop=shop, duplicate=False)


# --- process -------------------------------------------------------------------------------


def _order_event_fetched(*, shop: ShopConnection, notice: OrderNotice, client: TikTokClient) -> OrderEvent:
    """Fetch an order's detail from TikTok; the newer of notice and detail decides the status."""
    orders = client.orders_get(order_ids=[notice.order_id])
    detail = next((order for order in orders if order.get("id") == notice.order_id), None)
    if detail is None:
        raise OrderError(f"TikTok's order detail does not include order {notice.order_id}.")
    event = order_event_from_api(detail)
    if notice.updated_at > event.updated_at:
        event = OrderEvent(**{**event.__dict__, "status": notice.status, "updated_at": notice.updated_at})
    return event


def _inventory_apply(*, shop: ShopConnection, update: InventoryUpdate, reference: str) -> None:
    product, _ = product_upsert(
        creator_id=shop.creator_id,
        external_id=update.product_id,
        name=update.name,
        sku=update.sku,
        reorder_point=update.reorder_point,
        unit_cost=update.unit_cost,
    )
    warehouse = (
        warehouse_get_or_create(creator_id=shop.creator_id, external_id=update.warehouse_id)
        if update.warehouse_id
        else None
    )
    stock_set_on_hand(product=product, quantity=update.quantity, warehouse=warehouse, reference=reference)


def _stream_update(*, shop: ShopConnection, now: datetime, error: str = "") -> None:
    """Count one processed (or failed) event on the shop's webhook stream, creating it on first use."""
    stream = SyncOperation.objects.filter(shop=shop, type=SyncOperation.Type.WEBHOOK_STREAM)
    if error:
        changes = {"error_count": F("error_count") + 1, "last_error": error[:2000], "status": SyncOperation.Status.FAILED}
    else:
        changes = {"processed_count": F("processed_count") + 1, "status": SyncOperation.Status.RUNNING}
    changes.update(last_event_at=now, updated_at=now)
    recovered = False
    updated = 0
    if not error:
        updated = stream.filter(status=SyncOperation.Status.RUNNING).update(**changes)
    if not updated:
        updated = stream.update(**changes)
        recovered = bool(updated) and not error
    if not updated:
        try:
            with transaction.atomic():
                SyncOperation.objects.create(
                    creator_id=shop.creator_id,
                    shop=shop,
                    type=SyncOperation.Type.WEBHOOK_STREAM,
                    source="tiktok",
                    target="webhooks",
                    status=SyncOperation.Status.FAILED if error else SyncOperation.Status.RUNNING,
                    processed_count=0 if error else 1,
                    error_count=1 if error else 0,
                    last_error=error[:2000],
                    last_event_at=now,
                    started_at=now,
                )
        except IntegrityError:
            stream.update(**changes)  # Created by a concurrent first event.
    if recovered:
        # The stream had failed; a good event clears the critical health state on the dashboard.
        realtime_services.health_record(
            component=HEALTH_COMPONENT, status=SystemHealth.Status.NOMINAL, creator_id=shop.creator_id
        )
    # Queryset updates send no model signals: mark the sync fragment changed explicitly.
    realtime_services.changes_mark(shop.creator_id, realtime_services.SYNC)


def _apply(*, event: WebhookEvent, shop: ShopConnection, payload, now: datetime) -> None:
    if isinstance(payload, OrderEvent):
        order_apply_event(shop=shop, event=payload, now=now)
    elif isinstance(payload, InventoryUpdate):
        _inventory_apply(shop=shop, update=payload, reference=f"webhook {event.pk}")
    else:
        raise OrderError(f"Nothing to apply for event type {event.event_type}.")


def _failure_record(*, event: WebhookEvent, shop: ShopConnection, error: Exception, now: datetime) -> str:
    text = f"{type(error).__name__}: {error}"[:2000]
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk, status__in=[Status.RECEIVED, Status.FAILED]).update(
            status=Status.FAILED, error=text, attempts=F("attempts") + 1
        )
        realtime_services.health_record(
            component=HEALTH_COMPONENT,
            status=SystemHealth.Status.CRITICAL,
            error_message=f"Webhook event {event.pk} ({event.event_type}) failed: {text}",
            metrics={"event_id": event.pk, "event_type": event.event_type},
            creator_id=shop.creator_id,
        )
        _stream_update(shop=shop, now=now, error=f"Event {event.pk}: {text}")
    return text


def webhook_process(
    *,
    event: WebhookEvent,
    shop: ShopConnection | None = None,
    client: TikTokClient | None = None,
    slot: AbstractContextManager = nullcontext(),
) -> WebhookEvent:
    """Apply a stored event exactly once; record a failure on the event instead of raising.

    Database outages are the exception: they propagate, since nothing can be recorded then.
    ``slot`` is held around the transaction only, not around the TikTok API call before it.
    """
    if event.status not in (Status.RECEIVED, Status.FAILED):
        return event
    shop = shop or event.shop
    now = timezone.now()
    try:
        delivery = delivery_parse(document=json.loads(event.body), body=event.body.encode(), shop=shop)
        payload = delivery.payload
        if isinstance(payload, OrderNotice):
            # Fetched before the transaction opens: no row lock is held across the network call.
            payload = _order_event_fetched(shop=shop, notice=payload, client=client or TikTokClient.for_shop(shop))
        with slot, transaction.atomic():
            _apply(event=event, shop=shop, payload=payload, now=now)
            claimed = WebhookEvent.objects.filter(pk=event.pk, status__in=[Status.RECEIVED, Status.FAILED]).update(
                status=Status.PROCESSED, processed_at=now, error="", attempts=F("attempts") + 1
            )
            if not claimed:
                raise _Claimed
            _stream_update(shop=shop, now=now)
    except _Claimed:
        event.refresh_from_db()
        return event
    except Exception as error:  # noqa: BLE001 - every failure is kept on the event for replay
        if _database_down(error):
            raise
        text = _failure_record(event=event, shop=shop, error=error, now=now)
        logger.warning("webhook event=%s shop=%s type=%s failed: %s", event.pk, shop.shop_id, event.event_type, text)
        event.refresh_from_db()
        return event
    event.status, event.processed_at, event.error = Status.PROCESSED, now, ""
    event.attempts += 1
    return event


def _database_down(error: Exception) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


# --- the whole delivery, as the view needs it ------------------------------------------------

# TikTok waits a few seconds for the answer: fetch an order's detail briefly while it waits.
# A fetch that still fails leaves the event failed, and webhooks_replay fetches it patiently.
WEBHOOK_FETCH_OPTIONS = {"timeout": 3.0, "retries": 1, "backoff": 0.2}


class _TimedSlot:
    """A processing slot that remembers how long its holder waited for it."""

    def __init__(self, semaphore: threading.BoundedSemaphore):
        self.semaphore, self.waited = semaphore, 0.0

    def __enter__(self):
        started = time.perf_counter()
        self.semaphore.acquire()
        self.waited = time.perf_counter() - started
        return self

    def __exit__(self, *exc) -> None:
        self.semaphore.release()

_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _processing_slot() -> threading.BoundedSemaphore:
    """Bound how many deliveries one server process applies at the same time.

    Under ASGI every request runs its sync code on a thread of its own. A flash sale's orders
    all lock the same few stock rows, and a transaction holding them must not wait for the GIL
    behind dozens of others: deliveries queue here, before their transaction opens, instead.
    Storing to the inbox is not bounded, so a delivery is durable as soon as it arrives.
    """
    global _slots  # noqa: PLW0603 - one bound per process, rebuilt when the setting changes
    size = max(1, settings.WEBHOOK_PROCESSING_CONCURRENCY)
    if _slots is None or _slots[0] != size:
        _slots = (size, threading.BoundedSemaphore(size))
    return _slots[1]



@dataclass(frozen=True)
class WebhookResult:
    """The HTTP answer to a delivery: status code and JSON body."""

    status: int
    body: dict


def webhook_handle(*, body: bytes, signature: str | None) -> WebhookResult:
    """Receive and process one delivery; log one line for it (never the secret or signature)."""
    started = time.perf_counter()
    shop_id, event_type, outcome, queued = "-", "-", "error", 0.0
    try:
        try:
            receipt = webhook_receive(body=body, signature=signature)
        except WebhookRejected as rejection:
            shop_id = rejection.shop.shop_id if rejection.shop else "-"
            outcome = f"rejected_{rejection.status}"
            return WebhookResult(rejection.status, {"error": rejection.code, "detail": rejection.message})
        event, shop_id, event_type = receipt.event, receipt.shop.shop_id, receipt.event.event_type
        if receipt.duplicate and event.status != Status.RECEIVED:
            outcome = "duplicate"
        elif event.status == Status.IGNORED:
            outcome = "ignored"
        else:
            # A duplicate still "received" was stored by an attempt that never got to apply it (the
            # database went away, the process died) and was not acknowledged: this retry applies it.
            # Processing claims the event, so one racing the first attempt changes nothing.
            if not connection.in_atomic_block:
                # Back to the pool while this delivery waits: a queue of waiting deliveries must
                # not hold every pooled connection (the inbox row is committed already).
                connection.close()
            slot = _TimedSlot(_processing_slot())
            client = TikTokClient.for_shop(receipt.shop, **WEBHOOK_FETCH_OPTIONS)
            event = webhook_process(event=event, shop=receipt.shop, client=client, slot=slot)
            queued = slot.waited
            outcome = "duplicate" if receipt.duplicate and event.status != Status.FAILED else event.status
        answer = {"status": outcome, "event_id": event.pk}
        if outcome == Status.FAILED:
            answer["detail"] = "Stored; processing failed and can be replayed."
        return WebhookResult(200, answer)
    finally:
        logger.info(
            "webhook shop=%s type=%s outcome=%s ms=%.1f queued_ms=%.1f",
            shop_id,
            event_type,
            outcome,
            (time.perf_counter() - started) * 1000,
            queued * 1000,
        )


# --- replay --------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    processed: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def webhooks_replay(
    *,
    event_ids: Iterable[int] | None = None,
    failed_only: bool = False,
    client: TikTokClient | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Process stored events again: the given ones, or every event not yet applied.

    An event already processed (or ignored) is skipped, never applied twice. ``progress`` is
    called with (events done, events in all) after each event.
    """
    events = WebhookEvent.objects.select_related("shop").order_by("pk")
    if event_ids is not None:
        events = events.filter(pk__in=list(event_ids))
    else:
        events = events.filter(status__in=[Status.FAILED] if failed_only else [Status.RECEIVED, Status.FAILED])
    report = ReplayReport()
    # Ids first: each event is processed in its own transactions, so no cursor stays open across them.
    ids = list(events.values_list("pk", flat=True))
    for done, event_id in enumerate(ids, start=1):
        event = WebhookEvent.objects.select_related("shop").get(pk=event_id)
        if event.status not in (Status.RECEIVED, Status.FAILED) or (failed_only and event.status != Status.FAILED):
            report.skipped.append(event.pk)
        else:
            event = webhook_process(event=event, shop=event.shop, client=client)
            if event.status == Status.PROCESSED:
                report.processed.append(event.pk)
            elif event.status == Status.FAILED:
                report.failed.append(event.pk)
            else:
                report.skipped.append(event.pk)
        if progress:
            progress(done, len(ids))
    return report
