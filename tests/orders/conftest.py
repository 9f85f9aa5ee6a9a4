"""Fixtures for the webhook tests: signed deliveries, payload builders, a fake TikTok Shop API."""

import copy
import itertools
import json
import logging
import threading
import time

import pytest
from django.db import connection, connections

from orders.inbox import webhook_signature
from tests.fake_tiktok import FakeTikTokShop

WEBHOOK_URL = "/webhooks/tiktok/"
_order_numbers = itertools.count(1)


def signed(shop, body: bytes) -> str:
    return webhook_signature(app_key=shop.app_key, app_secret=shop.app_secret, body=body)


def order_body(shop, *, order_id=None, status="AWAITING_SHIPMENT", items=(), total="10.00", timestamp=None, **data):
    """CreatorFlow's ORDER_STATUS_CHANGE as bytes; ``items`` are (product external id, quantity[, price])."""
    document = {
        "type": "ORDER_STATUS_CHANGE",
        "shop_id": shop.shop_id,
        "timestamp": timestamp or int(time.time()),
        "data": {
            "order_id": order_id or f"O{next(_order_numbers)}",
            "status": status,
            "total_amount": total,
            **({"items": [
                {"product_id": item[0], "quantity": item[1], "price": item[2] if len(item) > 2 else "5.00"}
                for item in items
            ]} if items else {}),
            **data,
        },
    }
    return json.dumps(document).encode()


def inventory_body(shop, *, product_id, quantity, timestamp=None, **data):
    document = {
        "type": "INVENTORY_UPDATE",
        "shop_id": shop.shop_id,
        "timestamp": timestamp or int(time.time()),
        "data": {"product_id": product_id, "quantity": quantity, **data},
    }
    return json.dumps(document).encode()


def tiktok_body(shop, *, notification_id, order_id, status="AWAITING_SHIPMENT", update_time=None, timestamp=None):
    document = {
        "type": 1,
        "tts_notification_id": notification_id,
        "shop_id": shop.shop_id,
        "timestamp": timestamp or int(time.time()),
        "data": {"order_id": order_id, "order_status": status, "update_time": update_time or int(time.time())},
    }
    return json.dumps(document).encode()


@pytest.fixture
def post_webhook(client):
    """POST raw bytes to the webhook, signed for ``shop`` unless a signature is given."""

    def post(shop, body: bytes, *, signature=None, **headers):
        if signature is None:
            signature = signed(shop, body)
        if signature is not False:
            headers["HTTP_AUTHORIZATION"] = signature
        return client.post(WEBHOOK_URL, data=body, content_type="application/json", **headers)

    return post


@pytest.fixture
def fake_tiktok():
    with FakeTikTokShop() as fake:
        yield fake


@pytest.fixture
def tiktok_shop(creator, make_shop, fake_tiktok):
    """A shop whose API credentials and base URL point at the fake TikTok Shop."""
    return make_shop(
        creator,
        shop_id="tts-shop",
        app_key=fake_tiktok.app_key,
        app_secret=fake_tiktok.app_secret,
        access_token=fake_tiktok.access_token,
        shop_cipher=fake_tiktok.shop_cipher,
        api_base_url=fake_tiktok.base_url,
    )


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def webhook_log():
    """Collect the messages of the creatorflow.webhooks logger."""
    logger = logging.getLogger("creatorflow.webhooks")
    handler, previous = _Lines(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.fixture
def database_down():
    """Point new database connections at a server that is not there; the test's own stays open.

    Django builds each thread's connection from the same settings dictionary, so a request run
    on a fresh thread meets a database it cannot reach.
    """
    settings_dict = connection.settings_dict
    original = copy.deepcopy(settings_dict)
    if connection.vendor == "sqlite":
        settings_dict["NAME"] = "/nonexistent-creatorflow-dir/db.sqlite3"
    else:
        settings_dict["HOST"], settings_dict["PORT"] = "127.0.0.1", "1"
        settings_dict["OPTIONS"] = {k: v for k, v in settings_dict["OPTIONS"].items() if k != "pool"}
    yield
    settings_dict.clear()
    settings_dict.update(original)


def in_thread(function):
    """Run ``function`` on a new thread (with its own database connection) and return its result."""
    outcome = {}

    def run():
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - re-raised on the caller's thread
            outcome["error"] = error
        finally:
            for alias in connections:
                connections[alias].close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
