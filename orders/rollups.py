"""Order rollups: what the dashboard's order figures add up, kept in the same transaction as the orders.

An order's contribution to the rollups is its ``OrderFigures``: the quarter hour and the minute it
was placed in, when it shipped, whether it is paid, short or cancelled, its units. When orders
change, the differences between their figures before and after are added up per row and written
with one statement per rollup table, so the dashboard's order metrics are sums over a few hundred
rows whatever the creator's history. ``order_rollups_rebuild`` rebuilds them from the orders
themselves (``metrics_resync``).

The rollups:

- ``OrderStatsBucket`` per quarter hour (UTC): placed, shipped, processing seconds, paid amount;
- ``OrderMinute`` per minute: orders, units, paid amount, short orders and units (not cancelled);
- ``OrderTotals`` per creator: orders, completed revenue, short orders and units;
- ``ProductShortage`` per product: short orders with a line of it, and their units of it.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from creatorflow.db import upsert_increments

from .models import Order, OrderItem, OrderMinute, OrderStatsBucket, OrderStatus, OrderTotals, ProductShortage
from .statuses import STATUS_RANK

BUCKET_MINUTES = 15
PAID_RANK = STATUS_RANK[OrderStatus.ON_HOLD]  # every status from ON_HOLD on is paid


def bucket_start(moment: datetime) -> datetime:
    """Return the start of the UTC quarter hour holding ``moment``."""
    moment = moment.astimezone(UTC)
    return moment.replace(minute=moment.minute - moment.minute % BUCKET_MINUTES, second=0, microsecond=0)


def minute_start(moment: datetime) -> datetime:
    """Return the start of the UTC minute holding ``moment``."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def processing_seconds(placed_at: datetime, shipped_at: datetime) -> int:
    return max(0, int((shipped_at - placed_at).total_seconds()))


@dataclass(frozen=True)
class OrderFigures:
    """What one order adds to its creator's rollups."""

    placed_at: datetime
    shipped_at: datetime | None
    revenue: Decimal  # total of a completed order
    paid_amount: Decimal  # total of a paid, not cancelled order
    live: bool  # not cancelled
    units: int
    short_lines: tuple[tuple[int, int], ...]  # (product id, units) while flagged short and not cancelled

    @classmethod
    def of(cls, order: Order, lines: Iterable[tuple[int, int]]) -> "OrderFigures":
        """Figures of ``order`` whose lines are (product id, quantity) pairs."""
        live = order.status != OrderStatus.CANCELLED
        paid = live and STATUS_RANK.get(order.status, 0) >= PAID_RANK
        units_by_product: dict[int, int] = defaultdict(int)
        for product_id, quantity in lines:
            units_by_product[product_id] += quantity
        short = live and Order.Flag.INSUFFICIENT_STOCK in order.flags
        return cls(
            placed_at=order.placed_at,
            shipped_at=order.shipped_at,
            revenue=Decimal(order.total_amount) if order.status == OrderStatus.COMPLETED else Decimal(0),
            paid_amount=Decimal(order.total_amount) if paid else Decimal(0),
            live=live,
            units=sum(units_by_product.values()),
            short_lines=tuple(sorted(units_by_product.items())) if short else (),
        )

    @property
    def short_units(self) -> int:
        return sum(units for _, units in self.short_lines)

    def rows(self) -> dict[tuple, tuple]:
        """This order's contribution to each rollup row, keyed by (table, key)."""
        rows: dict[tuple, list] = {}

        def add(key: tuple, values: Sequence) -> None:
            row = rows.setdefault(key, [0] * len(values))
            for index, value in enumerate(values):
                row[index] += value

        add(("bucket", bucket_start(self.placed_at)), (1, 0, 0, self.paid_amount))
        if self.shipped_at is not None:
            add(("bucket", bucket_start(self.shipped_at)), (0, 1, processing_seconds(self.placed_at, self.shipped_at), 0))
        if self.live:
            short = 1 if self.short_lines else 0
            add(("minute", minute_start(self.placed_at)), (1, self.units, self.paid_amount, short, self.short_units))
        add(("totals",), (1, self.revenue, 1 if self.short_lines else 0, self.short_units))
        for product_id, units in self.short_lines:
            add(("shortage", product_id), (1, units))
        return {key: tuple(values) for key, values in rows.items()}


_TABLES = {
    # table: (model, key fields, increment fields)
    "bucket": (OrderStatsBucket, ("creator", "start"), ("placed_count", "shipped_count", "processing_seconds", "paid_amount")),
    "minute": (OrderMinute, ("creator", "minute"), ("orders", "units", "paid_amount", "short_orders", "short_units")),
    "totals": (OrderTotals, ("creator",), ("orders_count", "completed_revenue", "short_count", "short_units")),
    "shortage": (ProductShortage, ("product",), ("orders", "units")),
}


@dataclass(frozen=True)
class FiguresChange:
    """One order's figures before a change (None: a new order) and after it."""

    creator_id: int
    before: OrderFigures | None
    after: OrderFigures


def _deltas(changes: Iterable[FiguresChange]) -> dict[str, dict[tuple, list]]:
    deltas: dict[str, dict[tuple, list]] = defaultdict(dict)
    for change in changes:
        if change.before == change.after:
            continue
        for sign, figures in ((-1, change.before), (1, change.after)):
            if figures is None:
                continue
            for (table, *key), values in figures.rows().items():
                # Every row but a product's shortage belongs to the creator.
                full_key = tuple(key) if table == "shortage" else (change.creator_id, *key)
                row = deltas[table].setdefault(full_key, [0] * len(values))
                for index, value in enumerate(values):
                    row[index] += sign * value
    return deltas


def rollups_apply(changes: Iterable[FiguresChange]) -> None:
    """Add the differences of ``changes`` to the rollup rows: one statement per rollup table."""
    for table, rows in _deltas(changes).items():
        model, key_fields, increment_fields = _TABLES[table]
        upsert_increments(
            model,
            key_fields=key_fields,
            increment_fields=increment_fields,
            rows=[(key, values) for key, values in sorted(rows.items()) if any(values)],
        )


def order_lines(order_ids: Iterable[int]) -> dict[int, list[tuple[int, int]]]:
    """Return the (product id, quantity) lines of the given orders, by order id."""
    lines: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for order_id, product_id, quantity in OrderItem.objects.filter(order_id__in=list(order_ids)).values_list(
        "order_id", "product_id", "quantity"
    ):
        lines[order_id].append((product_id, quantity))
    return lines


@dataclass
class RebuiltRollups:
    """A creator's rollup rows as their orders say they should be."""

    buckets: dict[datetime, tuple]
    minutes: dict[datetime, tuple]
    totals: tuple
    shortages: dict[int, tuple]


def order_rollups_from_source(*, creator_id: int) -> RebuiltRollups:
    """Rebuild the rollup rows of a creator from their orders and order lines."""
    orders = list(
        Order.objects.filter(creator_id=creator_id).only(
            "placed_at", "shipped_at", "status", "total_amount", "flags", "creator_id"
        )
    )
    lines = order_lines(order.pk for order in orders)
    sums: dict[tuple, list] = {}
    for order in orders:
        for key, values in OrderFigures.of(order, lines.get(order.pk, ())).rows().items():
            row = sums.setdefault(key, [0] * len(values))
            for index, value in enumerate(values):
                row[index] += value

    def table(name: str) -> dict:
        return {key[1]: tuple(values) for key, values in sums.items() if key[0] == name}

    return RebuiltRollups(
        buckets=table("bucket"),
        minutes=table("minute"),
        totals=tuple(sums.get(("totals",), (0, Decimal(0), 0, 0))),
        shortages=table("shortage"),
    )


def order_rollups_rebuild(*, creator_id: int, product_ids: Iterable[int]) -> None:
    """Replace the creator's rollup rows (and their products' shortages) with ones rebuilt from orders."""
    rebuilt = order_rollups_from_source(creator_id=creator_id)
    OrderStatsBucket.objects.filter(creator_id=creator_id).delete()
    OrderStatsBucket.objects.bulk_create(
        OrderStatsBucket(
            creator_id=creator_id, start=start, placed_count=placed, shipped_count=shipped,
            processing_seconds=seconds, paid_amount=paid,
        )
        for start, (placed, shipped, seconds, paid) in sorted(rebuilt.buckets.items())
    )
    OrderMinute.objects.filter(creator_id=creator_id).delete()
    OrderMinute.objects.bulk_create(
        OrderMinute(
            creator_id=creator_id, minute=minute, orders=orders, units=units, paid_amount=paid,
            short_orders=short_orders, short_units=short_units,
        )
        for minute, (orders, units, paid, short_orders, short_units) in sorted(rebuilt.minutes.items())
    )
    count, revenue, short_count, short_units = rebuilt.totals
    OrderTotals.objects.update_or_create(
        creator_id=creator_id,
        defaults={
            "orders_count": count, "completed_revenue": revenue, "short_count": short_count, "short_units": short_units,
        },
    )
    product_ids = set(product_ids)
    ProductShortage.objects.filter(product_id__in=product_ids).delete()
    ProductShortage.objects.bulk_create(
        ProductShortage(product_id=product_id, orders=orders, units=units)
        for product_id, (orders, units) in sorted(rebuilt.shortages.items())
        if product_id in product_ids
    )
