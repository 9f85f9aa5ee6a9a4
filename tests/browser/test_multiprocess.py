"""Several server processes sharing PostgreSQL and Redis: a change made through one reaches the others' dashboards."""

import secrets
import time
import urllib.request

import pytest
from django.conf import settings
from django.test import Client
from websockets.sync.client import connect

from inventory.models import InventoryAlert

from ..sockets import fragment_id, frame_parts
from .conftest import order_document, webhook_post
from .servers import DaphneServer

pytestmark = [pytest.mark.redis, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 20
FRAGMENT_COUNT = 7


@pytest.fixture
def two_processes(django_db_blocker):
    with django_db_blocker.unblock():
        first = DaphneServer(name="process-a").start()
        try:
            second = DaphneServer(name="process-b").start()
        except Exception:
            first.stop()
            raise
    yield first, second
    first.stop()
    second.stop()


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def receive_until(socket, predicate) -> list[str]:
    """Collect frames until ``predicate(frames)`` holds; fail at the deadline."""
    frames: list[str] = []
    end = time.monotonic() + DEADLINE_SECONDS
    while not predicate(frames):
        remaining = end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"not seen within {DEADLINE_SECONDS}s; got {[fragment_id(frame) for frame in frames]}")
        try:
            frames.extend(frame_parts(socket.recv(timeout=remaining)))
        except TimeoutError:
            continue
    return frames


def latest(frames: list[str], name: str) -> str:
    return next((frame for frame in reversed(frames) if fragment_id(frame) == name), "")


def dashboard_socket(server: DaphneServer, user):
    return connect(
        f"ws://127.0.0.1:{server.port}/ws/dashboard/",
        additional_headers={"Cookie": session_cookie(user), "Origin": server.url},
        open_timeout=DEADLINE_SECONDS,
    )


def test_webhook_handled_by_one_process_reaches_a_dashboard_on_another(two_processes, creator, shop, make_product):
    process_a, process_b = two_processes
    product = make_product(creator, stock=10, external_id="TT-MULTI")

    with dashboard_socket(process_b, creator) as socket:
        snapshot = receive_until(socket, lambda frames: len(frames) >= FRAGMENT_COUNT)
        assert 'data-field="available">10<' in latest(snapshot, "inventory-table")

        webhook_post(process_a, shop, order_document(shop, order_id="MULTI-1", items=[("TT-MULTI", 4)]))

        frames = receive_until(
            socket,
            lambda got: 'data-field="available">6<' in latest(got, "inventory-table")
            and 'data-order-id="MULTI-1"' in latest(got, "recent-orders"),
        )
        assert f'id="product-{product.pk}"' in latest(frames, "inventory-table")


def test_alert_acknowledged_through_one_process_updates_a_dashboard_on_another(two_processes, creator, make_product):
    process_a, process_b = two_processes
    make_product(creator, stock=1, reorder_point=10)
    alert = InventoryAlert.objects.get(creator=creator, status="active")
    csrf_secret = secrets.token_hex(16)  # 32 characters: a valid unmasked CSRF secret

    with dashboard_socket(process_b, creator) as socket:
        snapshot = receive_until(socket, lambda frames: len(frames) >= FRAGMENT_COUNT)
        assert f'data-alert-id="{alert.pk}" data-severity="critical" data-status="active"' in latest(snapshot, "alert-list")

        request = urllib.request.Request(
            f"{process_a.url}/alerts/{alert.pk}/acknowledge/",
            method="POST",
            data=b"",
            headers={
                "Cookie": f"{session_cookie(creator)}; {settings.CSRF_COOKIE_NAME}={csrf_secret}",
                "X-CSRFToken": csrf_secret,
                "Origin": process_a.url,
                "HX-Request": "true",
            },
        )
        with urllib.request.urlopen(request, timeout=DEADLINE_SECONDS) as response:
            assert response.status == 200

        receive_until(socket, lambda got: 'data-status="acknowledged"' in latest(got, "alert-list"))
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
