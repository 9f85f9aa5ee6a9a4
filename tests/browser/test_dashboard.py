"""The dashboard in a real Chromium against a real daphne server: login, live pushes, restarts, clicks."""

import re
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from playwright.sync_api import expect

from inventory.models import InventoryAlert, Stock
from inventory.services.catalogue import warehouse_get_or_create
from inventory.services.stock import stock_restock
from orders.models import Order, SyncOperation
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event

from .conftest import ARTIFACTS, log_in, order_document, webhook_post

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LIVE_UPDATE_MS = 1_000  # a pushed change must be on screen within a second
PATIENT_MS = 30_000  # page loads, reconnects after a restart, server start-up


def card_value(page, card_id: str):
    return page.locator(f"#{card_id} .card-value")


def connection_state(page):
    return page.locator("#connection-status")


def open_dashboard(page, browser_context, server, user) -> None:
    log_in(browser_context, server, user)
    page.goto("/")
    expect(connection_state(page)).to_have_attribute("data-state", "live", timeout=PATIENT_MS)


def place_order(shop, product, *, order_id: str, quantity: int, status: str = "AWAITING_SHIPMENT", placed_at=None):
    now = timezone.now()
    order, _ = order_apply_event(
        shop=shop,
        event=OrderEvent(
            order_id=order_id,
            status=status,
            updated_at=now,
            placed_at=placed_at or now,
            total_amount=Decimal("12.50") * quantity,
            currency="USD",
            lines=[OrderLine(product_id=product.external_id, quantity=quantity, unit_price=Decimal("12.50"))],
        ),
    )
    return order


def test_login_shows_the_four_cards_and_goes_live(page, server, make_creator):
    make_creator("carla", password="flash-sale-2024")

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.fill("#id_username", "carla")
    page.fill("#id_password", "flash-sale-2024")
    page.click("button[type=submit]")

    expect(connection_state(page)).to_have_attribute("data-state", "live", timeout=PATIENT_MS)
    expect(connection_state(page)).to_contain_text("Live")
    for label in ("Today's Orders", "Today's GMV", "Completed Revenue", "Short Orders", "Low Stock Items", "System Health"):
        expect(page.locator("#metric-cards")).to_contain_text(label)
    expect(card_value(page, "card-today-orders")).to_have_text("0")
    expect(page.locator("#updated-ago")).to_contain_text("Updated")
    expect(page.locator("#alert-banner")).to_be_hidden()


def test_signed_webhook_updates_the_cards_and_inventory_without_reload(page, browser_context, server, creator, shop, make_product):
    product = make_product(creator, stock=20, reorder_point=5, external_id="TT-LIVE", name="Live serum")
    open_dashboard(page, browser_context, server, creator)
    row = page.locator(f"#product-{product.pk}")
    expect(row.locator('[data-field="available"]')).to_have_text("20")
    expect(card_value(page, "card-today-orders")).to_have_text("0")
    page.evaluate("window.sameDocument = true")

    webhook_post(server, shop, order_document(shop, order_id="LIVE-1", items=[("TT-LIVE", 3)]))

    expect(card_value(page, "card-today-orders")).to_have_text("1", timeout=LIVE_UPDATE_MS)
    expect(row.locator('[data-field="available"]')).to_have_text("17", timeout=LIVE_UPDATE_MS)
    expect(row.locator('[data-field="reserved"]')).to_have_text("3")
    expect(page.locator("#recent-orders")).to_contain_text("LIVE-1")
    assert page.evaluate("window.sameDocument") is True  # no reload happened


