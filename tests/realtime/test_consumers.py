"""The dashboard websocket: authentication, snapshot, pushes after commit, isolation, pacing."""

import asyncio
import re
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings

from inventory.services.catalogue import warehouse_get_or_create
from inventory.services.stock import stock_restock
from realtime.consumers import CLOSE_LAYER_LOST
from realtime.fragments import FRAGMENT_NAMES

from ..sockets import fragment_id, frame_parts, is_rows_frame
from .conftest import websocket_open

pytestmark = [pytest.mark.django_db(transaction=True)]

DEADLINE_SECONDS = 10


async def receive_until(communicator, predicate, *, deadline: float = DEADLINE_SECONDS) -> list[str]:
    """Collect the elements frames carry until ``predicate(elements)`` holds; fail when the deadline passes first."""
    frames: list[str] = []
    end = time.monotonic() + deadline
    while not predicate(frames):
        remaining = end - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"condition not met within {deadline}s; got {[fragment_id(f) for f in frames]}")
        try:
            frames.extend(frame_parts(await communicator.receive_from(timeout=remaining)))
        except asyncio.TimeoutError:
            # The communicator stops the application on a timeout: nothing more will come.
            pytest.fail(f"condition not met within {deadline}s; got {[fragment_id(f) for f in frames]}")
    return frames


async def receive_during(communicator, seconds: float) -> list[str]:
    """Collect the elements of every frame that arrives within ``seconds``."""
    frames: list[str] = []
    end = time.monotonic() + seconds
    while (remaining := end - time.monotonic()) > 0:
        if await communicator.receive_nothing(timeout=remaining):
            break
        frames.extend(frame_parts(await communicator.receive_from()))
    return frames


async def receive_snapshot(communicator) -> dict[str, str]:
    frames = await receive_until(communicator, lambda got: len(got) >= len(FRAGMENT_NAMES))
    return {fragment_id(frame): frame for frame in frames}


def latest(frames: list[str], name: str) -> str | None:
    found = [frame for frame in frames if fragment_id(frame) == name]
    return found[-1] if found else None


def card_value(frame: str, card_id: str) -> str:
    card = frame[frame.index(f'id="{card_id}"') :]
    return re.search(r'class="card-value[^"]*"[^>]*>(.*?)</p>', card, re.S).group(1).strip()


# --- authentication ------------------------------------------------------------------------------


async def test_anonymous_socket_is_closed_with_4401():
    communicator, connected = await websocket_open(None)
    try:
        assert connected  # accepted only to say why: a refused handshake looks like a network error
        message = await communicator.receive_output(timeout=DEADLINE_SECONDS)
        assert message == {"type": "websocket.close", "code": 4401}
    finally:
        await communicator.disconnect()


async def test_socket_from_a_foreign_origin_is_refused(creator):
    communicator, connected = await websocket_open(creator, origin="https://evil.example")
    try:
        assert not connected
    finally:
        await communicator.disconnect()


async def test_a_dashboard_is_closed_when_redis_stops_answering(creator, settings):
    """Pub/Sub tells no receiver that Redis went away: the process's watch closes its dashboards."""
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # what the watch PINGs: nothing listens there
    communicator, connected = await websocket_open(creator)
    try:
        assert connected
        await receive_snapshot(communicator)
        closed = await communicator.receive_output(timeout=5)
        assert closed == {"type": "websocket.close", "code": CLOSE_LAYER_LOST}
    finally:
        await communicator.disconnect()


# --- snapshot and pushes ---------------------------------------------------------------------------


async def test_connect_sends_a_snapshot_of_every_fragment_first(creator, make_product):
    await database_sync_to_async(make_product)(creator, stock=12, name="Snapshot serum")
    communicator, connected = await websocket_open(creator)
    try:
        assert connected
        snapshot = await receive_snapshot(communicator)
        assert set(snapshot) == set(FRAGMENT_NAMES)
        for frame in snapshot.values():
            assert 'hx-swap-oob="true"' in frame.split(">", 1)[0]
            assert not frame.lstrip().startswith("{")  # raw HTML, not JSON-wrapped
        assert "Snapshot serum" in snapshot["inventory-table"]
        assert card_value(snapshot["metric-cards"], "card-today-orders") == "0"
    finally:
        await communicator.disconnect()


