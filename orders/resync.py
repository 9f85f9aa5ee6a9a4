"""Pull a shop's products, stock and orders from the TikTok Shop API and reconcile them.

Everything goes through the same services the webhooks use, so a resync after webhooks changes
nothing, and a resync can run again at any time. Progress is kept on a SyncOperation, which the
dashboard shows live (processed count and estimated completion); its saves are the heartbeat
``orders.syncs`` judges it by. Whatever stops a resync marks its operation failed.
"""

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from creatorflow.changes import SYNC, changes_mark
from inventory.services.catalogue import product_upsert, warehouse_get_or_create
from inventory.services.errors import StockError
from inventory.services.stock import stock_set_on_hand

from .events import OrderError
from .models import ShopConnection, SyncOperation
from .payloads import order_event_from_api, product_from_api
from .services import order_apply_event
from .shops import shop_api_problem
from .syncs import HEARTBEAT_SECONDS, sync_operations_fail_stale
from .tiktok import Page, TikTokAuthError, TikTokClient, TikTokError

logger = logging.getLogger("creatorflow.resync")
PAGE_SIZE = 50
Progress = Callable[[int, int], None]


class ResyncError(Exception):
    """The resync stopped; the SyncOperation says why."""


class _Run:
    """One resync's bookkeeping on its SyncOperation."""

    def __init__(self, operation: SyncOperation, progress: Progress | None):
        self.operation, self.progress = operation, progress
        self.started = timezone.now()
        self.saved = time.monotonic()

    def save(self, *fields: str) -> None:
        self.operation.save(update_fields=[*fields, "updated_at"])
        self.saved = time.monotonic()
        changes_mark(self.operation.creator_id, SYNC, ids=[self.operation.pk])

    def heartbeat(self) -> None:
        """Tell the dashboard (and the staleness check) this resync is alive, at most every 30 s."""
        if time.monotonic() - self.saved >= HEARTBEAT_SECONDS:
            self.operation.save(update_fields=["updated_at"])
            self.saved = time.monotonic()

    def failed(self, message: str) -> None:
        self.operation.status = SyncOperation.Status.FAILED
        self.operation.last_error = message[:2000]
        self.operation.completed_at = timezone.now()
        self.operation.estimated_completion = None
        self.save("status", "last_error", "completed_at", "estimated_completion")

    def counted(self, total: int | None) -> None:
        if total is not None:
            self.operation.entity_count = (self.operation.entity_count or 0) + total
            self.save("entity_count")

    def done(self, processed: int, errors: list[str]) -> None:
        operation = self.operation
        operation.processed_count += processed
        operation.error_count += len(errors)
        if errors:
            operation.last_error = errors[-1][:2000]
        operation.status = SyncOperation.Status.RUNNING
        if operation.entity_count and operation.processed_count:
            elapsed = timezone.now() - self.started
            remaining = max(operation.entity_count - operation.processed_count, 0)
            operation.estimated_completion = timezone.now() + elapsed * (remaining / operation.processed_count)
        self.save("processed_count", "error_count", "last_error", "status", "estimated_completion")
        if self.progress:
            self.progress(operation.processed_count, operation.entity_count or operation.processed_count)

    def retrying(self, seconds: float) -> None:
        self.operation.status = SyncOperation.Status.RETRYING
        self.operation.last_error = f"TikTok busy or failing; retrying in {seconds:.1f}s."
        self.save("status", "last_error")


def _counted(pages: Iterator[Page], run: _Run) -> Iterator[list[dict]]:
    """Yield each page's items, counting the total the first page announces."""
    for number, page in enumerate(pages):
        if number == 0:
            run.counted(page.total_count)
        yield page.items


def _apply_product(shop: ShopConnection, product: Mapping) -> None:
    listing = product_from_api(product)
    with transaction.atomic():
        item, _ = product_upsert(creator_id=shop.creator_id, external_id=listing.product_id, **listing.fields)
        for warehouse_id, quantity in listing.units_by_warehouse.items():
            warehouse = warehouse_get_or_create(creator_id=shop.creator_id, external_id=warehouse_id) if warehouse_id else None
            stock_set_on_hand(product=item, quantity=quantity, warehouse=warehouse, reference="tiktok resync")


def tiktok_resync(
    *,
    shop: ShopConnection,
    since: datetime | None = None,
    client: TikTokClient | None = None,
    progress: Progress | None = None,
) -> SyncOperation:
    """Reconcile the shop's products, stock and orders with TikTok; return the SyncOperation.

    Raises ResyncError, before any request, when the shop has no access token or no usable API
    base URL, and when TikTok refuses the credentials or stays unavailable; the operation is then
    marked failed with the reason. Any other exception also marks it failed, then propagates.
    """
    problem = shop_api_problem(shop) if client is None else None
    if problem:
        raise ResyncError(problem)
    sync_operations_fail_stale()
    operation = SyncOperation.objects.create(
        creator_id=shop.creator_id,
        shop=shop,
        type=SyncOperation.Type.RESYNC,
        source="tiktok",
        target="products+orders",
        status=SyncOperation.Status.RUNNING,
        started_at=timezone.now(),
    )
    changes_mark(shop.creator_id, SYNC, ids=[operation.pk])
    run = _Run(operation, progress)

    def backoff_sleep(seconds: float) -> None:
        run.retrying(seconds)
        time.sleep(seconds)

    client = client or TikTokClient.for_shop(shop, sleep=backoff_sleep)
    try:
        for items in _counted(client.products_pages(since=since, page_size=PAGE_SIZE), run):
            errors = []
            for product in items:
                run.heartbeat()
                try:
                    _apply_product(shop, product)
                except (OrderError, StockError) as error:
                    errors.append(f"product {product.get('id')!r}: {error}")
            run.done(len(items) - len(errors), errors)
        for items in _counted(client.orders_pages(since=since, page_size=PAGE_SIZE), run):
            errors = []
            for order in items:
                run.heartbeat()
                try:
                    order_apply_event(shop=shop, event=order_event_from_api(order))
                except (OrderError, StockError) as error:
                    errors.append(f"order {order.get('id')!r}: {error}")
            run.done(len(items) - len(errors), errors)
    except TikTokError as error:
        run.failed(str(error))
        logger.warning("resync shop=%s outcome=failed error=%s", shop.shop_id, error)
        kind = "credentials" if isinstance(error, TikTokAuthError) else "availability"
        raise ResyncError(f"Resync of shop {shop.shop_id} failed ({kind}): {error}") from error
    except BaseException as error:
        # A crash or an interrupt (Ctrl-C): the operation must not stay "running" for ever.
        run.failed(f"Resync stopped by {type(error).__name__}: {error}")
        logger.error("resync shop=%s outcome=failed error=%s", shop.shop_id, type(error).__name__)
        raise
    operation.status = SyncOperation.Status.COMPLETED
    operation.completed_at = timezone.now()
    operation.estimated_completion = None
    run.save("status", "completed_at", "estimated_completion")
    logger.info(
        "resync shop=%s outcome=completed processed=%d errors=%d",
        shop.shop_id,
        operation.processed_count,
        operation.error_count,
    )
    return operation
