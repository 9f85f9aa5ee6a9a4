"""Stock write-back: tell TikTok what CreatorFlow can still sell, after a product's available changes.

Opt-in per shop (``ShopConnection.stock_write_back``). The after-commit change marks
(``creatorflow.changes``, topic inventory) name the products whose stock moved; ``stock_changed``
hands them to this process's writer thread and returns at once, so no request and no inbox batch
waits for TikTok. The writer reads a product's available units when it sends, so the latest value
wins. It sends at once when a product reaches 0, otherwise at most once per ``INTERVAL_SECONDS``
per product, and never sends TikTok a value it already accepted. A 429, a 5xx or a network
failure backs the shop off (doubling, capped) and keeps what is owed: the latest value is sent
when TikTok answers again.

Every attempt is counted on the shop's write-back SyncOperation (processed: updates TikTok
accepted; errors; last error), which the dashboard's sync operations show. CreatorFlow keeps stock
per product, so a product with several TikTok SKUs (or none known yet) is not written back: the
operation's ``detail`` and the log name those products.
"""

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import connection
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from creatorflow.changes import INVENTORY, SYNC, Change, changes_mark
from inventory.models import Product, ProductSku

from .models import ShopConnection, SyncOperation
from .tiktok import TikTokAuthError, TikTokClient, TikTokError, TikTokUnavailable

logger = logging.getLogger("creatorflow.writeback")

INTERVAL_SECONDS = 1.0  # at most one update per product per interval, except on reaching 0
BACKOFF_SECONDS = 0.25  # first wait after TikTok failed; doubles per failure in a row
BACKOFF_MAX_SECONDS = 5.0
TIMEOUT_SECONDS = 5.0
SHOPS_TTL_SECONDS = 1.0  # how long the list of shops writing back is trusted


# --- which creators write back ---------------------------------------------------------------


class _WriteBackCreators:
    """The creators with a write-back shop, read at most once per ``SHOPS_TTL_SECONDS`` per process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._creators: frozenset[int] = frozenset()
        self._read_at = float("-inf")

    def get(self) -> frozenset[int]:
        with self._lock:
            if time.monotonic() - self._read_at >= SHOPS_TTL_SECONDS:
                self._creators = frozenset(
                    ShopConnection.objects.filter(stock_write_back=True).values_list("creator_id", flat=True)
                )
                self._read_at = time.monotonic()
            return self._creators

    def forget(self) -> None:
        with self._lock:
            self._read_at = float("-inf")


_creators = _WriteBackCreators()


def write_back_forget() -> None:
    """Read the write-back shops again on the next change (after a shop was switched)."""
    _creators.forget()


def stock_changed(creator_id: int, change: Change) -> None:
    """Hand the products whose stock changed to the writer, when the creator writes back (after commit)."""
    product_ids = change.ids.get(INVENTORY)
    if not product_ids:
        return
    try:
        if creator_id in _creators.get():
            writer().notify(product_ids)
    except Exception:  # noqa: BLE001 - a committed order must never fail because of the write-back
        logger.exception("stock write-back could not take the change of creator %s", creator_id)


# --- what to send ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    product_id: int
    external_id: str
    available: int
    sku_ids: tuple[str, ...]
    shop: ShopConnection | None


def _targets(product_ids: set[int]) -> list[_Target]:
    """Read the products' available units, TikTok SKUs and write-back shop (three queries)."""
    products = list(
        Product.objects.filter(pk__in=product_ids)
        .annotate(units=Coalesce(Sum("stocks__available"), 0))
        .values_list("pk", "creator_id", "external_id", "units")
    )
    skus: dict[int, list[str]] = defaultdict(list)
    for product_id, sku_id in ProductSku.objects.filter(product_id__in=product_ids).order_by("pk").values_list(
        "product_id", "external_id"
    ):
        skus[product_id].append(sku_id)
    shops: dict[int, ShopConnection] = {}
    creators = {creator_id for _, creator_id, _, _ in products}
    for shop in ShopConnection.objects.filter(creator_id__in=creators, stock_write_back=True).order_by("pk"):
        shops.setdefault(shop.creator_id, shop)  # a creator's first write-back shop holds the products
    return [
        _Target(pk, external_id, max(units, 0), tuple(skus[pk]), shops.get(creator_id))
        for pk, creator_id, external_id, units in products
    ]


# --- the shop's write-back SyncOperation ---------------------------------------------------------


