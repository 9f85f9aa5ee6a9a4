"""Prepared reads and updates, for every shape, on both databases.

A prepared read answers exactly what its queryset answers; a prepared update changes what its
queryset's update changes.
"""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, F, Q, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creatorflow.changes import ALERTS, INVENTORY, LIVE, ORDERS, SYNC, SYSTEM, Change
from creatorflow.prepared import _UNCACHEABLE, Prepared, prepared
from inventory import selectors as inventory_selectors
from inventory.models import Product, Stock
from orders import selectors as order_selectors
from orders.events import OrderEvent, OrderLine
from orders.models import OrderStatsBucket
from orders.services import order_apply_event
from realtime import publisher, selectors
from realtime.broadcast import creator_group
from realtime.live import selectors as live_selectors

pytestmark = pytest.mark.django_db


@pytest.fixture
def shelves(make_creator, make_product):
    """Five sellers with 1 to 5 products, each product with a different stock and cost."""
    found = {}
    for number in range(1, 6):
        seller = make_creator(f"seller{number}")
        found[seller.pk] = [
            make_product(seller, stock=10 * number + index, unit_cost=f"{number}.{index}5") for index in range(number)
        ]
    return found


@prepared
def _stock_by_product(*, creator_ids: list[int], least: int):
    return (
        Stock.objects.filter(product__creator_id__in=creator_ids, available__gte=least)
        .values("product_id", "product__creator_id")
        .annotate(units=Sum("available"), lines=Count("pk"))
        .order_by("product_id")
    )


@prepared
def _products(*, creator_ids: list[int]):
    return Product.objects.filter(creator_id__in=creator_ids).order_by("pk")


def test_values_answer_what_the_queryset_answers_for_every_length_of_list(shelves):
    creator_ids = list(shelves)
    for length in range(1, len(creator_ids) + 1):
        for start in range(len(creator_ids) - length + 1):
            chosen = creator_ids[start : start + length]
            assert _stock_by_product.values(creator_ids=chosen, least=0) == list(_stock_by_product.build(creator_ids=chosen, least=0))
    # Lengths 1 to 5 round up to 1, 2, 4 and 8: four shapes compiled, every other call only bound new values.
    assert len(_stock_by_product._compiled) == 4
    assert _UNCACHEABLE not in _stock_by_product._compiled.values()


def test_a_compiled_shape_never_answers_with_the_values_of_an_earlier_call(shelves):
    first, second = list(shelves)[:2]
    assert {row["product__creator_id"] for row in _stock_by_product.values(creator_ids=[first], least=0)} == {first}
    assert {row["product__creator_id"] for row in _stock_by_product.values(creator_ids=[second], least=0)} == {second}
    # A constant of the query's form (here the least units) is part of the shape, not a bound value.
    assert len(_stock_by_product.values(creator_ids=list(shelves), least=1000)) == 0
    assert len(_stock_by_product.values(creator_ids=list(shelves), least=0)) == 15


def test_values_are_converted_as_the_orm_converts_them(make_creator):
    """Decimals and instants come back as Python values on SQLite as on PostgreSQL."""
    seller = make_creator()
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    OrderStatsBucket.objects.create(creator=seller, start=now, placed_count=3, paid_amount=Decimal("31.50"))
    OrderStatsBucket.objects.create(creator=seller, start=now - timedelta(hours=2), placed_count=1, paid_amount=Decimal("9.99"))
    read = Prepared(
        lambda *, creator_ids, since: OrderStatsBucket.objects.filter(creator_id__in=creator_ids, start__gte=since)
        .values("start")
        .annotate(gmv=Sum("paid_amount"), placed=Sum("placed_count"), today=Sum("placed_count", filter=Q(start__gte=since)))
        .order_by("start")
    )
    for since, expected in ((now - timedelta(hours=3), 2), (now - timedelta(minutes=30), 1)):
        rows = read.values(creator_ids=[seller.pk], since=since)
        assert rows == list(read.build(creator_ids=[seller.pk], since=since))
        assert len(rows) == expected
    assert rows[0]["start"] == now and rows[0]["gmv"] == Decimal("31.50") and isinstance(rows[0]["gmv"], Decimal)


