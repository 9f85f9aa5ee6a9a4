"""What one publish costs, piece by piece: the metrics and each fragment of a creator in a LIVE sale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/publish_cost.py --orders 1000 --products 25 --repeat 50

Recreates a scratch database (``--database``), seeds one creator through the services: ``--products``
products with stock, a running LIVE session (none with ``--no-live``) and ``--orders`` paid orders of 1–3 lines over the
last two hours. Then, in this one process (no server, nothing else running), it times
``--repeat`` times each: the metrics recompute of an order publish, every fragment an order
publish renders, and the whole publish (metrics, render, group send on the channel layer, to a
dashboard kept open on a loop of its own). It
reports milliseconds of wall time and of CPU (the whole process), and SQL statements, per call.
The whole publish is timed as from a command (``async_to_sync`` starts an event loop and a
channel-layer connection per send) and as from a server process (sends on the server's loop), with
the order topics re-rendered whole; and once for the latest order as the order path marks it
(its row, its products' rows, the webhook stream), which pushes rows instead of whole lists.

Then, with ``--cycle-creators N`` (50 by default, 0 to skip), it seeds N more creators (5 products
and 5 orders each) and times a publishing cycle as the coalescer runs it under load: the latest
order of 1, 5, 20 and N creators published together (``changes_publish_many``), in CPU ms per
cycle and per creator, and statements per cycle.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import threading
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ingest import database_recreate, database_url, server_env  # noqa: E402 - the ingest benchmark's helpers

ORDER_TOPICS = {"orders", "inventory"}  # what a new paid order changes (creatorflow.changes)


def seed(args) -> int:
    from django.core.management import call_command  # noqa: PLC0415 - Django is set up in main()
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from inventory.services.catalogue import product_upsert  # noqa: PLC0415
    from inventory.services.stock import stock_restock  # noqa: PLC0415
    from orders.events import OrderEvent, OrderLine  # noqa: PLC0415
    from orders.models import ShopConnection  # noqa: PLC0415
    from orders.services import order_apply_event  # noqa: PLC0415
    from realtime.live.services import live_start  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    creator = get_user_model().objects.create_user(username="publisher", password=None)
    shop = ShopConnection.objects.create(creator=creator, shop_id="publish-shop", app_key="k", app_secret="s")
    products = []
    for index in range(args.products):
        product, _ = product_upsert(
            creator_id=creator.pk, external_id=f"P-{index}", name=f"Lip oil shade {index}", sku=f"LO-{index}",
            unit_cost=Decimal("4.50"), reorder_point=20,
        )
        stock_restock(product=product, quantity=100_000 if index >= 3 else 40, reference="seed")
        products.append(product.external_id)
    now = timezone.now()
    if args.live:
        live_start(creator_id=creator.pk, title="Publish cost LIVE", now=now - timedelta(seconds=7300))
    picker = random.Random(7)
    for number in range(args.orders):
        placed = now - timedelta(seconds=7200 * (args.orders - number) / args.orders)
        lines = [OrderLine(sku, picker.randint(1, 2), Decimal("12.00")) for sku in picker.sample(products[:8], picker.randint(1, 3))]
        order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=f"O-{number}", status="AWAITING_SHIPMENT", updated_at=placed, placed_at=placed,
                total_amount=sum(line.unit_price * line.quantity for line in lines), lines=lines,
            ),
        )
    return creator.pk


def loop_thread(name: str) -> asyncio.AbstractEventLoop:
    """An event loop running on a daemon thread of its own."""
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name=name, daemon=True).start()
    return loop


def server_loop_start() -> None:
    """Run an event loop on a thread and register it, as a server process's loop is."""
    from realtime import runtime  # noqa: PLC0415

    loop = loop_thread("bench-server-loop")

    async def register() -> None:
        runtime.server_loop_register()

    asyncio.run_coroutine_threadsafe(register(), loop).result(timeout=5)


def dashboards_open(creator_ids) -> None:
    """Join the creators' groups from a loop of its own and drain what arrives, as an open tab does.

    Pushes are rendered only for creators with a dashboard open (``runtime.groups_watched``).
    """
    from channels.layers import get_channel_layer  # noqa: PLC0415
    from realtime.broadcast import creator_group  # noqa: PLC0415

    layer, loop = get_channel_layer(), loop_thread("bench-dashboards")

    async def open_and_drain() -> None:
        channel = await layer.new_channel()
        for creator_id in creator_ids:
            await layer.group_add(creator_group(creator_id), channel)
        asyncio.get_running_loop().create_task(drain(channel))

    async def drain(channel) -> None:
        while True:
            await layer.receive(channel)

    asyncio.run_coroutine_threadsafe(open_and_drain(), loop).result(timeout=10)


def measure(call, repeat: int) -> dict:
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    call()  # warm: templates compiled, connection open
    walls, cpus, statements = [], [], 0
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            wall, cpu = time.perf_counter(), time.process_time()
            call()
            walls.append((time.perf_counter() - wall) * 1000)
            cpus.append((time.process_time() - cpu) * 1000)
        statements = len(queries)
    return {
        "wall_ms_median": round(statistics.median(walls), 2),
        "cpu_ms_median": round(statistics.median(cpus), 2),
        "statements": statements,
    }