def _operation(shop: ShopConnection) -> SyncOperation:
    now = timezone.now()
    operation, _ = SyncOperation.objects.get_or_create(
        shop=shop,
        type=SyncOperation.Type.STOCK_WRITE_BACK,
        defaults={
            "creator_id": shop.creator_id,
            "source": "creatorflow",
            "target": "tiktok",
            "status": SyncOperation.Status.RUNNING,
            "started_at": now,
        },
    )
    return operation


def _operation_update(shop: ShopConnection, **changes) -> None:
    try:
        operation = _operation(shop)
        SyncOperation.objects.filter(pk=operation.pk).update(updated_at=timezone.now(), **changes)
    except Exception:  # noqa: BLE001 - what TikTok was told stands even if its record cannot be written now
        logger.exception("stock write-back could not record an attempt of shop %s", shop.shop_id)
        return
    changes_mark(shop.creator_id, SYNC, ids=[operation.pk])


def _record_attempt(shop: ShopConnection, *, error: str = "", status: str = SyncOperation.Status.RUNNING) -> None:
    """Count one update TikTok accepted, or one that failed with ``error``, on the shop's write-back."""
    if error:
        counts = {"error_count": F("error_count") + 1, "last_error": error[:2000]}
    else:
        counts = {"processed_count": F("processed_count") + 1}
    _operation_update(shop, status=status, last_event_at=timezone.now(), **counts)


def _record_passed_over(shop: ShopConnection, passed_over: dict[str, str]) -> None:
    """List on the shop's write-back the products it does not write back, and why."""
    listed = "; ".join(f"{product} ({why})" for product, why in sorted(passed_over.items()))
    _operation_update(shop, detail=f"Not written back: {listed}." if listed else "")


# --- the writer thread -------------------------------------------------------------------------


def _backoff_seconds(failures: int) -> float:
    return min(BACKOFF_SECONDS * 2 ** (failures - 1), BACKOFF_MAX_SECONDS)