async def test_committed_order_pushes_the_changed_fragments(creator, shop, make_product, place_order):
    product = await database_sync_to_async(make_product)(creator, stock=20, name="Pushed serum")
    communicator, _ = await websocket_open(creator)
    try:
        await receive_snapshot(communicator)

        order = await database_sync_to_async(place_order)(shop, product, quantity=3)

        def pushed(frames):
            cards, table, orders = (latest(frames, name) for name in ("metric-cards", "inventory-table", "recent-orders"))
            return (
                cards is not None
                and card_value(cards, "card-today-orders") == "1"
                and table is not None
                and 'data-field="reserved">3<' in table
                and orders is not None
                and f'data-order-id="{order.external_id}"' in orders
                and latest(frames, "orders-chart") is not None
            )

        frames = await receive_until(communicator, pushed)
        assert "sync-operations" not in {fragment_id(frame) for frame in frames}
        # The order's row and its product's row, on their own: never the whole tables.
        for name in ("inventory-table", "recent-orders"):
            assert all(is_rows_frame(frame) for frame in frames if fragment_id(frame) == name), name
        orders_frame = latest(frames, "recent-orders")
        assert orders_frame.count("<tr ") == 1 and f'id="order-{order.pk}"' in orders_frame
    finally:
        await communicator.disconnect()


async def test_a_creator_never_receives_another_creators_frames(creator, make_creator, shop, make_product, place_order):
    bob = await database_sync_to_async(make_creator)("bob")
    product = await database_sync_to_async(make_product)(creator, stock=20, name="Alice only serum")
    alice_socket, _ = await websocket_open(creator)
    bob_socket, _ = await websocket_open(bob)
    try:
        await receive_snapshot(alice_socket)
        bob_snapshot = await receive_snapshot(bob_socket)
        assert "Alice only serum" not in "".join(bob_snapshot.values())

        order = await database_sync_to_async(place_order)(shop, product, quantity=1)
        await receive_until(
            alice_socket,
            lambda frames: any(order.external_id in frame for frame in frames if fragment_id(frame) == "recent-orders"),
        )

        # Alice's push has been delivered; anything for Bob would have been sent with it. Bob may
        # still get pushes of his own (his account's creation, published after his snapshot when
        # the publisher is slow; a health status that changes), but never one that carries
        # Alice's products or orders.
        bob_frames = []
        while not await bob_socket.receive_nothing(timeout=0.5):
            bob_frames.extend(frame_parts(await bob_socket.receive_from()))
        for frame in bob_frames:
            assert "Alice only serum" not in frame and order.external_id not in frame
            assert f'id="product-{product.pk}"' not in frame and f'id="order-{order.pk}"' not in frame
            if fragment_id(frame) == "metric-cards":
                assert card_value(frame, "card-today-orders") == "0"
    finally:
        await alice_socket.disconnect()
        await bob_socket.disconnect()


