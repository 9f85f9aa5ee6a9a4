"""The JSON API and the health check."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings as django_settings
from django.db import connections
from django.urls import reverse

from inventory.models import InventoryAlert
from inventory.services.catalogue import warehouse_get_or_create
from inventory.services.stock import stock_restock

pytestmark = pytest.mark.django_db

API_PATHS = ("/api/metrics/", "/api/inventory/", "/api/orders/", "/api/alerts/")


@pytest.mark.parametrize("path", API_PATHS)
def test_api_refuses_anonymous_with_401_json(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert "error" in response.json()


@pytest.mark.parametrize("path", API_PATHS)
def test_api_answers_get_only(logged_in_client, path):
    assert logged_in_client.post(path).status_code == 405


def test_metrics_of_a_brand_new_creator_has_every_key(logged_in_client):
    body = logged_in_client.get("/api/metrics/").json()
    assert body["orders"] == {
        "total_count": 0, "today_count": 0, "total_revenue": "0.00", "avg_processing_time": None,
        "gmv_today": "0.00", "short_count": 0, "short_units": 0,
    }
    assert body["inventory"] == {"total_products": 0, "low_stock_count": 0, "total_value": "0.00", "critical_alerts": 0}
    assert body["system"] == {"health_status": "nominal", "sync_status": "synced", "last_sync": None}


def test_metrics_follow_orders(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=10, reorder_point=2, unit_cost="3.00")
    place_order(shop, product, quantity=2, status="COMPLETED", price="7.50")

    body = logged_in_client.get("/api/metrics/").json()

    assert body["orders"]["total_count"] == 1
    assert body["orders"]["today_count"] == 1
    assert body["orders"]["total_revenue"] == "15.00"
    assert body["inventory"]["total_products"] == 1
    assert body["inventory"]["total_value"] == "30.00"  # an order first seen completed holds no stock


def test_inventory_lists_products_with_the_design_fields(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=30, reorder_point=10, external_id="TT-1", sku="GLOW-30", name="Glow serum")
    place_order(shop, product, quantity=24)

    body = logged_in_client.get("/api/inventory/").json()

    assert body["count"] == 1
    assert body["products"] == [
        {
            "product_id": "TT-1",
            "sku": "GLOW-30",
            "name": "Glow serum",
            "on_hand": 30,
            "reserved": 24,
            "available": 6,
            "reorder_point": 10,
            "velocity_per_hour": 1.0,
            "stockout_eta_hours": 6,
            "stock_level": "low",
        }
    ]


def test_inventory_filters_by_warehouse_and_hides_other_creators_warehouses(
    logged_in_client, creator, make_creator, make_product
):
    make_product(creator, stock=5, external_id="MAIN")
    elsewhere = make_product(creator, external_id="ELSEWHERE")
    second = warehouse_get_or_create(creator_id=creator.pk, external_id="WH-2")
    stock_restock(product=elsewhere, quantity=7, warehouse=second)
    foreign = warehouse_get_or_create(creator_id=make_creator("bob").pk, external_id="WH-BOB")

    body = logged_in_client.get("/api/inventory/", {"warehouse": second.pk}).json()
    assert [product["product_id"] for product in body["products"]] == ["ELSEWHERE"]
    assert body["products"][0]["on_hand"] == 7

    assert logged_in_client.get("/api/inventory/", {"warehouse": foreign.pk}).status_code == 404
    assert logged_in_client.get("/api/inventory/", {"warehouse": "main"}).status_code == 400


def test_orders_list_with_items_and_flags_filtered_by_status(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=3, external_id="TT-9")
    place_order(shop, product, quantity=2, status="IN_TRANSIT", price="4.00", order_id="A-1")
    place_order(shop, product, quantity=5, price="4.00", order_id="A-2")  # short: flagged

    body = logged_in_client.get("/api/orders/").json()
    by_id = {order["order_id"]: order for order in body["orders"]}
    assert set(by_id) == {"A-1", "A-2"}
    assert by_id["A-1"]["status"] == "IN_TRANSIT"
    assert by_id["A-1"]["total_amount"] == "8.00"
    assert by_id["A-1"]["items"] == [{"product_id": "TT-9", "quantity": 2, "price": "4.00"}]
    assert by_id["A-2"]["flags"] == ["insufficient_stock"]

    filtered = logged_in_client.get("/api/orders/", {"status": "in_transit"}).json()
    assert [order["order_id"] for order in filtered["orders"]] == ["A-1"]
    assert logged_in_client.get("/api/orders/", {"status": "LOST"}).status_code == 400
    assert logged_in_client.get("/api/orders/", {"limit": "0"}).status_code == 400


def test_orders_of_another_creator_are_never_listed(logged_in_client, make_creator, make_shop, make_product, place_order):
    bob = make_creator("bob")
    place_order(make_shop(bob), make_product(bob, stock=5), order_id="BOB-1")
    assert logged_in_client.get("/api/orders/").json()["orders"] == []


def test_alerts_list_filtered_by_status(logged_in_client, creator, make_product):
    make_product(creator, stock=1, reorder_point=10, external_id="LOW-1")
    alert = InventoryAlert.objects.get(creator=creator)

    body = logged_in_client.get("/api/alerts/").json()
    assert [(item["id"], item["product_id"], item["type"], item["severity"], item["status"]) for item in body["alerts"]] == [
        (alert.pk, "LOW-1", "low_stock", "critical", "active")
    ]
    assert logged_in_client.get("/api/alerts/", {"status": "resolved"}).json()["alerts"] == []
    assert logged_in_client.get("/api/alerts/", {"status": "sleeping"}).status_code == 400


# --- health --------------------------------------------------------------------------------------


def test_healthz_answers_200_when_database_and_channel_layer_answer(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("backend", ["the configured layer", "channels_redis.core.RedisChannelLayer"])
async def test_healthz_answers_while_a_dashboard_listens_on_the_channel_layer(async_client, settings, backend):
    # A server with dashboards open has a consumer waiting on the channel layer all the time.
    # With Redis's list layer, that waiter reads the process's own channels for every receiver in
    # it; the check's reply must reach the check while it waits, not after the waiter's next poll.
    if backend.startswith("channels_redis"):
        if not django_settings.REDIS_URL:
            pytest.skip("needs Redis: set REDIS_URL=redis://...")
        settings.CHANNEL_LAYERS = {"default": {**django_settings.CHANNEL_LAYERS["default"], "BACKEND": backend}}
    layer = get_channel_layer()
    listening = asyncio.create_task(layer.receive(await layer.new_channel()))
    await asyncio.sleep(0.2)  # the dashboard's receive is under way
    try:
        response = await async_client.get(reverse("healthz"))
    finally:
        listening.cancel()
        await sync_to_async(connections.close_all)()  # the check's own connection, on the sync thread
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok"}
    assert response.status_code == 200


@pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs Redis: set REDIS_URL=redis://...")
def test_healthz_answers_on_the_pub_sub_layer(client, settings):
    # REDIS_CHANNEL_LAYER=pubsub: Pub/Sub keeps no message, so the check must listen before it sends.
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": [django_settings.REDIS_URL], "prefix": f"{django_settings.CHANNEL_LAYERS['default']['CONFIG']['prefix']}-pubsub"},
        }
    }
    response = client.get(reverse("healthz"))
    assert response.json()["checks"] == {"database": "ok", "channel_layer": "ok"}
    assert response.status_code == 200


def test_healthz_answers_503_naming_an_unreachable_channel_layer(client, settings):
    # A real Redis channel layer pointed at a port nothing listens on.
    settings.CHANNEL_LAYERS = {
        "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]}}
    }
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["channel_layer"]
    assert body["checks"]["database"] == "ok"
