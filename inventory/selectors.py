"""Reads behind the dashboard's inventory table, alerts list and the JSON API.

Nothing here writes. Every function takes the creator's id and only ever returns that
creator's rows; a lookup by id of another creator's row raises ``DoesNotExist``. The ``_many``
functions read for several creators at once (a publishing cycle) and answer each with its own rows.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Case, IntegerField, Q, Sum, Value, When

from creatorflow.prepared import prepared

from .levels import Level, stock_level, stockout_eta_hours
from .models import InventoryAlert, Product, Stock, Warehouse

INVENTORY_ROWS_LIMIT = 200
ALERTS_OPEN_LIMIT = 50


class StockLevel:
    """The badge of an inventory row, from the stock level the alert engine uses too."""

    IN_STOCK = "in_stock"
    LOW = "low"
    OUT = "out"

    OF_LEVEL = {Level.OUT: OUT, Level.CRITICAL: LOW, Level.LOW: LOW, Level.IN_STOCK: IN_STOCK}
    LABELS = {IN_STOCK: "In stock", LOW: "Low", OUT: "Out"}
    URGENCY = {OUT: 0, LOW: 1, IN_STOCK: 2}


def stock_badge(*, available: int, reorder_point: int) -> str:
    """Name the badge of a product with ``available`` units in all: out, low or in stock."""
    return StockLevel.OF_LEVEL[stock_level(available=available, reorder_point=reorder_point)]


@dataclass(frozen=True)
class InventoryRow:
    """One product in the inventory table.

    ``on_hand``, ``reserved`` and ``available`` count the selected warehouse (every warehouse
    when none is selected); ``level`` and ``stockout_eta_hours`` follow the product's total
    available across warehouses, as the alerts do.
    """

    product_pk: int
    product_id: str
    sku: str
    name: str
    on_hand: int
    reserved: int
    available: int
    total_available: int
    reorder_point: int
    velocity_per_hour: Decimal
    stockout_eta_hours: int | None
    level: str

    @property
    def level_label(self) -> str:
        return StockLevel.LABELS[self.level]


def inventory_row_order(row: InventoryRow) -> tuple:
    """Sort key of the inventory table: out of stock first, then the soonest stockout, then by name."""
    return (
        StockLevel.URGENCY[row.level],
        row.stockout_eta_hours if row.stockout_eta_hours is not None else float("inf"),
        row.name.lower(),
        row.product_pk,
    )


def products_exist(*, creator_id: int) -> bool:
    return Product.objects.filter(creator_id=creator_id).exists()


def warehouses_list(*, creator_id: int) -> list[Warehouse]:
    """Return the creator's warehouses, default first."""
    return list(Warehouse.objects.filter(creator_id=creator_id).order_by("-is_default", "name", "pk"))


def warehouse_get(*, creator_id: int, warehouse_id: int) -> Warehouse:
    """Return one of the creator's warehouses; raise Warehouse.DoesNotExist for anyone else's."""
    return Warehouse.objects.get(creator_id=creator_id, pk=warehouse_id)


@prepared
def _stock_sums_read(*, creator_ids: list[int], warehouse_id: int | None, product_ids: list[int] | None):
    stocks = Stock.objects.filter(product__creator_id__in=creator_ids)
    if product_ids is not None:
        stocks = stocks.filter(product_id__in=product_ids)
    if warehouse_id is not None:
        stocks = stocks.filter(warehouse_id=warehouse_id)
    return stocks.values("product_id").annotate(on_hand_sum=Sum("on_hand"), reserved_sum=Sum("reserved"), available_sum=Sum("available"))


def _stock_sums(
    creator_ids: list[int], warehouse_id: int | None, product_ids: list[int] | None = None
) -> dict[int, dict[str, int]]:
    return {
        row["product_id"]: row
        for row in _stock_sums_read.values(creator_ids=creator_ids, warehouse_id=warehouse_id, product_ids=product_ids)
    }


@prepared
def _products_listed(*, creator_ids: list[int], product_ids: list[int] | None):
    products = Product.objects.filter(creator_id__in=creator_ids)
    if product_ids is not None:
        products = products.filter(pk__in=product_ids)
    return products.only("pk", "creator_id", "external_id", "sku", "name", "reorder_point", "velocity_per_hour")