class StockWriter(threading.Thread):
    """Send products' available units to TikTok, per product at most once an interval; see the module."""

    def __init__(self, *, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__(name="creatorflow-stock-writer", daemon=True)
        self.interval = interval
        self._wake = threading.Condition()
        self._stopped = False
        self._fresh = False  # a change arrived since the last look
        self._pending: set[int] = set()  # products to look at
        self._wake_at = float("inf")
        self._next_at: dict[int, float] = {}  # product → when a non-zero value may be sent again
        self._told: dict[tuple[int, int], int] = {}  # (shop, product) → the value TikTok accepted last
        self._backoff: dict[int, tuple[int, float]] = {}  # shop → (failures in a row, retry time)
        self._database_failures = 0  # rounds in a row the database failed
        self._passed_over: dict[int, dict[str, str]] = defaultdict(dict)  # shop → product → why
        self.calls = 0  # update calls made (diagnostics, tests)
        self.idle = threading.Event()  # set while nothing is owed and no round runs (diagnostics, tests)
        self.idle.set()

    def notify(self, product_ids: Iterable[int]) -> None:
        """Look at these products' stock soon (returns at once)."""
        with self._wake:
            self._pending.update(product_ids)
            self._fresh = True
            self.idle.clear()
            self._wake.notify()

    def figures(self) -> dict[str, int]:
        """Calls made, products owed, shops backing off after a failure."""
        with self._wake:
            return {"calls": self.calls, "owed": len(self._pending), "shops_failing": len(self._backoff)}

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def run(self) -> None:
        while self._wait():
            try:
                connection.close_if_unusable_or_obsolete()
                self.write_due()
            except Exception:  # noqa: BLE001 - the writer must outlive any one round (a database outage)
                logger.exception("stock write-back round failed; trying again")
            finally:
                with self._wake:
                    idle = not self._pending and not self._fresh
                if idle:
                    connection.close()  # back to the pool while idle
                    with self._wake:
                        if not self._pending and not self._fresh:
                            self.idle.set()
        connection.close()

    def _wait(self) -> bool:
        with self._wake:
            while not self._stopped:
                if self._fresh:
                    self._fresh = False
                    return True
                timeout = self._wake_at - time.monotonic() if self._pending and self._wake_at < float("inf") else None
                if timeout is not None and timeout <= 0:
                    return True
                self._wake.wait(timeout)
            return False

    def write_due(self) -> None:
        """Look at the products owed and send those due: one turn of the thread's loop."""
        with self._wake:
            product_ids, self._pending, self._wake_at = self._pending, set(), float("inf")
        if not product_ids:
            return
        try:
            due, waiting = self._decide(product_ids)
        except Exception:
            self._database_failures += 1
            with self._wake:  # the database failed: look again soon, nothing is forgotten
                self._pending |= product_ids
                self._wake_at = time.monotonic() + _backoff_seconds(self._database_failures)
            raise
        self._database_failures = 0
        with self._wake:
            self._pending |= set(waiting)
            self._wake_at = min(waiting.values(), default=float("inf"))
        for targets in due.values():
            retry_at = self._send(targets)
            if retry_at is not None:
                with self._wake:
                    self._wake_at = min(self._wake_at, retry_at)

    def _decide(self, product_ids: set[int]) -> tuple[dict[int, list[_Target]], dict[int, float]]:
        """Split the products into those to send now (per shop) and those to send later (when)."""
        now = time.monotonic()
        due: dict[int, list[_Target]] = defaultdict(list)
        waiting: dict[int, float] = {}
        for target in _targets(product_ids):
            shop = target.shop
            if shop is None or self._passed_over_now(target):
                continue
            if self._told.get((shop.pk, target.product_id)) == target.available:
                continue  # TikTok has this value already
            retry_at = self._backoff.get(shop.pk, (0, 0.0))[1]
            allowed_at = now if target.available == 0 else self._next_at.get(target.product_id, 0.0)
            send_at = max(retry_at, allowed_at)
            if send_at > now:
                waiting[target.product_id] = send_at
            else:
                due[shop.pk].append(target)
        return due, waiting

    def _passed_over_now(self, target: _Target) -> bool:
        """Tell whether the product cannot be written back (not one TikTok SKU); list it on the operation."""
        shop = target.shop
        reason = "" if len(target.sku_ids) == 1 else ("several TikTok SKUs" if target.sku_ids else "no TikTok SKU known")
        passed_over = self._passed_over[shop.pk]
        if passed_over.get(target.external_id, "") != reason:
            if reason:
                passed_over[target.external_id] = reason
                logger.warning(
                    "stock write-back passes over product %s of shop %s: %s", target.external_id, shop.shop_id, reason
                )
            else:
                passed_over.pop(target.external_id, None)
            _record_passed_over(shop, passed_over)
        return bool(reason)

    def _send(self, targets: list[_Target]) -> float | None:
        """Send one shop's due products; return when to try again after a failure, None when all went."""
        shop = targets[0].shop
        client = TikTokClient.for_shop(shop, retries=0, timeout=TIMEOUT_SECONDS)
        for index, target in enumerate(targets):
            self._next_at[target.product_id] = time.monotonic() + self.interval
            self.calls += 1
            try:
                client.inventory_update(product_id=target.external_id, sku_id=target.sku_ids[0], quantity=target.available)
            except TikTokUnavailable as error:
                failures = self._backoff.get(shop.pk, (0, 0.0))[0] + 1
                retry_at = time.monotonic() + _backoff_seconds(failures)
                self._backoff[shop.pk] = (failures, retry_at)
                with self._wake:
                    self._pending.update(target.product_id for target in targets[index:])  # still owed
                _record_attempt(shop, error=f"Product {target.external_id}: {error}", status=SyncOperation.Status.RETRYING)
                return retry_at
            except TikTokError as error:
                # Refused (credentials, an unknown product): asking again will not help until something changes.
                status = SyncOperation.Status.FAILED if isinstance(error, TikTokAuthError) else SyncOperation.Status.RUNNING
                _record_attempt(shop, error=f"Product {target.external_id}: {error}", status=status)
                continue
            self._backoff.pop(shop.pk, None)
            self._told[(shop.pk, target.product_id)] = target.available
            _record_attempt(shop)
            logger.info("stock write-back shop=%s product=%s available=%d", shop.shop_id, target.external_id, target.available)
        return None


_writer: StockWriter | None = None
_writer_lock = threading.Lock()


def writer() -> StockWriter:
    """Return this process's stock writer, starting it on first use."""
    global _writer  # noqa: PLW0603 - one writer per process
    with _writer_lock:
        if _writer is None or not _writer.is_alive():
            _writer = StockWriter()
            _writer.start()
        return _writer


def writer_figures() -> dict[str, int]:
    """This process's write-back figures for the monitor: calls made, products owed, shops backing off."""
    current = _writer
    return current.figures() if current is not None else {"calls": 0, "owed": 0, "shops_failing": 0}


def writer_idle() -> bool:
    """Tell whether this process's stock writer owes TikTok nothing (True when none runs)."""
    current = _writer
    return current is None or current.idle.is_set()


def writer_stop(timeout: float = 10.0) -> None:
    """Stop this process's stock writer (the next change starts a fresh one)."""
    global _writer  # noqa: PLW0603
    with _writer_lock:
        current, _writer = _writer, None
    if current is not None:
        current.stop()
        current.join(timeout)
