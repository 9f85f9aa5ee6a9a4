"""The TikTok webhook inbox: verify and store raw, apply exactly once, replay.

1. ``webhooks_receive`` checks each delivery's signature (HMAC-SHA256 of app key + raw body
   with the shop's app secret), validates its payload (``orders.payloads``), and commits the
   deliveries raw to the inbox (``WebhookEvent``) in one statement: the applier stores every
   delivery waiting in its process this way (``webhook_receive`` stores one). A delivery whose
   ``delivery_key`` is already stored is a duplicate and changes nothing: the unique index
   decides, also between simultaneous connections and servers.
2. ``webhooks_apply`` applies stored events in arrival order, a batch of them in one
   transaction (the group commit of ``orders.runtime.Applier``; ``webhook_process`` and replay
   apply one). Each inbox row is claimed in that same transaction (``received``/``failed`` →
   ``processed``), so an event is applied at most once even when batches, replays and server
   processes race for it.
3. A failure rolls the effects back and is kept: the row turns ``failed`` with the error and
   one more attempt, the shop's webhook stream and a critical ``tiktok_webhook`` SystemHealth
   record say so, and ``webhooks_replay`` can run it again.
"""

import hashlib
import hmac
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from creatorflow.db import insert_missing
from creatorflow.prepared import prepared

from .events import InventoryUpdate, OrderError, OrderEvent, OrderNotice
from .models import ShopConnection, WebhookEvent
from .payloads import Delivery, PayloadError, delivery_parse, order_event_from_api, webhook_parse
from .services import orders_apply, stock_update_apply
from .streams import stream_failure_record, streams_record_processed
from .tiktok import TikTokClient

logger = logging.getLogger("creatorflow.webhooks")

Status = WebhookEvent.Status


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


# --- receive -------------------------------------------------------------------------------


