"""A prepared read answers exactly what its queryset answers, for every shape, on both databases."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count, Q, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from creatorflow.prepared import Prepared, prepared
from inventory.models import Product, Stock
from orders.models import OrderStatsBucket

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


def test_a_compiled_shape_never_answers_with_the_values_of_an_earlier_call(shelves):
    first, second = list(shelves)[:2]
    assert {row["product__creator_id"] for row in _stock_by_product.values(creator_ids=[first], least=0)} == {first}
    assert {row["product__creator_id"] for row in _stock_by_product.values(creator_ids=[second], least=0)} == {second}
    # A constant of the query's form (here the least units) is part of the shape, not a bound value.
    assert len(_stock_by_product.values(creator_ids=list(shelves), least=1000)) == 0
    assert len(_stock_by_product.values(creator_ids=list(shelves), least=0)) == 15


def test_values_are_converted_as_the_orm_converts_them(make_creator, make_product):
    """Decimals and instants come back as Python values on SQLite as on PostgreSQL."""
    seller = make_creator()
    product = make_product(seller)
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
    assert product.pk  # the seller's product is not among the buckets: only what was asked is read


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


def test_objects_refuse_a_queryset_they_cannot_build_instances_of(shelves):
    read = Prepared(lambda *, creator_ids: Stock.objects.filter(product__creator_id__in=creator_ids).select_related("product"))
    with pytest.raises(ValueError, match="select_related"):
        read.objects(creator_ids=list(shelves))
