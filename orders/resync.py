"""Pull a shop's products, stock and orders from the TikTok Shop API and reconcile them.

Everything goes through the same services the webhooks use, so a resync after webhooks changes
nothing, and a resync can run again at any time.

Stock is reconciled, not overwritten: TikTok's counts are what it can still sell (units of open
orders already taken out), so on hand becomes TikTok's available plus its committed units (from
Inventory Search), or, where TikTok does not report them, its quantity plus the units CreatorFlow
holds. Without committed figures, the units of an order the resync is first to hear of are known
only once the orders are in: such products keep CreatorFlow's count while the orders are applied
(a new stock row starts at TikTok's quantity) and are reconciled after them, so neither that
order nor a cancellation the resync is first to apply is counted twice. Progress is kept on a SyncOperation, which the
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
from inventory.services.catalogue import product_skus_set, product_upsert, warehouse_get_or_create
from inventory.services.errors import StockError
from inventory.models import Product
from inventory.services.stock import SellableCount, stock_reconcile

from .events import OrderError
from .models import ShopConnection, SyncOperation
from .payloads import WarehouseStock, inventory_from_api, order_event_from_api, product_from_api
from .services import order_apply_event
from .shops import shop_api_problem
from .syncs import HEARTBEAT_SECONDS, sync_operations_fail_stale
from .tiktok import Page, TikTokAuthError, TikTokClient, TikTokError, TikTokUnavailable

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


def _inventory(client: TikTokClient, product_ids: list[str]) -> dict[str, list[WarehouseStock]]:
    """Return TikTok's Inventory Search of the products; empty when TikTok does not answer it usefully."""
    if not product_ids:
        return {}
    try:
        entries = client.inventory_search(product_ids=product_ids)
    except (TikTokAuthError, TikTokUnavailable):
        raise
    except TikTokError as error:
        logger.warning("resync inventory search refused (%s); reconciling from product quantities", error)
        return {}
    stock = {}
    for entry in entries:
        try:
            product_id, rows = inventory_from_api(entry)
        except OrderError as error:
            logger.warning("resync inventory search entry skipped: %s", error)
            continue
        stock[product_id] = rows
    return stock


def _apply_product(
    shop: ShopConnection, product: Mapping, stock: list[WarehouseStock] | None
) -> tuple[Product, list[SellableCount]]:
    """Upsert the product with its SKU ids and reconcile its stock; return it and the counts used."""
    listing = product_from_api(product)
    if stock:
        rows = [(row.warehouse_id, row.available, row.committed) for row in stock]
    else:
        rows = [(warehouse_id, units, None) for warehouse_id, units in listing.units_by_warehouse.items()]
    with transaction.atomic():
        item, _ = product_upsert(creator_id=shop.creator_id, external_id=listing.product_id, **listing.fields)
        if listing.sku_ids:
            product_skus_set(product=item, sku_ids=listing.sku_ids)
        counts = [
            SellableCount(
                warehouse=warehouse_get_or_create(creator_id=shop.creator_id, external_id=warehouse_id) if warehouse_id else None,
                sellable=sellable,
                committed=committed,
            )
            for warehouse_id, sellable, committed in rows
        ]
        # Without committed units, existing rows wait for the orders (``_stock_reconcile_again``).
        committed_known = all(count.committed is not None for count in counts)
        stock_reconcile(product=item, counts=counts, reference="tiktok resync", new_rows_only=not committed_known)
    return item, counts


def _products_sync(shop: ShopConnection, client: TikTokClient, run: _Run, *, since: datetime | None) -> dict:
    """Pull every product page with its stock; return the counts to reconcile again after the orders."""
    again: dict[int, tuple[Product, list[SellableCount]]] = {}
    for items in _counted(client.products_pages(since=since, page_size=PAGE_SIZE), run):
        stock = _inventory(client, [product["id"] for product in items if isinstance(product.get("id"), str)])
        errors = []
        for product in items:
            run.heartbeat()
            try:
                item, counts = _apply_product(shop, product, stock.get(product.get("id")))
            except (OrderError, StockError) as error:
                errors.append(f"product {product.get('id')!r}: {error}")
                continue
            if any(count.committed is None for count in counts):
                again[item.pk] = (item, counts)
        run.done(len(items) - len(errors), errors)
    return again


def _orders_sync(shop: ShopConnection, client: TikTokClient, run: _Run, *, since: datetime | None) -> None:
    for items in _counted(client.orders_pages(since=since, page_size=PAGE_SIZE), run):
        errors = []
        for order in items:
            run.heartbeat()
            try:
                order_apply_event(shop=shop, event=order_event_from_api(order))
            except (OrderError, StockError) as error:
                errors.append(f"order {order.get('id')!r}: {error}")
        run.done(len(items) - len(errors), errors)


def _stock_reconcile_again(again: dict[int, tuple[Product, list[SellableCount]]]) -> None:
    """Reconcile the products TikTok reported without committed units, now that the orders are in."""
    for product, counts in again.values():
        try:
            stock_reconcile(product=product, counts=counts, reference="tiktok resync, orders in")
        except StockError as error:
            logger.warning("resync product=%s stock not reconciled again: %s", product.external_id, error)


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
        again = _products_sync(shop, client, run, since=since)
        _orders_sync(shop, client, run, since=since)
        _stock_reconcile_again(again)
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
