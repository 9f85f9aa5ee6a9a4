"""Fixtures for the dashboard tests: logged-in clients, orders through the services, websockets."""

import asyncio
import threading
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.test import Client
from django.utils import timezone

from creatorflow.asgi import application
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event
from tests.sockets import ServerLikeCommunicator

WEBSOCKET_PATH = "/ws/dashboard/"


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


@pytest.fixture
def logged_in_client(client, creator):
    client.force_login(creator)
    return client


@pytest.fixture
def place_order():
    """Place an order for ``product`` through the order service, as a webhook would."""
    counter = iter(range(1, 100_000))

    def place(shop, product, *, quantity: int = 1, status: str = "AWAITING_SHIPMENT", price: str = "10.00", order_id=None):
        now = timezone.now()
        order, _ = order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=order_id or f"O-{shop.pk}-{next(counter)}",
                status=status,
                updated_at=now,
                placed_at=now,
                total_amount=Decimal(price) * quantity,
                lines=[OrderLine(product_id=product.external_id, quantity=quantity, unit_price=Decimal(price))],
            ),
        )
        return order

    return place


def session_cookie_for(user) -> str:
    """Log ``user`` in through Django's test client and return the session cookie header value."""
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


async def websocket_open(user=None, *, path: str = WEBSOCKET_PATH, origin: str = "http://testserver"):
    """Open a dashboard websocket through the real ASGI stack (origin check, session auth)."""
    headers = [(b"origin", origin.encode())]
    if user is not None:
        cookie = await sync_to_async(session_cookie_for)(user)
        headers.append((b"cookie", cookie.encode()))
    communicator = ServerLikeCommunicator(application, path, headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected
