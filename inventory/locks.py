"""Every row lock the inventory takes, always in primary-key order.

Two transactions that lock the same stock rows in the same order cannot deadlock; keeping all
``select_for_update`` calls here keeps that rule in one place.
"""

from collections.abc import Iterable

from django.db import connection

from creatorflow.prepared import prepared

from .models import Stock


def _for_update(queryset):
    # Lock only the stock rows, not the products joined for display.
    if connection.features.has_select_for_update_of:
        return queryset.select_for_update(of=("self",))
    return queryset.select_for_update()


@prepared
def _stocks_of_products(*, product_ids: list[int]):
    return _for_update(Stock.objects.filter(product_id__in=product_ids).select_related("product").order_by("pk"))


def stocks_lock_for_products(product_ids: Iterable[int]) -> list[Stock]:
    """Lock and return every stock row of the given products, ordered by primary key (a batch's hot rows)."""
    return _stocks_of_products.objects(product_ids=sorted(set(product_ids)))


def stock_lock(*, product_id: int, warehouse_id: int) -> Stock | None:
    """Lock and return one stock row, or None when it does not exist yet."""
    queryset = Stock.objects.filter(product_id=product_id, warehouse_id=warehouse_id).select_related("product")
    return _for_update(queryset).first()


def stocks_lock(stock_ids: Iterable[int]) -> dict[int, Stock]:
    """Lock the given stock rows in primary-key order and return them by id."""
    queryset = Stock.objects.filter(pk__in=set(stock_ids)).select_related("product").order_by("pk")
    return {stock.pk: stock for stock in _for_update(queryset)}
