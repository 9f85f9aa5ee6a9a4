"""Broadcasts after commit: rendered once per creator, sent to the creator's group, never raising."""

import asyncio
import logging

import pytest
from channels.layers import BaseChannelLayer
from django.db import connection
from django.test.utils import CaptureQueriesContext

from creatorflow.changes import Change
from creatorflow.health import health_record
from realtime import runtime
from realtime.broadcast import FRAGMENTS_EVENT, creator_group, dashboard_push
from realtime.models import DashboardMetric
from realtime.publisher import changes_publish, changes_publish_many

pytestmark = pytest.mark.django_db


def test_creator_group_is_a_valid_channels_group_name(creator):
    name = creator_group(creator.pk)
    assert name == f"creator.{creator.pk}"
    rules = BaseChannelLayer()  # Channels' naming rules, which every layer applies
    assert rules.match_type_and_length(name)
    assert rules.require_valid_group_name(name)


def test_push_sends_the_rendered_fragments_of_the_topics_to_the_group(creator, make_product, group_listener):
    make_product(creator, stock=3, name="Grouped serum")
    listener = group_listener(creator_group(creator.pk))

    dashboard_push(creator_id=creator.pk, change=Change.of("inventory"))

    message = listener.receive()
    assert message["type"] == FRAGMENTS_EVENT
    # Each alert row shows its product's live available count, so stock changes re-render the list.
    assert set(message["fragments"]) == {"metric-cards", "inventory-table", "alert-list"}
    assert "Grouped serum" in message["fragments"]["inventory-table"]
    assert isinstance(message["stamp"], float)


