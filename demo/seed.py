"""A demo creator with a shop, warehouses, products and a day of orders, for a first look."""

import random
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from inventory.models import Warehouse
from inventory.services.catalogue import product_upsert, warehouse_get_default
from inventory.services.stock import stock_restock
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event
from orders.shops import shop_connect

DEMO_PRODUCTS = [
    # external id, name, sku, stock, reorder point, unit cost, price
    ("1729384756001", "Velvet Matte Lipstick — Rosewood", "LIP-ROSE", 240, 40, "3.20", "14.99"),
    ("1729384756002", "Glow Serum 30 ml", "SER-GLOW", 95, 30, "6.10", "24.00"),
    ("1729384756003", "Silk Scrunchie 3-pack", "SCR-SILK", 18, 25, "1.05", "8.50"),
    ("1729384756004", "LED Ring Light 10\"", "LGT-RING", 0, 10, "11.40", "39.00"),
    ("1729384756005", "Travel Makeup Bag", "BAG-TRVL", 160, 20, "2.70", "12.00"),
    ("1729384756006", "Hydrating Lip Oil — Peach", "LIP-PEACH", 7, 30, "2.10", "11.00"),
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    password: str
    shop_id: str
    app_key: str
    app_secret: str


def demo_seed(*, username: str = "demo", password: str = "creatorflow-demo", orders: int = 40) -> DemoLogin:
    """Create (or refresh) the demo creator and give them a believable day of business."""
    login = DemoLogin(username, password, "7495812345678901234", "demo-app-key", "demo-app-secret")
    with transaction.atomic():
        shop, _ = shop_connect(
            username=username,
            shop_id=login.shop_id,
            app_key=login.app_key,
            app_secret=login.app_secret,
            password=password,
            timezone_name="UTC",
        )
        creator = shop.creator
        warehouse_get_default(creator_id=creator.pk)
        Warehouse.objects.get_or_create(
            creator=creator, external_id="WH-EAST", defaults={"name": "East coast fulfilment"}
        )
        products = []
        for external_id, name, sku, stock, reorder_point, cost, price in DEMO_PRODUCTS:
            product, created = product_upsert(
                creator_id=creator.pk,
                external_id=external_id,
                name=name,
                sku=sku,
                reorder_point=reorder_point,
                unit_cost=Decimal(cost),
            )
            if created and stock:
                stock_restock(product=product, quantity=stock, reference="demo opening stock")
            products.append((product, Decimal(price)))

    if get_user_model().objects.get(pk=creator.pk).orders.exists():
        return login
    rng = random.Random(2026)
    now = timezone.now()
    statuses = ["UNPAID", "AWAITING_SHIPMENT", "AWAITING_SHIPMENT", "IN_TRANSIT", "DELIVERED", "COMPLETED", "CANCELLED"]
    for number in range(orders):
        placed_at = now - timedelta(minutes=rng.randint(5, 24 * 60 - 5))
        lines = [
            OrderLine(product.external_id, rng.randint(1, 3), price)
            for product, price in rng.sample(products[:3] + products[4:], rng.randint(1, 2))
        ]
        total = sum(line.unit_price * line.quantity for line in lines)
        order_id = f"57{rng.randint(10**15, 10**16 - 1)}"
        order_apply_event(
            shop=shop,
            event=OrderEvent(order_id=order_id, status="UNPAID", updated_at=placed_at, placed_at=placed_at,
                             total_amount=total, currency="USD", lines=lines),
        )
        status = rng.choice(statuses)
        if status != "UNPAID":
            order_apply_event(
                shop=shop,
                event=OrderEvent(order_id=order_id, status=status, updated_at=placed_at + timedelta(minutes=rng.randint(2, 90)),
                                 total_amount=total, currency="USD"),
            )
    return login