def test_objects_are_the_querysets_instances(shelves):
    creator_ids = list(shelves)[1:4]
    expected = list(_products.build(creator_ids=creator_ids))
    found = _products.objects(creator_ids=creator_ids)
    assert [(p.pk, p.creator_id, p.name, p.unit_cost, p.created_at) for p in found] == [
        (p.pk, p.creator_id, p.name, p.unit_cost, p.created_at) for p in expected
    ]
    assert len(found) == 2 + 3 + 4


def test_each_call_is_one_statement_and_an_empty_list_reads_nothing(shelves):
    creator_ids = list(shelves)
    _stock_by_product.values(creator_ids=creator_ids, least=0)  # compiled
    with CaptureQueriesContext(connection) as queries:
        _stock_by_product.values(creator_ids=creator_ids, least=0)
        assert _stock_by_product.values(creator_ids=[], least=0) == []
        assert _products.objects(creator_ids=[]) == []
    assert len(queries) == 1


def test_a_builder_that_computes_with_an_argument_still_answers_through_the_orm(shelves):
    """An argument moved by arithmetic is not found among the compiled parameters: that shape is never cached."""
    read = Prepared(lambda *, creator_ids, least: Stock.objects.filter(product__creator_id__in=creator_ids, available__gte=least + 1).values("pk"))
    creator_ids = list(shelves)
    for least in (0, 20, 45):
        assert read.values(creator_ids=creator_ids, least=least) == list(read.build(creator_ids=creator_ids, least=least))
    assert len(read.values(creator_ids=creator_ids, least=53)) == 1  # only the last product of seller 5 holds 54 units


def test_objects_come_with_their_related_rows_annotations_and_prefetches(shelves):
    read = Prepared(
        lambda *, creator_ids: Stock.objects.filter(product__creator_id__in=creator_ids)
        .select_related("product", "warehouse")
        .annotate(spare=F("on_hand") - F("reserved"))
        .order_by("pk")
    )
    creator_ids = list(shelves)[2:]
    read.objects(creator_ids=creator_ids)  # compiled
    with CaptureQueriesContext(connection) as queries:
        found = read.objects(creator_ids=creator_ids)
        seen = [(s.pk, s.product.name, s.product.creator_id, s.warehouse.name, s.spare) for s in found]
    assert len(queries) == 1  # the products and warehouses came with the stock rows
    assert seen == [(s.pk, s.product.name, s.product.creator_id, s.warehouse.name, s.spare) for s in read.build(creator_ids=creator_ids)]
    assert len(seen) == 3 + 4 + 5
    by_products = Prepared(lambda *, creator_ids: Product.objects.filter(creator_id__in=creator_ids).prefetch_related("stocks").order_by("pk"))
    with CaptureQueriesContext(connection) as queries:
        products = by_products.objects(creator_ids=creator_ids)
        units = [sum(stock.available for stock in product.stocks.all()) for product in products]
    assert len(queries) == 2 and len(units) == 12
    assert units == [sum(stock.available for stock in product.stocks.all()) for product in by_products.build(creator_ids=creator_ids)]


def test_a_read_asks_for_the_rows_it_returns(shelves):
    with pytest.raises(ValueError, match="values"):
        _products.values(creator_ids=list(shelves))
    with pytest.raises(ValueError, match="model instances"):
        _stock_by_product.objects(creator_ids=list(shelves), least=0)