@pytest.mark.django_db(transaction=True)
def test_push_from_synchronous_code_inside_a_running_loop_arrives(creator, make_product, monkeypatch, caplog, group_listener):
    """A notebook, or a test driving a browser, calls the services synchronously while a loop runs."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    make_product(creator, stock=3, name="Notebook serum")
    listener = group_listener(creator_group(creator.pk))

    async def synchronous_caller():
        dashboard_push(creator_id=creator.pk, change=Change.of("inventory"))

    with caplog.at_level(logging.ERROR, logger="creatorflow.realtime"):
        asyncio.run(synchronous_caller())

    assert [record.getMessage() for record in caplog.records] == []
    message = listener.receive()
    assert "Notebook serum" in message["fragments"]["inventory-table"]


def test_push_with_the_channel_layer_down_logs_and_does_not_raise(creator, settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    with caplog.at_level(logging.ERROR, logger="creatorflow.realtime"):
        dashboard_push(creator_id=creator.pk, change=Change.of("orders"))
    assert any("dashboard push to creator" in record.getMessage() for record in caplog.records)


def test_committed_change_is_pushed_even_when_the_layer_is_down(creator, make_product, settings, django_capture_on_commit_callbacks):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    with django_capture_on_commit_callbacks(execute=True):
        product = make_product(creator, stock=4)  # the service's own commit hooks must not raise
    product.refresh_from_db()
    assert product.stocks.get().on_hand == 4


def test_a_committed_order_is_pushed_as_its_rows_not_as_whole_lists(
    creator, shop, make_product, place_order, django_capture_on_commit_callbacks, group_listener
):
    with django_capture_on_commit_callbacks(execute=True):  # published before anyone listens
        product = make_product(creator, stock=8, reorder_point=10, name="Row serum")  # low: it has an open alert
        make_product(creator, stock=50, name="Untouched serum")
    listener = group_listener(creator_group(creator.pk))

    with django_capture_on_commit_callbacks(execute=True):
        order = place_order(shop, product, quantity=2)

    message = listener.receive()
    assert set(message["rows"]) == {"recent-orders", "inventory-table", "alert-list"}
    assert list(message["rows"]["recent-orders"]) == [f"order-{order.pk}"]
    assert list(message["rows"]["inventory-table"]) == [f"product-{product.pk}"]
    assert 'data-field="available">6<' in message["rows"]["inventory-table"][f"product-{product.pk}"]
    assert "6 available now" in "".join(message["rows"]["alert-list"].values())
    assert not {"recent-orders", "inventory-table", "alert-list"} & set(message["fragments"])
    assert {"metric-cards", "orders-chart"} <= set(message["fragments"])
    assert "Untouched serum" not in str(message)


def test_a_topic_changed_as_a_whole_is_pushed_whole_even_with_rows_marked_beside_it(creator, make_product, group_listener):
    product = make_product(creator, stock=3, name="Whole serum")
    listener = group_listener(creator_group(creator.pk))
    change = Change.of("inventory", ids=[product.pk])
    change.merge(Change.of("inventory"))  # a resync's mark, say, coalesced with an order's

    dashboard_push(creator_id=creator.pk, change=change)

    message = listener.receive()
    assert "inventory-table" in message["fragments"] and "inventory-table" not in message["rows"]
    assert "Whole serum" in message["fragments"]["inventory-table"]


def test_an_order_publish_reads_the_same_statements_whatever_the_catalogue_and_history(
    creator, shop, make_product, place_order, django_capture_on_commit_callbacks
):
    hot = make_product(creator, stock=10_000, name="Hot serum")

    def publish_statements() -> int:
        order = place_order(shop, hot)
        change = Change.of("orders", ids=[order.pk])
        change.add(["inventory"], ids=[hot.pk])
        change.add(["sync"])
        with CaptureQueriesContext(connection) as queries:
            changes_publish(creator.pk, change)
        return len(queries)

    small = publish_statements()
    for number in range(30):
        place_order(shop, make_product(creator, stock=5 + number, reorder_point=10))
    assert publish_statements() == small


def test_a_process_wide_status_reaches_every_dashboard_only_when_it_changes(
    creator, make_creator, django_capture_on_commit_callbacks, group_listener
):
    with django_capture_on_commit_callbacks(execute=True):  # the creators' own pushes, before anyone listens
        bob = make_creator("bob")
    listener = group_listener(creator_group(creator.pk), creator_group(bob.pk))

    with django_capture_on_commit_callbacks(execute=True) as first_report:
        health_record(component="realtime@host:1", status="nominal")  # a new server process's first report
    assert first_report == []  # nothing to publish
    with django_capture_on_commit_callbacks(execute=True):
        health_record(component="realtime@host:1", status="warning")
    messages = listener.drain()
    assert len(messages) == 2 and all(set(message["fragments"]) == {"metric-cards"} for message in messages)


def test_a_publish_reads_the_time_zone_live_session_and_currency_once(
    creator, shop, make_product, place_order, django_capture_on_commit_callbacks, group_listener
):
    from realtime.live.services import live_start

    group_listener(creator_group(creator.pk))  # a dashboard is open: the push is rendered
    hot = make_product(creator, stock=100, name="Shared serum")
    live_start(creator_id=creator.pk, title="Shared reads")
    order = place_order(shop, hot)  # no currency on the order: the rows ask for the seller's
    change = Change.of("orders", ids=[order.pk])
    change.add(["inventory"], ids=[hot.pk])
    change.add(["sync"])
    with CaptureQueriesContext(connection) as queries:
        changes_publish(creator.pk, change)
    statements = [query["sql"] for query in queries.captured_queries]
    assert sum('"timezone"' in sql and "accounts_creator" in sql for sql in statements) == 1
    assert sum("ended_at" in sql and "IS NULL" in sql for sql in statements) == 1  # the running LIVE
    assert sum(sql.startswith('SELECT "orders_order"."currency" AS') for sql in statements) == 1  # the seller's currency


def _order_change(order, product) -> Change:
    """What the order path marks for a new order: its row, its product's row, the webhook stream."""
    change = Change.of("orders", ids=[order.pk])
    change.add(["inventory"], ids=[product.pk])
    change.add(["sync"])
    return change


def test_creators_published_together_cost_the_statements_of_one_and_each_gets_only_its_rows(
    make_creator, make_shop, make_product, place_order, django_capture_on_commit_callbacks, group_listener
):
    sellers = []
    with django_capture_on_commit_callbacks(execute=True):  # published before anyone listens
        for number in range(4):
            seller = make_creator(f"seller{number}", timezone=["UTC", "Asia/Tokyo", "America/New_York", "Europe/Paris"][number])
            product = make_product(seller, stock=100, name=f"Serum of seller {number}")
            sellers.append((seller, make_shop(seller), product))
    listeners = {seller.pk: group_listener(creator_group(seller.pk)) for seller, _, _ in sellers}
    changes = {seller.pk: _order_change(place_order(shop, product), product) for seller, shop, product in sellers}

    with CaptureQueriesContext(connection) as one:
        changes_publish_many({sellers[0][0].pk: changes[sellers[0][0].pk]})
    with CaptureQueriesContext(connection) as together:
        changes_publish_many(changes)

    assert len(together) == len(one)  # one statement per kind of read for every creator of the cycle
    listeners[sellers[0][0].pk].receive()  # the first publish's message
    for number, (seller, _, product) in enumerate(sellers):
        message = listeners[seller.pk].receive()
        order_rows = message["rows"]["recent-orders"]
        inventory_rows = message["rows"]["inventory-table"]
        assert list(order_rows) == [f"order-{changes[seller.pk].rows('orders').pop()}"]
        assert list(inventory_rows) == [f"product-{product.pk}"]
        assert f"Serum of seller {number}" in inventory_rows[f"product-{product.pk}"]
        assert not any(f"Serum of seller {other}" in html for other in range(4) if other != number for html in order_rows.values())
        assert {"metric-cards", "orders-chart", "sync-operations"} <= set(message["fragments"])
    stored = DashboardMetric.objects.filter(metric_type="orders", metric_key="total_count")
    assert {metric.creator_id: metric.value for metric in stored} == {seller.pk: 1 for seller, _, _ in sellers}


def test_a_creator_that_fails_in_a_cycle_does_not_hold_back_the_others(creator, shop, make_product, place_order, caplog, group_listener):
    product = make_product(creator, stock=100, name="Survivor serum")
    listener = group_listener(creator_group(creator.pk))
    gone = 999_999  # a creator deleted between commit and publish: every read of theirs fails

    with caplog.at_level(logging.ERROR, logger="creatorflow.realtime"):
        changes_publish_many({gone: Change.of("orders"), creator.pk: _order_change(place_order(shop, product), product)})

    message = listener.receive()
    assert "Survivor serum" in message["rows"]["inventory-table"][f"product-{product.pk}"]
    assert [record.getMessage() for record in caplog.records] == [f"publish for creator {gone} failed (DoesNotExist)"]


def test_a_creator_with_no_dashboard_open_anywhere_is_not_rendered_for(
    make_creator, make_shop, make_product, place_order, group_listener
):
    """On the configured layer (in-memory, or Redis Pub/Sub across processes): only groups with a member count."""
    watching, away = make_creator("watching"), make_creator("away")
    orders = {}
    for seller in (watching, away):
        product = make_product(seller, stock=100, name=f"Serum of {seller.username}")
        orders[seller.pk] = _order_change(place_order(make_shop(seller), product), product)
    groups = [creator_group(watching.pk), creator_group(away.pk)]
    group_listener(groups[0])
    assert runtime.groups_watched(groups) == {groups[0]}

    with CaptureQueriesContext(connection) as unwatched:
        changes_publish_many({away.pk: orders[away.pk]})
    late = group_listener(groups[1])  # a tab opens afterwards: it starts from its snapshot
    assert runtime.groups_watched(groups) == set(groups)
    with CaptureQueriesContext(connection) as watched:
        changes_publish_many({away.pk: orders[away.pk]})

    def renders(queries) -> list[str]:  # the reads of the pushed order row's lines
        return [query["sql"] for query in queries.captured_queries if '"orders_orderitem"' in query["sql"]]

    assert renders(unwatched) == [] and renders(watched)
    message = late.receive()
    (product_id,) = orders[away.pk].rows("inventory")
    assert "Serum of away" in message["rows"]["inventory-table"][f"product-{product_id}"]
    # The metrics are kept whether or not anyone watches.
    stored = DashboardMetric.objects.get(creator_id=away.pk, metric_type="orders", metric_key="total_count")
    assert stored.value == 1
    late.leave(groups[1])  # and closes
    assert runtime.groups_watched(groups) == {groups[0]}
