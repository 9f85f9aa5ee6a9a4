"""What the dashboard says: alerts in priority order, out of stock in words, flagged orders, honest health."""

import pytest

from creatorflow.health import health_record
from inventory.models import InventoryAlert
from inventory.services.alerts import alert_acknowledge
from inventory.services.stock import stock_set_on_hand
from orders.models import SyncOperation
from realtime import fragments

pytestmark = pytest.mark.django_db


def _render(creator, name, **filters):
    return fragments.fragments_render(
        creator_id=creator.pk, names=[name], filters=fragments.DashboardFilters(**filters)
    )[name]


def test_open_alerts_come_in_priority_order_emergency_first(creator, make_product):
    make_product(creator, stock=9, reorder_point=10, name="Warning serum")
    make_product(creator, stock=3, reorder_point=10, name="Critical serum")
    gone = make_product(creator, reorder_point=10, name="Gone serum")
    stock_set_on_hand(product=gone, quantity=0)
    # Acknowledged, the emergency still comes before the active critical and warning alerts.
    alert_acknowledge(alert=InventoryAlert.objects.get(product=gone), by=creator)

    html = _render(creator, fragments.ALERT_LIST)

    severities = [item.split('data-severity="')[1].split('"')[0] for item in html.split('<li class="alert ')[1:]]
    assert severities == ["emergency", "critical", "warning"]
    assert "max-height" not in html


def test_an_out_of_stock_row_says_so_instead_of_a_zero_hour_eta(creator, shop, make_product, place_order):
    product = make_product(creator, stock=2, reorder_point=5)
    place_order(shop, product, quantity=2)

    row = _render(creator, fragments.INVENTORY_TABLE).split(f'id="product-{product.pk}"')[1].split("</tr>")[0]

    assert 'data-field="stockout_eta">Out of stock<' in row
    assert "0 h" not in row


def test_the_flagged_filter_shows_only_flagged_orders(creator, shop, make_product, place_order):
    product = make_product(creator, stock=1)
    fine = place_order(shop, product, quantity=1, order_id="FINE-1")
    short = place_order(shop, product, quantity=5, order_id="SHORT-1")

    html = _render(creator, fragments.RECENT_ORDERS, status=fragments.FLAGGED)

    assert short.external_id in html and fine.external_id not in html
    assert fragments.filters_parse(creator_id=creator.pk, data={"status": "flagged"}).status == fragments.FLAGGED


def test_system_health_is_not_green_over_a_failed_sync(creator, shop):
    health_record(component="webhooks", status="nominal")
    SyncOperation.objects.create(creator=creator, shop=shop, type=SyncOperation.Type.RESYNC, status="failed",
                                 completed_at="2024-01-01T00:00:00Z", last_error="TikTok answered 500")

    cards = _render(creator, fragments.METRIC_CARDS)
    health = cards.split('id="card-system-health"')[1].split("</article>")[0]

    assert 'data-tone="warning"' in health
    assert "Nominal" not in health
    assert "Sync failed" in health


def test_a_seller_without_a_shop_sees_how_to_connect_one(client, creator):
    client.force_login(creator)
    html = client.get("/").content.decode()

    assert 'id="onboarding"' in html
    assert "http://testserver/webhooks/tiktok/" in html and 'data-copy="onboarding-webhook-url"' in html
    assert "HMAC-SHA256" in html
    assert "shop_connect alice" in html and "simulate_flash_sale --url http://testserver/webhooks/tiktok/" in html


def test_onboarding_goes_once_the_shop_has_products(client, creator, shop, make_product):
    client.force_login(creator)
    assert "--shop-id shop-1 --orders 1" in client.get("/").content.decode()  # a shop, no products yet

    make_product(creator, stock=1)

    assert 'id="onboarding"' not in client.get("/").content.decode()


def _card_sub(html: str, card_id: str) -> str:
    card = html.split(f'id="{card_id}"')[1].split("</article>")[0]
    return " ".join(card.split('class="card-sub">')[1].split("</p>")[0].replace("</a>", "").split(">")[-1].split())


def test_each_card_sub_line_counts_one_thing(creator, shop, make_product, place_order):
    scarce = make_product(creator, stock=1, reorder_point=10)
    plenty = make_product(creator, stock=100, reorder_point=10)
    place_order(shop, plenty, quantity=1)
    place_order(shop, scarce, quantity=5)  # 1 in stock: short, all five units
    place_order(shop, plenty, quantity=2)

    html = _render(creator, fragments.METRIC_CARDS)

    assert _card_sub(html, "card-today-orders") == "3 orders in total"
    assert _card_sub(html, "card-short-orders") == "5 units not in stock"
    assert _card_sub(html, "card-low-stock") == "of 2 products"  # products, not alerts


def test_an_amount_without_a_currency_shows_its_shops(creator, shop, make_product, place_order):
    shop.currency = "EUR"
    shop.save()
    product = make_product(creator, stock=10)
    plain = place_order(shop, product)  # the seller's own webhook shape carries no currency

    orders = _render(creator, fragments.RECENT_ORDERS)
    cards = _render(creator, fragments.METRIC_CARDS)

    row = orders.split(f'id="order-{plain.pk}"')[1].split("</tr>")[0]
    assert '<span class="cell-sub-inline">EUR</span>' in row
    assert 'data-metric="orders.gmv_today">10.00 <span class="currency">EUR</span>' in cards