def webhook_signature(*, app_key: str, app_secret: str, body: bytes) -> str:
    """Return the lowercase hex HMAC-SHA256 that signs ``body`` for a shop."""
    return hmac.new(app_secret.encode(), app_key.encode() + body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Receipt:
    event: WebhookEvent
    shop: ShopConnection
    duplicate: bool
    payload: OrderEvent | InventoryUpdate | OrderNotice | None = None


@prepared
def _shops_read(*, shop_ids: list[str]):
    return ShopConnection.objects.filter(shop_id__in=shop_ids)


def webhook_receive(*, body: bytes, signature: str | None) -> Receipt:
    """Verify a delivery and commit it raw to the inbox; a stored delivery key is a duplicate.

    Raises WebhookRejected (400/401/404/413) for a delivery that must not be stored.
    """
    (received,) = webhooks_receive([(body, signature)])
    if isinstance(received, Exception):
        raise received
    return received


def webhooks_receive(deliveries: Sequence[tuple[bytes, str | None]]) -> list[Receipt | Exception]:
    """Verify deliveries and commit the verified ones raw to the inbox in one INSERT; return each one's receipt.

    ``deliveries`` are (raw body, signature) pairs. Per delivery, in order: its Receipt (a
    delivery whose key is stored already, earlier or in this same call, is a duplicate), the
    WebhookRejected that refuses it (nothing of it is stored), or the database error that kept
    it from being stored. The shops are read in one query and the inbox rows written in one
    committed statement, in delivery-key order: two servers storing the same retried
    deliveries at once cannot deadlock. This is how a server's applier stores every delivery
    waiting for it; database outages propagate.
    """
    results: list[Receipt | Exception | None] = [None] * len(deliveries)
    documents: dict[int, dict] = {}
    for index, (body, signature) in enumerate(deliveries):
        try:
            documents[index] = _document(body, signature)
        except WebhookRejected as rejection:
            results[index] = rejection
    wanted = sorted({document["shop_id"] for document in documents.values()})
    shops = {shop.shop_id: shop for shop in _shops_read.objects(shop_ids=wanted)} if wanted else {}
    verified: dict[int, tuple[ShopConnection, Delivery]] = {}
    for index, document in documents.items():
        body, signature = deliveries[index]
        try:
            verified[index] = _verified(document, body=body, signature=signature, shops=shops)
        except WebhookRejected as rejection:
            results[index] = rejection
    now = timezone.now()
    rows: dict[str, WebhookEvent] = {}
    for index, (shop, delivery) in verified.items():
        ignored = delivery.payload is None
        rows.setdefault(
            delivery.delivery_key,
            WebhookEvent(
                shop=shop,
                delivery_key=delivery.delivery_key,
                event_type=delivery.event_type,
                body=deliveries[index][0].decode(),
                status=Status.IGNORED if ignored else Status.RECEIVED,
                processed_at=now if ignored else None,
            ),
        )
    stored = _inbox_store([rows[key] for key in sorted(rows)])
    for index, (shop, delivery) in verified.items():
        event, created = stored[delivery.delivery_key]
        if isinstance(event, Exception):
            results[index] = event
            continue
        event.shop = shop
        results[index] = Receipt(event=event, shop=shop, duplicate=not created, payload=delivery.payload)
        stored[delivery.delivery_key] = (event, False)  # a second delivery of it in this call is a duplicate
    return results


def _document(body: bytes, signature: str | None) -> dict:
    """Check a delivery's size and signature header and parse its body; raise WebhookRejected."""
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        raise WebhookTooLarge(f"Body is {len(body):,} bytes; the limit is {settings.WEBHOOK_MAX_BODY_BYTES:,}.")
    if not signature or not signature.strip():
        raise WebhookSignatureError("Missing Authorization header (hex HMAC-SHA256 of app key + body).")
    try:
        return webhook_parse(body=body)
    except PayloadError as error:
        raise WebhookPayloadError(str(error)) from None


def _verified(
    document: dict, *, body: bytes, signature: str, shops: dict[str, ShopConnection]
) -> tuple[ShopConnection, Delivery]:
    """Check a parsed delivery's signature with its shop's secret and validate what it says."""
    shop = shops.get(document["shop_id"])
    if shop is None:
        raise WebhookShopUnknown(f"No shop connection for shop_id {document['shop_id']!r}.")
    expected = webhook_signature(app_key=shop.app_key, app_secret=shop.app_secret, body=body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        raise WebhookSignatureError("Signature does not match.", shop=shop)
    try:
        delivery = delivery_parse(document=document, body=body, shop_pk=shop.pk, shop_id=shop.shop_id)
    except PayloadError as error:
        raise WebhookPayloadError(str(error), shop=shop) from None
    return shop, delivery


def _inbox_store(rows: list[WebhookEvent]) -> dict[str, tuple[WebhookEvent | Exception, bool]]:
    """Commit new inbox rows, in the order given; return (stored event, created) by delivery key.

    One ``INSERT ... ON CONFLICT DO NOTHING``, committed on its own (in a savepoint inside a
    caller's transaction): every delivery is durable before any processing. Keys stored already
    are read back in one query. Should the statement fail for a reason other than an outage, each
    row is stored alone, and only the one that cannot be stored reports its error.
    """
    if not rows:
        return {}
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            created = {event.delivery_key for event in insert_missing(WebhookEvent, rows, unique_fields=("delivery_key",))}
    except DatabaseError as error:
        if _database_down(error) or len(rows) == 1:
            raise
        stored: dict[str, tuple[WebhookEvent | Exception, bool]] = {}
        for row in rows:
            try:
                stored.update(_inbox_store([row]))
            except DatabaseError as alone:
                if _database_down(alone):
                    raise
                stored[row.delivery_key] = (alone, False)
        return stored
    stored = {event.delivery_key: (event, True) for event in rows if event.delivery_key in created}
    taken = [event.delivery_key for event in rows if event.delivery_key not in created]
    if taken:
        stored.update((event.delivery_key, (event, False)) for event in WebhookEvent.objects.filter(delivery_key__in=taken))
    return stored


# --- apply ---------------------------------------------------------------------------------


@dataclass
class Pending:
    """A stored event waiting to be applied, and what it says (None: read it from the stored body)."""

    event: WebhookEvent
    payload: OrderEvent | InventoryUpdate | OrderNotice | None = None


def receipt_pending(receipt: Receipt) -> Pending | None:
    """Return the stored event a receipt leaves to apply, or None when it is answered as it stands.

    An ignored type, and a duplicate of an event already processed or failed, are answered at
    once. A duplicate still ``received`` was stored by an attempt that never got to apply it (the
    database went away, the process died) and was not acknowledged: this delivery applies it.
    """
    event = receipt.event
    if event.status == Status.IGNORED or (receipt.duplicate and event.status != Status.RECEIVED):
        return None
    return Pending(event=event, payload=receipt.payload)


def pending_fetches(pending: Pending) -> bool:
    """Whether applying the event needs TikTok's order detail first (a network call, kept off batches)."""
    return isinstance(pending.payload, OrderNotice)


@dataclass(frozen=True)
class Applied:
    """What became of an event: processed, failed (kept for replay), or still received elsewhere."""

    status: str
    error: str = ""


def _order_event_fetched(*, notice: OrderNotice, client: TikTokClient) -> OrderEvent:
    """Fetch an order's detail from TikTok; the newer of notice and detail decides the status."""
    orders = client.orders_get(order_ids=[notice.order_id])
    detail = next((order for order in orders if order.get("id") == notice.order_id), None)
    if detail is None:
        raise OrderError(f"TikTok's order detail does not include order {notice.order_id}.")
    event = order_event_from_api(detail)
    if notice.updated_at > event.updated_at:
        event = OrderEvent(**{**event.__dict__, "status": notice.status, "updated_at": notice.updated_at})
    return event


def pending_read(pending: Pending, *, client: TikTokClient | None = None) -> Pending:
    """Read what a stored event says, fetching a TikTok order's detail; raise what stops it.

    Runs before the applying transaction opens: no row lock is held across the network call.
    """
    event, payload = pending.event, pending.payload
    if payload is None:
        shop = event.shop
        delivery = delivery_parse(
            document=json.loads(event.body), body=event.body.encode(), shop_pk=shop.pk, shop_id=shop.shop_id
        )
        payload = delivery.payload
    if isinstance(payload, OrderNotice):
        payload = _order_event_fetched(notice=payload, client=client or TikTokClient.for_shop(event.shop))
    if payload is None:
        raise OrderError(f"Nothing to apply for event type {event.event_type}.")
    return Pending(event=event, payload=payload)


def webhook_fail(*, event: WebhookEvent, error: Exception | str, now=None) -> str:
    """Record that a stored event could not be applied: kept ``failed`` with its error, for replay."""
    now = now or timezone.now()
    text = (error if isinstance(error, str) else f"{type(error).__name__}: {error}")[:2000]
    with transaction.atomic():
        WebhookEvent.objects.filter(pk=event.pk, status__in=[Status.RECEIVED, Status.FAILED]).update(
            status=Status.FAILED, error=text, attempts=F("attempts") + 1
        )
        stream_failure_record(shop=event.shop, event_id=event.pk, event_type=event.event_type, error=text, now=now)
    logger.warning("webhook event=%s shop=%s type=%s failed: %s", event.pk, event.shop.shop_id, event.event_type, text)
    return text


@prepared
def _waiting_read(*, event_ids: list[int], skip_locked: bool):
    waiting = WebhookEvent.objects.filter(pk__in=event_ids, status__in=[Status.RECEIVED, Status.FAILED]).order_by("pk")
    return waiting.select_for_update(skip_locked=skip_locked).values("pk")


@prepared
def _processed_mark(*, event_ids: list[int], now: datetime):
    changes = {"status": Status.PROCESSED, "processed_at": now, "error": "", "attempts": F("attempts") + 1}
    return WebhookEvent.objects.filter(pk__in=event_ids), changes


def _claim(ids: list[int], *, skip_locked: bool) -> set[int]:
    """Lock the events still waiting among ``ids``; with ``skip_locked``, pass over ones another batch holds."""
    return {row["pk"] for row in _waiting_read.values(event_ids=sorted(ids), skip_locked=skip_locked)}


def _apply_claimed(batch: list[Pending], *, now) -> dict[int, Applied]:
    """Apply claimed events in arrival order; order events in runs, each run one set-based batch."""
    results: dict[int, Applied] = {}
    processed: dict[int, Pending] = {}
    run: list[Pending] = []

    def run_apply() -> None:
        outcomes = orders_apply(events=[(pending.event.shop, pending.payload) for pending in run], now=now)
        for pending, outcome in zip(run, outcomes, strict=True):
            if isinstance(outcome, OrderError):
                results[pending.event.pk] = Applied(Status.FAILED, webhook_fail(event=pending.event, error=outcome, now=now))
            else:
                processed[pending.event.pk] = pending
        run.clear()

    for pending in batch:
        if isinstance(pending.payload, OrderEvent):
            run.append(pending)
            continue
        if run:
            run_apply()
        stock_update_apply(shop=pending.event.shop, update=pending.payload, reference=f"webhook {pending.event.pk}")
        processed[pending.event.pk] = pending
    if run:
        run_apply()
    if processed:
        _processed_mark.update(event_ids=sorted(processed), now=now)
        per_shop: dict[int, list[Pending]] = defaultdict(list)
        for pending in processed.values():
            per_shop[pending.event.shop_id].append(pending)
        streams_record_processed(processed={events[0].event.shop: len(events) for events in per_shop.values()}, now=now)
        results.update({event_id: Applied(Status.PROCESSED) for event_id in processed})
    return results


def webhooks_apply(
    pending: Sequence[Pending], *, client: TikTokClient | None = None, skip_locked: bool = True, _retried: bool = False
) -> dict[int, Applied]:
    """Apply stored events, in arrival order, in one transaction; return what became of each, by id.

    Each event is claimed in that transaction (``received``/``failed`` → ``processed``), so it is
    applied at most once however many batches, replays and processes race for it; one claimed
    by another batch (skipped with ``skip_locked``, or waited for) is reported as it then stands.
    An event that cannot be applied fails alone: on an unexpected error the batch is rolled back
    and its events applied again one at a time, so only the bad one ends ``failed``. Database
    outages propagate: nothing can be recorded then, and the events stay ``received``.
    """
    now = timezone.now()
    results: dict[int, Applied] = {}
    ready: dict[int, Pending] = {}
    for item in sorted(pending, key=lambda item: item.event.pk):
        if item.event.pk in ready or item.event.pk in results:
            continue
        try:
            ready[item.event.pk] = pending_read(item, client=client)
        except Exception as error:  # noqa: BLE001 - every failure is kept on the event for replay
            if _database_down(error):
                raise
            results[item.event.pk] = Applied(Status.FAILED, webhook_fail(event=item.event, error=error, now=now))
    if not ready:
        return results
    try:
        with transaction.atomic():
            claimed = _claim(list(ready), skip_locked=skip_locked)
            results.update(_apply_claimed([ready[event_id] for event_id in sorted(claimed)], now=now))
    except Exception as error:  # noqa: BLE001 - see below
        if _database_down(error):
            raise
        if len(ready) > 1:
            for item in ready.values():
                results.update(webhooks_apply([item], client=client, skip_locked=skip_locked))
            return results
        (item,) = ready.values()
        if isinstance(error, IntegrityError) and not _retried:
            # Another process created the same new order first; applied again, it is an update.
            return {**results, **webhooks_apply([item], client=client, skip_locked=skip_locked, _retried=True)}
        results[item.event.pk] = Applied(Status.FAILED, webhook_fail(event=item.event, error=error, now=now))
        return results
    others = [event_id for event_id in ready if event_id not in claimed]
    if others:
        for event_id, status, error in WebhookEvent.objects.filter(pk__in=others).values_list("pk", "status", "error"):
            results[event_id] = Applied(status, error)
    return results


def webhook_process(*, event: WebhookEvent, client: TikTokClient | None = None) -> WebhookEvent:
    """Apply one stored event now, in this thread, exactly once; return it as it then stands.

    A failure is recorded on the event rather than raised; database outages propagate.
    """
    if event.status in (Status.RECEIVED, Status.FAILED):
        webhooks_apply([Pending(event=event)], client=client, skip_locked=False)
        event.refresh_from_db()
    return event


def _database_down(error: Exception) -> bool:
    return isinstance(error, OperationalError | InterfaceError)


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
            event = webhook_process(event=event, client=client)
            if event.status == Status.PROCESSED:
                report.processed.append(event.pk)
            elif event.status == Status.FAILED:
                report.failed.append(event.pk)
            else:
                report.skipped.append(event.pk)
        if progress:
            progress(done, len(ids))
    return report
