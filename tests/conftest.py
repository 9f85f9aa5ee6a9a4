"""Fixtures shared by the whole suite: creators, shops, products with stock, channel-layer listeners."""

import asyncio
import logging
import os
import threading
from decimal import Decimal

import pytest
from channels.layers import get_channel_layer
from django.db import connection

from inventory.services.catalogue import product_upsert
from inventory.services.stock import stock_restock
from orders.models import ShopConnection

USES_POSTGRES = bool(os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")))
USES_REDIS = bool(os.environ.get("REDIS_URL"))


def pytest_collection_modifyitems(config, items):
    skip_pg = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://...")
    skip_redis = pytest.mark.skip(reason="needs Redis: set REDIS_URL=redis://...")
    for item in items:
        if "postgres" in item.keywords and not USES_POSTGRES:
            item.add_marker(skip_pg)
        if "redis" in item.keywords and not USES_REDIS:
            item.add_marker(skip_redis)


@pytest.fixture
def make_creator(django_user_model):
    counter = iter(range(1, 10_000))

    def make(username: str | None = None, *, timezone: str = "UTC", password: str = "pass-1234", **extra):
        return django_user_model.objects.create_user(
            username=username or f"creator{next(counter)}", password=password, timezone=timezone, **extra
        )

    return make


@pytest.fixture
def creator(make_creator):
    return make_creator("alice")


@pytest.fixture
def make_shop():
    counter = iter(range(1, 10_000))

    def make(creator, *, shop_id: str | None = None, app_key: str = "app-key", app_secret: str = "app-secret", **extra):
        return ShopConnection.objects.create(
            creator=creator,
            shop_id=shop_id or f"shop-{creator.pk}-{next(counter)}",
            app_key=app_key,
            app_secret=app_secret,
            **extra,
        )

    return make


@pytest.fixture
def shop(creator, make_shop):
    return make_shop(creator, shop_id="shop-1")


@pytest.fixture
def make_product():
    counter = iter(range(1, 10_000))

    def make(creator, *, stock: int = 0, reorder_point: int = 10, unit_cost: str = "2.00", external_id=None, **extra):
        number = next(counter)
        product, _ = product_upsert(
            creator_id=creator.pk,
            external_id=external_id or f"P{number}",
            name=extra.pop("name", f"Product {number}"),
            sku=extra.pop("sku", f"SKU-{number}"),
            reorder_point=reorder_point,
            unit_cost=Decimal(unit_cost),
        )
        if stock:
            stock_restock(product=product, quantity=stock, reference="test stock")
        return product

    return make


@pytest.fixture
def uses_postgres():
    return connection.vendor == "postgresql"


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))  # with any traceback the record carries


@pytest.fixture
def every_log():
    """Collect every record of the project's, Django's and django-axes' loggers, at every level."""
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("", "creatorflow", "django", "axes")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.lines
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


class GroupListener:
    """A channel in some groups, read from synchronous test code on one event loop of its own.

    The Pub/Sub layer keeps a subscription on the event loop that made it, so the channel is
    made, joined and read on one loop, run on a thread for the test's life.
    """

    def __init__(self, *groups: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="test-group-listener", daemon=True)
        self.thread.start()
        self.layer = get_channel_layer()
        self.channel = self._run(self.layer.new_channel())
        for group in groups:
            self._run(self.layer.group_add(group, self.channel))

    def _run(self, coroutine, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def receive(self, timeout: float = 5) -> dict:
        """The next message, or TimeoutError after ``timeout`` seconds."""
        return self._run(asyncio.wait_for(self.layer.receive(self.channel), timeout), timeout + 5)

    def drain(self, quiet: float = 0.5) -> list[dict]:
        """Every message until none came for ``quiet`` seconds."""
        messages = []
        while True:
            try:
                messages.append(self.receive(quiet))
            except TimeoutError:
                return messages

    def leave(self, *groups: str) -> None:
        """Leave groups, as a dashboard does when its tab closes."""
        for group in groups:
            self._run(self.layer.group_discard(group, self.channel))

    def close(self) -> None:
        self._run(self.layer.flush())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def group_listener():
    """Listen to channel-layer groups from a synchronous test: ``group_listener(group, ...)``."""
    listeners: list[GroupListener] = []

    def listen(*groups: str) -> GroupListener:
        listeners.append(GroupListener(*groups))
        return listeners[-1]

    yield listen
    for listener in listeners:
        listener.close()
