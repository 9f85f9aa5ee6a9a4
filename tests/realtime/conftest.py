"""Fixtures for the dashboard tests: logged-in clients, orders through the services, websockets."""

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.test import Client
from django.utils import timezone

from creatorflow.asgi import application
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event
from tests.sockets import ServerLikeCommunicator

WEBSOCKET_PATH = "/ws/dashboard/"


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
