"""Broadcasts after commit: rendered once per creator, sent to the creator's group, never raising."""

import asyncio
import logging

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from realtime.broadcast import FRAGMENTS_EVENT, creator_group, dashboard_push

pytestmark = pytest.mark.django_db


def test_creator_group_is_a_valid_channels_group_name(creator):
    name = creator_group(creator.pk)
    assert name == f"creator.{creator.pk}"
    assert get_channel_layer().match_type_and_length(name)
    assert get_channel_layer().require_valid_group_name(name)


def test_push_sends_the_rendered_fragments_of_the_topics_to_the_group(creator, make_product):
    make_product(creator, stock=3, name="Grouped serum")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(creator_group(creator.pk), channel)

    dashboard_push(creator_id=creator.pk, topics={"inventory"})

    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == FRAGMENTS_EVENT
    # Each alert row shows its product's live available count, so stock changes re-render the list.
    assert set(message["fragments"]) == {"metric-cards", "inventory-table", "alert-list"}
    assert "Grouped serum" in message["fragments"]["inventory-table"]
    assert isinstance(message["stamp"], float)


@pytest.mark.django_db(transaction=True)
def test_push_from_synchronous_code_inside_a_running_loop_arrives(creator, make_product, monkeypatch, caplog):
    """A notebook, or a test driving a browser, calls the services synchronously while a loop runs."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    make_product(creator, stock=3, name="Notebook serum")
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(creator_group(creator.pk), channel)

    async def synchronous_caller():
        dashboard_push(creator_id=creator.pk, topics={"inventory"})

    with caplog.at_level(logging.ERROR, logger="creatorflow.realtime"):
        asyncio.run(synchronous_caller())

    assert [record.getMessage() for record in caplog.records] == []
    message = async_to_sync(layer.receive)(channel)
    assert "Notebook serum" in message["fragments"]["inventory-table"]


def test_push_with_the_channel_layer_down_logs_and_does_not_raise(creator, settings, caplog):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    with caplog.at_level(logging.ERROR, logger="creatorflow.realtime"):
        dashboard_push(creator_id=creator.pk, topics={"orders"})
    assert any("dashboard push to creator" in record.getMessage() for record in caplog.records)


def test_committed_change_is_pushed_even_when_the_layer_is_down(creator, make_product, settings, django_capture_on_commit_callbacks):
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    with django_capture_on_commit_callbacks(execute=True):
        product = make_product(creator, stock=4)  # the service's own commit hooks must not raise
    product.refresh_from_db()
    assert product.stocks.get().on_hand == 4
