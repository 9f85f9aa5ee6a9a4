"""Reads behind the dashboard's recent orders and sync operations panels and the JSON API.

Nothing here writes. Every function takes the creator's id and returns only that creator's rows;
the ``_many`` ones read for several creators at once (a publishing cycle), each answered with its own.
"""

from collections.abc import Iterable, Mapping

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Case, F, IntegerField, Prefetch, Value, When, Window, prefetch_related_objects
from django.db.models.functions import RowNumber

from creatorflow.prepared import prepared
from creatorflow.reads import shared_read
from inventory.models import Reservation

from .events import OrderError
from .models import Order, OrderItem, ShopConnection, SyncOperation, WebhookEvent

RECENT_ORDERS_LIMIT = 15
SYNC_OPERATIONS_LIMIT = 6
CURRENCY_LOOKBACK = 50  # latest orders searched for the seller's currency


FLAG_ANY = "any"  # a flag filter meaning "flagged at all"
ORDERS_PAGE_SIZE = 50


def _orders(creator_id: int | None, *, status: str | None, flag: str | None, search: str = ""):
    orders = Order.objects.all() if creator_id is None else Order.objects.filter(creator_id=creator_id)
    if status is not None:
        orders = orders.filter(status=status)
    if flag == FLAG_ANY:
        orders = orders.exclude(flags=[])
    elif flag is not None:
        # Flags are a JSON list of words none of which holds another: its text names the flag quoted.
        orders = orders.filter(flags__icontains=f'"{flag}"')
    if search:
        orders = orders.filter(external_id__icontains=search)
    return orders.select_related("shop").order_by("-placed_at", "-pk").prefetch_related(_items())


def _items() -> Prefetch:
    """An order's lines with their products, in the order they were written."""
    return Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("pk"))


def flag_filter_parse(value: str | None) -> str | None:
    """Return the flag a filter value names (``any`` for every flagged order), None for "all"; raise OrderError."""
    word = (value or "").strip().lower()
    if word == "":
        return None
    if word == FLAG_ANY or word in Order.Flag.values:
        return word
    raise OrderError(f"Unknown flag {value!r}; expected {FLAG_ANY} or one of {', '.join(Order.Flag.values)}.")


def orders_recent(
    *, creator_id: int, status: str | None = None, flag: str | None = None, limit: int = RECENT_ORDERS_LIMIT
) -> list[Order]:
    """Return the creator's latest orders (by placement), optionally of one status or flag, with their items."""
    return list(_orders(creator_id, status=status, flag=flag)[:limit])


def orders_with_ids(*, creator_id: int, order_ids: Iterable[int]) -> list[Order]:
    """Return the creator's orders among ``order_ids``, with their items (the rows a push re-renders)."""
    return orders_with_ids_many(order_ids={creator_id: order_ids})[creator_id]


@prepared
def _orders_with_ids_read(*, creator_ids: list[int], order_ids: list[int]):
    return _orders(None, status=None, flag=None).prefetch_related(None).filter(creator_id__in=creator_ids, pk__in=order_ids)


def orders_with_ids_many(*, order_ids: Mapping[int, Iterable[int]], limit: int | None = None) -> dict[int, list[Order]]:
    """``orders_with_ids`` for several creators (creator → order ids), in one query and its prefetch.

    With ``limit``, only each creator's newest ``limit`` of them (by placement), with their items:
    no other can be among the first ``limit`` of the creator's list, so a push of a burst of
    orders renders at most a list's length of rows.
    """
    wanted = {creator_id: set(ids) for creator_id, ids in order_ids.items()}
    found: dict[int, list[Order]] = {creator_id: [] for creator_id in wanted}
    every_id = set().union(*wanted.values()) if wanted else set()
    for order in _orders_with_ids_read.objects(creator_ids=list(wanted), order_ids=sorted(every_id)):
        kept = found[order.creator_id]
        if order.pk in wanted[order.creator_id] and (limit is None or len(kept) < limit):
            kept.append(order)
    prefetch_related_objects([order for kept in found.values() for order in kept], _items())
    return found


def orders_page(
    *, creator_id: int, status: str | None = None, flag: str | None = None, search: str = "", page: object = 1,
    per_page: int = ORDERS_PAGE_SIZE,
) -> Page:
    """Return one page of the creator's orders (newest first) matching the filters.

    ``page.paginator.count`` is how many match; a page number past the end, or not a number,
    gives the last or the first page (Django's ``Paginator.get_page``).
    """
    orders = _orders(creator_id, status=status, flag=flag, search=search.strip())
    return Paginator(orders, per_page).get_page(page)


def order_get(*, creator_id: int, order_pk: int) -> Order:
    """Return one of the creator's orders with its items; raise Order.DoesNotExist for anyone else's."""
    return Order.objects.select_related("shop").prefetch_related(_items()).get(creator_id=creator_id, pk=order_pk)


def order_reservations(*, order: Order) -> list[Reservation]:
    """Return the stock reservations held or once held for the order's lines."""
    return list(
        Reservation.objects.filter(order_item__order=order).select_related("stock__warehouse", "stock__product", "order_item")
        .order_by("pk")
    )