def _inventory_rows(
    creator_ids: list[int], warehouse_id: int | None, product_ids: list[int] | None
) -> dict[int, list[InventoryRow]]:
    """Each creator's inventory rows, most urgent first: two statements (three with a warehouse) for all."""
    totals = _stock_sums(creator_ids, None, product_ids)
    scoped = totals if warehouse_id is None else _stock_sums(creator_ids, warehouse_id, product_ids)
    rows: dict[int, list[InventoryRow]] = {creator_id: [] for creator_id in creator_ids}
    for product in _products_listed.objects(creator_ids=creator_ids, product_ids=product_ids):
        if warehouse_id is not None and product.pk not in scoped:
            continue
        figures = scoped.get(product.pk, {})
        total_available = (totals.get(product.pk) or {}).get("available_sum") or 0
        rows[product.creator_id].append(
            InventoryRow(
                product_pk=product.pk,
                product_id=product.external_id,
                sku=product.sku,
                name=product.name,
                on_hand=figures.get("on_hand_sum") or 0,
                reserved=figures.get("reserved_sum") or 0,
                available=figures.get("available_sum") or 0,
                total_available=total_available,
                reorder_point=product.reorder_point,
                velocity_per_hour=product.velocity_per_hour,
                stockout_eta_hours=stockout_eta_hours(
                    available=total_available, velocity_per_hour=product.velocity_per_hour
                ),
                level=stock_badge(available=total_available, reorder_point=product.reorder_point),
            )
        )
    for creator_rows in rows.values():
        creator_rows.sort(key=inventory_row_order)
    return rows


def inventory_rows(
    *,
    creator_id: int,
    warehouse_id: int | None = None,
    limit: int | None = INVENTORY_ROWS_LIMIT,
    product_ids: Sequence[int] | None = None,
) -> tuple[list[InventoryRow], int]:
    """Return the creator's products with their stock, most urgent first, and how many there are.

    With ``warehouse_id`` only products stocked in that warehouse are listed; with
    ``product_ids`` only those products (the rows a push re-renders).
    """
    product_ids = None if product_ids is None else list(product_ids)
    rows = _inventory_rows([creator_id], warehouse_id, product_ids)[creator_id]
    return (rows if limit is None else rows[:limit]), len(rows)


def inventory_rows_many(*, product_ids: Mapping[int, Iterable[int]]) -> dict[int, list[InventoryRow]]:
    """The inventory rows of several creators' given products (creator → product ids), most urgent first."""
    wanted = {creator_id: set(ids) for creator_id, ids in product_ids.items()}
    rows = _inventory_rows(list(wanted), None, list(set().union(*wanted.values())) if wanted else [])
    return {
        creator_id: [row for row in creator_rows if row.product_pk in wanted[creator_id]]
        for creator_id, creator_rows in rows.items()
    }


# --- alerts ------------------------------------------------------------------------------------