def cycle_figures(args) -> dict:
    """Seed ``--cycle-creators`` creators with a few orders each; time cycles of 1, 5, 20 and all of them."""
    from django.contrib.auth import get_user_model  # noqa: PLC0415
    from django.utils import timezone  # noqa: PLC0415

    from creatorflow.changes import INVENTORY, ORDERS, SYNC, Change  # noqa: PLC0415
    from inventory.services.catalogue import product_upsert  # noqa: PLC0415
    from inventory.services.stock import stock_restock  # noqa: PLC0415
    from orders.events import OrderEvent, OrderLine  # noqa: PLC0415
    from orders.models import ShopConnection  # noqa: PLC0415
    from orders.services import order_apply_event  # noqa: PLC0415
    from realtime import publisher  # noqa: PLC0415

    started = time.monotonic()
    changes = {}
    for number in range(args.cycle_creators):
        creator = get_user_model().objects.create_user(username=f"cycle{number}", password=None)
        shop = ShopConnection.objects.create(creator=creator, shop_id=f"cycle-shop-{number}", app_key="k", app_secret="s")
        products = []
        for index in range(5):
            product, _ = product_upsert(creator_id=creator.pk, external_id=f"C{number}-{index}", name=f"Serum {index}", reorder_point=20)
            stock_restock(product=product, quantity=30 if index == 0 else 10_000, reference="seed")
            products.append(product)
        for index in range(5):
            now = timezone.now()
            product = products[index]
            order, _ = order_apply_event(
                shop=shop,
                event=OrderEvent(
                    order_id=f"C{number}-O{index}", status="AWAITING_SHIPMENT", updated_at=now, placed_at=now,
                    total_amount=Decimal("12.00"), lines=[OrderLine(product.external_id, 1, Decimal("12.00"))],
                ),
            )
        # As the order path marks the latest order: its row, its product's row, the webhook stream.
        change = Change.of(ORDERS, ids=[order.pk])
        change.add([INVENTORY], ids=[product.pk])
        change.add([SYNC])
        changes[creator.pk] = change
    print(f"seeded {args.cycle_creators} more creators for the cycles in {time.monotonic() - started:.0f} s")
    creator_ids = list(changes)
    dashboards_open(creator_ids)
    figures = {}
    for size in sorted({1, 5, 20, args.cycle_creators} & set(range(1, args.cycle_creators + 1))):
        cycle = {creator_id: changes[creator_id] for creator_id in creator_ids[:size]}
        figure = measure(lambda cycle=cycle: publisher.changes_publish_many(cycle), max(5, args.repeat // 4))
        figure["cpu_ms_per_creator"] = round(figure["cpu_ms_median"] / size, 2)
        figures[f"publishing cycle of {size} creators"] = figure
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--products", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--database", default="cf_bench_publish", help="scratch database, dropped and recreated")
    parser.add_argument("--no-live", dest="live", action="store_false", help="a seller between LIVEs (no session running)")
    parser.add_argument("--cycle-creators", type=int, default=50, help="creators of the largest publishing cycle timed (0: none)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        raise SystemExit("publish_cost.py measures on PostgreSQL: set DATABASE_URL=postgres://... (a scratch database is made there)")
    database_recreate(base, args.database)
    # The servers' settings of the other benchmarks; publishing inline, so each call is timed whole.
    os.environ.update(server_env(database_url(base, args.database), os.environ.get("REDIS_URL", ""), argparse.Namespace(pool_max=8)))
    os.environ.update(CREATORFLOW_EXPIRE_IN_PROCESS="0", CREATORFLOW_PUBLISH_COALESCE="0")
    import django  # noqa: PLC0415

    django.setup()
    from realtime import fragments, publisher, services  # noqa: PLC0415

    started = time.monotonic()
    creator_id = seed(args)
    print(f"seeded 1 creator, {args.products} products, {args.orders} orders, {'a' if args.live else 'no'} LIVE session in {time.monotonic() - started:.0f} s")
    from creatorflow.changes import INVENTORY, ORDERS, SYNC, Change  # noqa: PLC0415
    from orders.models import Order  # noqa: PLC0415

    dashboards_open([creator_id])
    metric_types = {publisher.METRIC_TYPES_BY_TOPIC[topic] for topic in ORDER_TOPICS}
    whole = Change.of(*ORDER_TOPICS)  # the topics as a whole: every fragment of theirs re-rendered
    order = Order.objects.filter(creator_id=creator_id).order_by("-pk").prefetch_related("items").first()
    # As the order path marks a new order: its row, its products' rows, and the shop's webhook stream.
    committed = Change.of(ORDERS, ids=[order.pk])
    committed.add([INVENTORY], ids=[item.product_id for item in order.items.all()])
    committed.add([SYNC])
    names = fragments.fragments_to_push(creator_id=creator_id, topics=ORDER_TOPICS)
    figures = {"metrics_recompute": measure(lambda: services.metrics_recompute(creator_id=creator_id, metric_types=metric_types), args.repeat)}
    for name in names:
        figures[f"render {name}"] = measure(lambda name=name: fragments.fragments_render(creator_id=creator_id, names=[name]), args.repeat)
    figures["render all of an order's fragments, whole"] = measure(
        lambda: fragments.fragments_render(creator_id=creator_id, names=names), args.repeat
    )
    plan = fragments.push_plan(creator_id=creator_id, change=committed)
    figures["render an order as committed (its rows, whole fragments else)"] = measure(
        lambda: fragments.push_render(creator_id=creator_id, push=plan), args.repeat
    )
    figures["whole publish, fragments whole, no server loop (a command)"] = measure(
        lambda: publisher.changes_publish(creator_id, whole), args.repeat
    )
    server_loop_start()
    figures["whole publish, fragments whole, from a server process"] = measure(
        lambda: publisher.changes_publish(creator_id, whole), args.repeat
    )
    figures["whole publish of an order as committed, from a server process"] = measure(
        lambda: publisher.changes_publish(creator_id, committed), args.repeat
    )
    if args.cycle_creators:
        figures.update(cycle_figures(args))
    width = max(map(len, figures))
    print(f"\n{'what':<{width}}  wall ms  CPU ms  statements")
    for what, figure in figures.items():
        per_creator = f"  ({figure['cpu_ms_per_creator']:.2f} CPU ms a creator)" if "cpu_ms_per_creator" in figure else ""
        print(f"{what:<{width}}  {figure['wall_ms_median']:7.2f}  {figure['cpu_ms_median']:6.2f}  {figure['statements']:10d}{per_creator}")
    result = {
        "config": {"orders": args.orders, "products": args.products, "repeat": args.repeat, "live": args.live,
                   "channel_layer": "redis" if os.environ.get("REDIS_URL") else "in-memory"},
        "figures": figures,
        "load_average": round(os.getloadavg()[0], 2),
    }
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    main()