def order_webhook_events(*, order: Order, limit: int = 50) -> list[WebhookEvent]:
    """Return the inbox events of the order's shop whose body names the order, in arrival order."""
    if order.shop_id is None:
        return []
    return list(
        WebhookEvent.objects.filter(shop_id=order.shop_id, body__contains=f'"{order.external_id}"').order_by("pk")[:limit]
    )


_SYNC_OPERATIONS_ORDER = (
    Case(When(status__in=SyncOperation.ACTIVE_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()).asc(),
    F("updated_at").desc(),
    F("pk").desc(),
)


def sync_operations_recent(*, creator_id: int) -> list[SyncOperation]:
    """Return the creator's latest sync operations (``SYNC_OPERATIONS_LIMIT``): running ones first, then the latest."""
    return shared_read(("sync_operations_recent", creator_id), lambda: _sync_operations_recent(creator_id))


@prepared
def _sync_operations_read(*, creator_id: int):
    return SyncOperation.objects.filter(creator_id=creator_id).select_related("shop").order_by(*_SYNC_OPERATIONS_ORDER)[:SYNC_OPERATIONS_LIMIT]


def _sync_operations_recent(creator_id: int) -> list[SyncOperation]:
    return _sync_operations_read.objects(creator_id=creator_id)


def sync_operations_recent_many(*, creator_ids: Iterable[int], limit: int = SYNC_OPERATIONS_LIMIT) -> dict[int, list[SyncOperation]]:
    """``sync_operations_recent`` of several creators, in one statement."""
    found: dict[int, list[SyncOperation]] = {creator_id: [] for creator_id in creator_ids}
    if len(found) == 1:  # one creator: a plain LIMIT, cheaper to build than the ranking
        (creator_id,) = found
        return {creator_id: _sync_operations_recent(creator_id)}
    for operation in _sync_operations_read_many.objects(creator_ids=list(found), limit=limit):
        found[operation.creator_id].append(operation)
    return found


@prepared
def _sync_operations_read_many(*, creator_ids: list[int], limit: int):
    return (
        SyncOperation.objects.filter(creator_id__in=creator_ids)
        .select_related("shop")
        .annotate(rank=Window(RowNumber(), partition_by=F("creator_id"), order_by=_SYNC_OPERATIONS_ORDER))
        .filter(rank__lte=limit)
        .order_by("creator_id", "rank")
    )


def orders_currency(*, creator_id: int) -> str:
    """Name the seller's currency: the latest of their recent orders that carries one, else their
    first shop's that has one set, else the default."""
    return shared_read(("orders_currency", creator_id), lambda: _orders_currency(creator_id))


@prepared
def _currencies_recent(*, creator_id: int):
    return Order.objects.filter(creator_id=creator_id).order_by("-placed_at", "-pk").values("currency")[:CURRENCY_LOOKBACK]


@prepared
def _shop_currency(*, creator_id: int):
    return ShopConnection.objects.filter(creator_id=creator_id).exclude(currency="").order_by("pk").values("currency")[:1]


def _orders_currency(creator_id: int) -> str:
    for row in _currencies_recent.values(creator_id=creator_id):
        if row["currency"]:
            return row["currency"]
    shops = _shop_currency.values(creator_id=creator_id)
    return (shops[0]["currency"] if shops else "") or settings.CREATORFLOW["CURRENCY"]


@prepared
def _currencies_recent_many(*, creator_ids: list[int]):
    return (
        Order.objects.filter(creator_id__in=creator_ids)
        .annotate(rank=Window(RowNumber(), partition_by=F("creator_id"), order_by=(F("placed_at").desc(), F("pk").desc())))
        .filter(rank__lte=CURRENCY_LOOKBACK)
        .order_by("creator_id", "rank")
        .values("creator_id", "currency")
    )


@prepared
def _shop_currencies(*, creator_ids: list[int]):
    return ShopConnection.objects.filter(creator_id__in=creator_ids).exclude(currency="").order_by("-pk").values("creator_id", "currency")


def orders_currency_many(*, creator_ids: Iterable[int]) -> dict[int, str]:
    """``orders_currency`` of several creators: two statements for all of them."""
    found: dict[int, str] = {}
    creator_ids = list(creator_ids)
    if len(creator_ids) == 1:  # one creator: a plain LIMIT, cheaper to build than the ranking
        return {creator_ids[0]: _orders_currency(creator_ids[0])}
    for row in _currencies_recent_many.values(creator_ids=creator_ids):
        if row["currency"] and row["creator_id"] not in found:
            found[row["creator_id"]] = row["currency"]
    missing = [creator_id for creator_id in creator_ids if creator_id not in found]
    if missing:
        for row in _shop_currencies.values(creator_ids=missing):
            found[row["creator_id"]] = row["currency"]  # in descending pk order: each creator's first shop is written last
    return {creator_id: found.get(creator_id) or settings.CREATORFLOW["CURRENCY"] for creator_id in creator_ids}


def shop_ids(*, creator_id: int) -> list[str]:
    """Return the TikTok shop ids the creator has connected."""
    return list(ShopConnection.objects.filter(creator_id=creator_id).order_by("pk").values_list("shop_id", flat=True))