_SEVERITY_ORDER = Case(
    When(severity=InventoryAlert.Severity.EMERGENCY, then=Value(0)),
    When(severity=InventoryAlert.Severity.CRITICAL, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)
_STATUS_ORDER = Case(When(status=InventoryAlert.Status.ACTIVE, then=Value(0)), default=Value(1), output_field=IntegerField())
# The open alerts' order, on the annotations of ``alerts_open``; the dashboard keeps pushed rows in it too.
ALERTS_OPEN_ORDER = ("severity_order", "status_order", "-updated_at", "-pk")
URGENT_SEVERITIES = (InventoryAlert.Severity.CRITICAL, InventoryAlert.Severity.EMERGENCY)


def products_available(*, creator_id: int, product_ids: Iterable[int]) -> dict[int, int]:
    """Return the total available units (every warehouse) of the creator's given products."""
    return products_available_many(product_ids={creator_id: product_ids})


@prepared
def _available_read(*, creator_ids: list[int], product_ids: list[int]):
    return (
        Stock.objects.filter(product__creator_id__in=creator_ids, product_id__in=product_ids)
        .values("product__creator_id", "product_id")
        .annotate(total=Sum("available"))
    )


def products_available_many(*, product_ids: Mapping[int, Iterable[int]]) -> dict[int, int]:
    """``products_available`` of several creators' products (creator → product ids): product → units."""
    wanted = {(creator_id, product_id) for creator_id, ids in product_ids.items() for product_id in ids}
    return {
        row["product_id"]: row["total"]
        for row in _available_read.values(creator_ids=list(product_ids), product_ids=[product_id for _, product_id in wanted])
        if (row["product__creator_id"], row["product_id"]) in wanted
    }


def alerts_open(
    *, creator_id: int, limit: int = ALERTS_OPEN_LIMIT, product_ids: Sequence[int] | None = None
) -> list[InventoryAlert]:
    """Return active and acknowledged alerts in priority order: emergency first, unacknowledged before seen, newest first.

    With ``product_ids``, only the alerts of those products.
    """
    if product_ids is None and limit == ALERTS_OPEN_LIMIT:  # the dashboard's list, on every publish that changes it
        return _alerts_listed_read.objects(creator_id=creator_id)
    return list(_alerts_open(creator_id, product_ids)[:limit])


def _alerts_open(creator_id: int, product_ids: Sequence[int] | None = None):
    alerts = InventoryAlert.objects.filter(creator_id=creator_id, status__in=InventoryAlert.OPEN_STATUSES)
    if product_ids is not None:
        alerts = alerts.filter(product_id__in=list(product_ids))
    return alerts.select_related("product").annotate(severity_order=_SEVERITY_ORDER, status_order=_STATUS_ORDER).order_by(
        *ALERTS_OPEN_ORDER
    )


@prepared
def _alerts_listed_read(*, creator_id: int):
    return _alerts_open(creator_id)[:ALERTS_OPEN_LIMIT]


@prepared
def _alerts_open_read(*, creator_ids: list[int], product_ids: list[int]):
    return (
        InventoryAlert.objects.filter(creator_id__in=creator_ids, status__in=InventoryAlert.OPEN_STATUSES, product_id__in=product_ids)
        .select_related("product")
        .annotate(severity_order=_SEVERITY_ORDER, status_order=_STATUS_ORDER)
        .order_by(*ALERTS_OPEN_ORDER)
    )


def alerts_open_many(*, product_ids: Mapping[int, Iterable[int]], limit: int = ALERTS_OPEN_LIMIT) -> dict[int, list[InventoryAlert]]:
    """``alerts_open`` of several creators' given products (creator → product ids), in one statement."""
    wanted = {creator_id: set(ids) for creator_id, ids in product_ids.items()}
    found: dict[int, list[InventoryAlert]] = {creator_id: [] for creator_id in wanted}
    every_id = sorted(set().union(*wanted.values())) if wanted else []
    for alert in _alerts_open_read.objects(creator_ids=list(wanted), product_ids=every_id):
        if alert.product_id in wanted[alert.creator_id] and len(found[alert.creator_id]) < limit:
            found[alert.creator_id].append(alert)
    return found


def alerts_open_count(*, creator_id: int) -> int:
    return InventoryAlert.objects.filter(creator_id=creator_id, status__in=InventoryAlert.OPEN_STATUSES).count()


def alerts_urgent_count(*, creator_id: int) -> int:
    """Count active (unacknowledged) alerts of critical or emergency severity: the banner's number."""
    return InventoryAlert.objects.filter(
        creator_id=creator_id, status=InventoryAlert.Status.ACTIVE, severity__in=URGENT_SEVERITIES
    ).count()


def alerts_list(
    *, creator_id: int, statuses: Sequence[str] | None = None, limit: int = 100
) -> list[InventoryAlert]:
    """Return the creator's alerts with the given statuses (all when None), newest first."""
    alerts = InventoryAlert.objects.filter(creator_id=creator_id).select_related("product")
    if statuses is not None:
        alerts = alerts.filter(status__in=statuses)
    return list(alerts.order_by("-updated_at", "-pk")[:limit])


def alert_get(*, creator_id: int, alert_id: int) -> InventoryAlert:
    """Return one of the creator's alerts; raise InventoryAlert.DoesNotExist for anyone else's."""
    return InventoryAlert.objects.select_related("product").get(Q(creator_id=creator_id), pk=alert_id)