async def test_a_burst_of_changes_is_paced_and_ends_on_the_current_state(creator, make_product, settings):
    # A longer interval than production's 100 ms keeps "far fewer frames" true however slowly a
    # busy machine commits the burst; the pacing rule checked below is the same at any interval.
    settings.CREATORFLOW = {**settings.CREATORFLOW, "PUSH_INTERVAL_SECONDS": 0.5}
    product = await database_sync_to_async(make_product)(creator, stock=1, reorder_point=0)
    communicator, _ = await websocket_open(creator)
    try:
        await receive_snapshot(communicator)
        changes = 200

        def burst():
            for _ in range(changes):
                stock_restock(product=product, quantity=1, reference="burst")

        started = time.monotonic()
        await database_sync_to_async(burst)()
        burst_seconds = time.monotonic() - started
        final_on_hand = 1 + changes

        frames = await receive_until(
            communicator,
            lambda got: (table := latest(got, "inventory-table")) is not None
            and f'data-field="on_hand">{final_on_hand}<' in table,
        )
        # Nothing older may follow the current state (the last publish's other fragments may).
        frames += await receive_during(communicator, 0.5)

        table_frames = [frame for frame in frames if fragment_id(frame) == "inventory-table"]
        current = f'data-field="on_hand">{final_on_hand}<'
        assert current in table_frames[-1]
        until_current = table_frames[: next(n for n, frame in enumerate(table_frames) if current in frame) + 1]
        interval = settings.CREATORFLOW["PUSH_INTERVAL_SECONDS"]
        assert len(until_current) < changes // 2
        # At most one frame per interval over the burst, plus the trailing one.
        assert len(until_current) <= burst_seconds / interval + 2
        on_hand_seen = [int(re.search(r'data-field="on_hand">(\d+)<', frame).group(1)) for frame in table_frames]
        assert on_hand_seen == sorted(on_hand_seen)  # never an older state after a newer one
    finally:
        await communicator.disconnect()


# --- filters ------------------------------------------------------------------------------------


async def test_warehouse_filter_sent_over_the_socket_narrows_the_pushed_table(creator, make_product):
    main_product = await database_sync_to_async(make_product)(creator, stock=5, name="Main shelf")
    other_product = await database_sync_to_async(make_product)(creator, name="Second shelf")

    def second_warehouse():
        warehouse = warehouse_get_or_create(creator_id=creator.pk, external_id="WH-2")
        stock_restock(product=other_product, quantity=4, warehouse=warehouse)
        return warehouse

    warehouse = await database_sync_to_async(second_warehouse)()
    communicator, _ = await websocket_open(creator)
    try:
        await receive_snapshot(communicator)
        await communicator.send_json_to({"warehouse": str(warehouse.pk), "HEADERS": {"HX-Request": "true"}})
        frames = await receive_until(communicator, lambda got: latest(got, "inventory-table") is not None)
        table = latest(frames, "inventory-table")
        assert "Second shelf" in table and "Main shelf" not in table

        # A later change reaches this connection filtered, too.
        await database_sync_to_async(stock_restock)(product=main_product, quantity=1)
        await database_sync_to_async(stock_restock)(product=other_product, quantity=2, warehouse=warehouse)
        frames = await receive_until(
            communicator,
            lambda got: (table := latest(got, "inventory-table")) is not None and 'data-field="on_hand">6<' in table,
        )
        assert "Main shelf" not in latest(frames, "inventory-table")
    finally:
        await communicator.disconnect()


@pytest.mark.redis
async def test_an_idle_socket_on_redis_still_receives_pushes(creator, shop, make_product, place_order):
    # channels_redis waits for messages in 5 s blocking pops; the Redis client's read timeout
    # must outlast them, or a quiet dashboard loses its socket after 5 s.
    product = await database_sync_to_async(make_product)(creator, stock=5)
    communicator, _ = await websocket_open(creator)
    try:
        await receive_snapshot(communicator)
        # Idle past the 5 s pop. A late push of the fixtures' own commits may still arrive in
        # this window; what must not arrive is a close.
        idle_until = time.monotonic() + 7
        while (left := idle_until - time.monotonic()) > 0:
            if await communicator.receive_nothing(timeout=min(left, 0.5), interval=0.1):
                continue
            message = await communicator.receive_output()
            assert message["type"] != "websocket.close", message

        order = await database_sync_to_async(place_order)(shop, product)

        await receive_until(
            communicator,
            lambda frames: any(order.external_id in frame for frame in frames if fragment_id(frame) == "recent-orders"),
        )
    finally:
        await communicator.disconnect()