def test_a_flash_sale_updates_the_page_live(page, browser_context, server, creator, shop, make_product):
    hot = [
        make_product(creator, stock=500, reorder_point=20, unit_cost="6.00", external_id=f"HOT-{number}", name=f"Hot lip oil {number}")
        for number in range(3)
    ]
    open_dashboard(page, browser_context, server, creator)
    page.evaluate("window.sameDocument = true")
    orders = 40

    sale = subprocess.Popen(
        [sys.executable, "manage.py", "simulate_flash_sale", "--url", f"{server.url}/webhooks/tiktok/",
         "--shop-id", shop.shop_id, "--orders", str(orders), "--rate", "20", "--seed", "7"],
        cwd=settings.BASE_DIR, env=server.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        # The first orders show while the sale is still running (at 20/s it lasts 2 s at least).
        first_seen = page.wait_for_function(
            "() => { const n = parseInt(document.querySelector('#card-today-orders .card-value').textContent);"
            " return n > 0 ? n : null; }",
            timeout=PATIENT_MS,
        ).json_value()
        output, _ = sale.communicate(timeout=120)
    finally:
        if sale.poll() is None:
            sale.kill()
            sale.wait()
    assert sale.returncode == 0, output
    assert 0 < first_seen < orders

    expect(card_value(page, "card-today-orders")).to_have_text(str(orders), timeout=PATIENT_MS)
    for product in hot:
        reserved = Stock.objects.filter(product=product).aggregate(total=Sum("reserved"))["total"]
        expect(page.locator(f'#product-{product.pk} [data-field="reserved"]')).to_have_text(str(reserved))
    expect(page.locator("#recent-orders tbody tr")).to_have_count(15)
    assert page.evaluate("window.sameDocument") is True


ROW_LISTS_SCRIPT = """() => Object.fromEntries(['recent-orders-rows', 'inventory-rows', 'alert-rows'].map(id =>
    [id, Array.from(document.getElementById(id).children).map(row => [row.id, row.textContent.replace(/\\s+/g, ' ').trim()])]))"""


def test_pushed_rows_leave_every_list_as_a_fresh_render_shows_it(page, browser_context, server, creator, shop, make_product):
    """Orders and stock rows are pushed one by one; late deliveries land in their place, lists keep their length."""
    products = [
        make_product(creator, stock=stock, reorder_point=10, external_id=f"ROW-{number}", name=f"Row serum {number}")
        for number, stock in enumerate((60, 30, 14))
    ]
    open_dashboard(page, browser_context, server, creator)
    page.evaluate("window.sameDocument = true")
    orders = 24
    # Placed out of order over the last 24 seconds, every one of them today (the card counts today's
    # orders, and the creator's day is UTC's): just after midnight, wait until they all fit in it.
    time.sleep(max(0, orders + 5 - time.time() % 86_400))
    now = int(time.time())
    for number in range(orders):
        document = order_document(shop, order_id=f"ROW-{number}", items=[(f"ROW-{number % 3}", 1 + number % 2)])
        document["data"]["create_time"] = now - (number * 7) % orders
        webhook_post(server, shop, document)

    expect(card_value(page, "card-today-orders")).to_have_text(str(orders), timeout=PATIENT_MS)
    for product in products:
        available = Stock.objects.filter(product=product).aggregate(total=Sum("available"))["total"]
        expect(page.locator(f'#product-{product.pk} [data-field="available"]')).to_have_text(str(available), timeout=PATIENT_MS)
    expect(page.locator("#recent-orders-rows tr")).to_have_count(15)

    fresh = browser_context.new_page()
    fresh.goto("/")
    expect(connection_state(fresh)).to_have_attribute("data-state", "live", timeout=PATIENT_MS)
    # Each list's rows come in a frame of their own: give the last ones a moment to land.
    deadline = time.monotonic() + PATIENT_MS / 1000
    while (live := page.evaluate(ROW_LISTS_SCRIPT)) != fresh.evaluate(ROW_LISTS_SCRIPT) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert live == fresh.evaluate(ROW_LISTS_SCRIPT)
    assert [row_id for row_id, _ in live["recent-orders-rows"]][:1] == [f"order-{Order.objects.get(external_id='ROW-0').pk}"]
    assert page.evaluate("window.sameDocument") is True


def test_server_restart_shows_disconnected_then_live_with_current_numbers(page, browser_context, server, creator, shop, make_product):
    product = make_product(creator, stock=10, external_id="TT-RESTART")
    open_dashboard(page, browser_context, server, creator)
    expect(card_value(page, "card-today-orders")).to_have_text("0")

    server.stop()
    try:
        expect(connection_state(page)).to_have_attribute("data-state", "disconnected", timeout=PATIENT_MS)
        expect(connection_state(page)).to_contain_text("Disconnected")
        # Committed while the page is cut off: only the snapshot on reconnect can bring it.
        place_order(shop, product, order_id="WHILE-DOWN", quantity=2)
    finally:
        server.start()

    expect(connection_state(page)).to_have_attribute("data-state", "live", timeout=PATIENT_MS)
    expect(card_value(page, "card-today-orders")).to_have_text("1", timeout=PATIENT_MS)
    expect(page.locator(f'#product-{product.pk} [data-field="available"]')).to_have_text("8")


def test_acknowledge_an_alert_by_clicking(page, browser_context, server, creator, make_product):
    make_product(creator, stock=2, reorder_point=10, name="Scarce serum")
    alert = InventoryAlert.objects.get(creator=creator, status="active")
    assert alert.severity == "critical"
    open_dashboard(page, browser_context, server, creator)
    item = page.locator(f"#alert-{alert.pk}")
    expect(page.locator("#alert-banner")).to_be_visible()
    expect(page.locator("#alert-banner .banner-count")).to_have_text("1")

    item.get_by_role("button", name="Acknowledge").click()

    expect(item).to_have_attribute("data-status", "acknowledged", timeout=PATIENT_MS)
    expect(item.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.locator("#alert-banner")).to_be_hidden()
    alert.refresh_from_db()
    assert alert.status == "acknowledged"
    assert alert.acknowledged_by_id == creator.pk


def test_a_new_critical_alert_notifies_once(page, browser_context, server, creator, shop, make_product):
    product = make_product(creator, stock=20, reorder_point=10, external_id="TT-NOTIFY", name="Viral serum")
    # Record notifications instead of showing them (the browser's API, not CreatorFlow's code).
    page.add_init_script(
        """
        window.shownNotifications = [];
        window.Notification = class {
          constructor(title, options) { window.shownNotifications.push({title, tag: options.tag}); }
          static get permission() { return "granted"; }
          static requestPermission() { return Promise.resolve("granted"); }
        };
        """
    )
    open_dashboard(page, browser_context, server, creator)

    webhook_post(server, shop, order_document(shop, order_id="N-1", items=[("TT-NOTIFY", 16)]))  # 4 left: critical
    page.wait_for_function("window.shownNotifications.length >= 1", timeout=PATIENT_MS)
    alert = InventoryAlert.objects.get(product=product, type="low_stock", status="active")
    webhook_post(server, shop, order_document(shop, order_id="N-2", items=[("TT-NOTIFY", 1)]))  # same alert, updated
    expect(page.locator(f'#product-{product.pk} [data-field="available"]')).to_have_text("3", timeout=PATIENT_MS)
    expect(page.locator(f"#alert-{alert.pk}")).to_contain_text("3 available")

    shown = page.evaluate("window.shownNotifications")
    assert shown == [{"title": "Low stock: Viral serum", "tag": f"creatorflow-alert-{alert.pk}"}]


def test_warehouse_filter_narrows_the_table_and_stays_through_pushes(page, browser_context, server, creator, shop, make_product):
    in_main = make_product(creator, stock=30, external_id="TT-MAIN", name="Main shelf serum")
    elsewhere = make_product(creator, external_id="TT-SECOND", name="Second shelf serum")
    second = warehouse_get_or_create(creator_id=creator.pk, external_id="WH-2")
    stock_restock(product=elsewhere, quantity=12, warehouse=second)
    open_dashboard(page, browser_context, server, creator)

    page.select_option("select[name=warehouse]", str(second.pk))

    expect(page.locator(f"#product-{in_main.pk}")).to_have_count(0, timeout=PATIENT_MS)
    expect(page.locator(f"#product-{elsewhere.pk}")).to_be_visible()
    expect(page).to_have_url(re.compile(rf"warehouse={second.pk}"))

    webhook_post(server, shop, order_document(shop, order_id="F-1", items=[("TT-SECOND", 2), ("TT-MAIN", 1)]))
    expect(page.locator(f'#product-{elsewhere.pk} [data-field="available"]')).to_have_text("10", timeout=PATIENT_MS)
    expect(card_value(page, "card-today-orders")).to_have_text("1")
    expect(page.locator(f"#product-{in_main.pk}")).to_have_count(0)
    expect(page.locator("select[name=warehouse]")).to_have_value(str(second.pk))


def _sale_in_progress(creator, shop, make_product):
    """A creator two hours into a LIVE sale: busy hours, a short SKU, a resync underway."""
    catalogue = [
        ("Glow serum 30 ml", "GLOW-30", 400, 40),
        ("Hydra mist 100 ml", "MIST-100", 150, 30),
        ("Lip oil — cherry", "LIP-CH", 24, 20),
        ("Lip oil — fig", "LIP-FIG", 60, 20),
        ("Sheet mask 5-pack", "MASK-5", 9, 25),
        ("Travel kit", "KIT-T", 80, 10),
    ]
    products = [
        make_product(creator, stock=stock, reorder_point=reorder, name=name, sku=sku, external_id=sku, unit_cost="4.00")
        for name, sku, stock, reorder in catalogue
    ]
    now = timezone.now()
    plan = [(20, 0, 3), (16, 1, 2), (13, 0, 1), (9, 2, 2), (7, 3, 1), (5, 0, 4), (3, 1, 2), (2, 5, 1), (1, 0, 6), (0, 2, 3), (0, 3, 2)]
    statuses = ["COMPLETED", "DELIVERED", "IN_TRANSIT", "AWAITING_SHIPMENT", "ON_HOLD", "UNPAID"]
    number = 0
    for hours_ago, product_index, per_hour in plan:
        for minute in range(per_hour):
            number += 1
            place_order(
                shop,
                products[product_index],
                order_id=f"5771{number:04d}",
                quantity=1 + number % 3,
                status=statuses[min(len(statuses) - 1, (len(plan) - hours_ago // 2) % len(statuses) if hours_ago > 4 else number % len(statuses))],
                placed_at=now - timedelta(hours=hours_ago, minutes=minute * 7),
            )
    place_order(shop, products[4], order_id="57719999", quantity=20)  # more than available: flagged
    SyncOperation.objects.create(
        creator=creator,
        shop=shop,
        type=SyncOperation.Type.RESYNC,
        status=SyncOperation.Status.RUNNING,
        entity_count=1200,
        processed_count=780,
        started_at=now - timedelta(minutes=3),
        estimated_completion=now + timedelta(minutes=2),
    )
    SyncOperation.objects.create(
        creator=creator,
        shop=shop,
        type=SyncOperation.Type.RESYNC,
        target="products",
        status=SyncOperation.Status.COMPLETED,
        entity_count=240,
        processed_count=240,
        started_at=now - timedelta(hours=2),
        completed_at=now - timedelta(hours=2) + timedelta(minutes=4),
    )
    return products


@pytest.mark.parametrize(
    ("file_name", "options"),
    [
        ("dashboard.png", {"viewport": {"width": 1440, "height": 1000}, "color_scheme": "light"}),
        ("dashboard-dark.png", {"viewport": {"width": 1440, "height": 1000}, "color_scheme": "dark"}),
        ("dashboard-mobile.png", {"viewport": {"width": 390, "height": 844}, "color_scheme": "light"}),
    ],
)
def test_dashboard_screenshot(chromium, server, creator, shop, make_product, file_name, options):
    _sale_in_progress(creator, shop, make_product)
    context = chromium.new_context(base_url=server.url, **options)
    try:
        page = context.new_page()
        open_dashboard(page, context, server, creator)
        expect(page.locator("#alert-banner")).to_be_visible()
        expect(page.locator("#recent-orders tr[data-flagged=true]")).to_have_count(1)
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / file_name
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 10_000
    finally:
        context.close()