def test_every_read_of_a_publish_is_compiled_once_and_none_falls_back_to_the_orm(creator, shop, make_product, group_listener):
    """A placeholder Django drops (out of its field's range, say) would quietly send a read back through the ORM."""
    reads = {
        f"{module.__name__}.{name}": read
        for module in (selectors, inventory_selectors, order_selectors, live_selectors)
        for name, read in vars(module).items()
        if isinstance(read, Prepared)
    }
    for read in reads.values():
        read._compiled.clear()  # what earlier tests compiled does not count
    group_listener(creator_group(creator.pk))  # a dashboard open: the publish renders
    product = make_product(creator, stock=3, reorder_point=10)
    now = timezone.now()
    order, _ = order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id="P-1", status="AWAITING_SHIPMENT", updated_at=now, placed_at=now, total_amount=Decimal("5.00"),
            lines=[OrderLine(product.external_id, 1, Decimal("5.00"))],
        ),
    )
    change = Change.of(ORDERS, ids=[order.pk])
    change.add([INVENTORY], ids=[product.pk])
    change.add([SYNC, SYSTEM, ALERTS, LIVE])
    publisher.changes_publish_many({creator.pk: change})
    publisher.changes_publish_many({creator.pk: change, creator.pk + 1000: change})  # several creators: the other shapes
    used = {name: read for name, read in reads.items() if read._compiled}
    assert len(used) >= 15, sorted(set(reads) - set(used))
    assert [name for name, read in used.items() if _UNCACHEABLE in read._compiled.values()] == []


@prepared
def _reorder_points_raise(*, creator_ids: list[int], by: int, now: datetime):
    return Product.objects.filter(creator_id__in=creator_ids), {"reorder_point": F("reorder_point") + by, "updated_at": now}


def test_an_update_changes_what_the_querysets_update_changes_for_every_length_of_list(shelves):
    creator_ids = list(shelves)
    points = {product.pk: product.reorder_point for product in Product.objects.all()}
    now = timezone.now().replace(microsecond=0)
    for length in range(1, len(creator_ids) + 1):
        chosen = creator_ids[:length]
        changed = _reorder_points_raise.update(creator_ids=chosen, by=length, now=now + timedelta(minutes=length))
        assert changed == sum(len(shelves[creator_id]) for creator_id in chosen)
        for creator_id in chosen:
            for product in shelves[creator_id]:
                points[product.pk] += length
    found = {product.pk: (product.reorder_point, product.updated_at) for product in Product.objects.all()}
    assert {pk: point for pk, (point, _) in found.items()} == points
    # Each product carries the instant of the last update that reached it: seller 5's, of length 5.
    assert {updated for pk, (_, updated) in found.items() if pk in {p.pk for p in shelves[creator_ids[-1]]}} == {now + timedelta(minutes=5)}
    # Lengths 1 to 5 round up to 1, 2, 4 and 8: four shapes compiled, none left to the ORM.
    assert len(_reorder_points_raise._compiled) == 4
    assert _UNCACHEABLE not in _reorder_points_raise._compiled.values()


def test_an_update_is_one_statement_and_an_empty_list_changes_nothing(shelves):
    creator_ids = list(shelves)
    now = timezone.now()
    _reorder_points_raise.update(creator_ids=creator_ids, by=1, now=now)  # compiled
    with CaptureQueriesContext(connection) as queries:
        assert _reorder_points_raise.update(creator_ids=creator_ids[:3], by=2, now=now) == 1 + 2 + 3
        assert _reorder_points_raise.update(creator_ids=[], by=2, now=now) == 0
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("UPDATE")


def test_an_update_filtered_through_a_join_runs_through_the_orm(shelves):
    """Django rewrites an update whose filter joins another table; that shape is left to it, and still right."""
    update = Prepared(lambda *, creator_ids, units: (Stock.objects.filter(product__creator_id__in=creator_ids), {"on_hand": F("on_hand") + units}))
    chosen = list(shelves)[3:]
    before = {stock.pk: stock.on_hand for stock in Stock.objects.filter(product__creator_id__in=chosen)}
    assert update.update(creator_ids=chosen, units=7) == len(before) == 4 + 5
    assert {stock.pk: stock.on_hand for stock in Stock.objects.filter(product__creator_id__in=chosen)} == {
        pk: on_hand + 7 for pk, on_hand in before.items()
    }
    assert list(update._compiled.values()) == [_UNCACHEABLE]
