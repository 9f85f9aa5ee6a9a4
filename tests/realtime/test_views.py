"""The dashboard page, login, and the htmx alert actions."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from inventory.models import InventoryAlert
from inventory.services.catalogue import warehouse_get_or_create
from inventory.services.stock import stock_restock
from orders.models import SyncOperation

pytestmark = pytest.mark.django_db

FRAGMENT_IDS = (
    "live-header",
    "metric-cards",
    "alert-banner",
    "alert-list",
    "inventory-table",
    "recent-orders",
    "orders-chart",
    "sync-operations",
)


def _element(html: str, element_id: str) -> str:
    """Return the opening tag and content of the element with ``element_id`` (up to the next fragment)."""
    start = html.index(f'id="{element_id}"')
    return html[html.rindex("<", 0, start) :]


def _card_value(html: str, card_id: str) -> str:
    """The card's figure as text, without its currency (checked apart)."""
    card = _element(html, card_id)
    value = re.search(r'class="card-value[^"]*"[^>]*>(.*?)</p>', card, re.S).group(1)
    value = re.sub(r'<span class="currency">[^<]*</span>', "", value)
    return re.sub(r"<[^>]+>", "", value).strip()


def _card_currency(html: str, card_id: str) -> str | None:
    found = re.search(r'<span class="currency">([^<]*)</span>', _element(html, card_id).split("</article>")[0])
    return found.group(1) if found else None


def test_dashboard_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_login_with_username_and_password_lands_on_the_dashboard(client, creator):
    page = client.get(reverse("login"))
    assert page.status_code == 200
    assert b'name="password"' in page.content

    response = client.post(reverse("login"), {"username": "alice", "password": "pass-1234"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert b"Today's Orders" in response.content


def test_login_with_a_wrong_password_shows_an_error(client, creator):
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert response.status_code == 200
    assert b"form-error" in response.content


def test_logout_ends_the_session(logged_in_client):
    response = logged_in_client.post(reverse("logout"))
    assert response.status_code == 302
    assert logged_in_client.get("/").status_code == 302


def test_dashboard_renders_every_fragment_once_with_its_stable_id(logged_in_client):
    html = logged_in_client.get("/").content.decode()
    for fragment_id in FRAGMENT_IDS:
        assert html.count(f'id="{fragment_id}"') == 1, fragment_id
    assert 'ws-connect="/ws/dashboard/"' in html
    assert "hx-ws-2" in html  # the ws extension vendored by django-htmx


def test_dashboard_cards_show_the_creators_figures(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=100, reorder_point=10)
    make_product(creator, stock=3, reorder_point=10)
    place_order(shop, product, quantity=2, status="COMPLETED", price="12.50")
    place_order(shop, product, quantity=1, status="AWAITING_SHIPMENT", price="12.50")

    html = logged_in_client.get("/").content.decode()

    assert _card_value(html, "card-today-orders") == "2"
    assert _card_value(html, "card-total-revenue") == "25.00"
    assert _card_value(html, "card-gmv-today") == "37.50"  # paid today: the completed and the awaiting one
    assert _card_currency(html, "card-gmv-today") == "USD"  # no order carries one: the default
    assert _card_value(html, "card-low-stock") == "1"
    assert "Nominal" in _card_value(html, "card-system-health")


def test_dashboard_of_a_brand_new_creator_shows_zeroes(logged_in_client):
    html = logged_in_client.get("/").content.decode()
    assert _card_value(html, "card-today-orders") == "0"
    assert _card_value(html, "card-total-revenue") == "0.00"
    assert "No orders yet." in html
    assert "No products yet." in html


def test_dashboard_never_shows_another_creators_data(logged_in_client, make_creator, make_shop, make_product, place_order):
    other = make_creator("bob")
    product = make_product(other, stock=5, name="Bob's secret serum")
    place_order(make_shop(other), product, order_id="BOB-ORDER-1")

    html = logged_in_client.get("/").content.decode()

    assert "Bob&#x27;s secret serum" not in html
    assert "BOB-ORDER-1" not in html
    assert _card_value(html, "card-today-orders") == "0"


def test_alert_banner_is_hidden_without_critical_alerts_and_counts_them(logged_in_client, creator, make_product):
    make_product(creator, stock=9, reorder_point=10)  # warning only
    banner = _element(logged_in_client.get("/").content.decode(), "alert-banner")
    assert banner.split(">", 1)[0].endswith(" hidden")

    make_product(creator, stock=2, reorder_point=10)  # critical
    make_product(creator, stock=0, reorder_point=10)  # no stock row, but a product: emergency on first evaluation
    html = logged_in_client.get("/").content.decode()
    banner = _element(html, "alert-banner")
    urgent = InventoryAlert.objects.filter(
        creator=creator, status="active", severity__in=["critical", "emergency"]
    ).count()
    assert urgent >= 1
    assert " hidden" not in banner.split(">", 1)[0]
    assert f'<strong class="banner-count">{urgent}</strong>' in banner


def test_inventory_table_shows_figures_badges_and_stockout_eta(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=30, reorder_point=10, name="Glow serum")
    place_order(shop, product, quantity=24)  # 24 units in 24 h: velocity 1/h, 6 available

    html = logged_in_client.get("/").content.decode()
    row = _element(html, f"product-{product.pk}").split("</tr>", 1)[0]

    assert 'data-field="on_hand">30<' in row
    assert 'data-field="available">6<' in row
    assert 'data-field="reserved">24<' in row
    assert ">Low<" in row
    assert 'data-field="stockout_eta">6 h<' in row


def test_inventory_table_filters_by_warehouse(logged_in_client, creator, make_product):
    in_main = make_product(creator, stock=40, name="Main only")
    elsewhere = make_product(creator, stock=0, name="Elsewhere only")
    second = warehouse_get_or_create(creator_id=creator.pk, external_id="WH-2")
    stock_restock(product=elsewhere, quantity=7, warehouse=second)

    html = logged_in_client.get("/", {"warehouse": second.pk}).content.decode()
    table = _element(html, "inventory-table")

    assert f'id="product-{elsewhere.pk}"' in table
    assert f'id="product-{in_main.pk}"' not in table
    assert f'<option value="{second.pk}" selected>' in table


def test_recent_orders_filter_by_status_and_mark_flagged_orders(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=2)
    shipped = place_order(shop, product, quantity=1, status="IN_TRANSIT", order_id="SHIPPED-1")
    short = place_order(shop, product, quantity=50, order_id="SHORT-1")  # more than available: flagged
    short.refresh_from_db()
    assert "insufficient_stock" in short.flags

    html = logged_in_client.get("/").content.decode()
    orders = _element(html, "recent-orders")
    assert 'data-order-id="SHORT-1" data-status="AWAITING_SHIPMENT"' in orders
    flagged_row = _element(orders, f"order-{short.pk}").split("</tr>", 1)[0]
    assert 'data-flagged="true"' in flagged_row
    assert "Insufficient stock" in flagged_row

    filtered = _element(logged_in_client.get("/", {"status": "IN_TRANSIT"}).content.decode(), "recent-orders")
    assert f'id="order-{shipped.pk}"' in filtered
    assert f'id="order-{short.pk}"' not in filtered


def test_orders_chart_has_24_hourly_bars_with_this_hours_orders(logged_in_client, creator, shop, make_product, place_order):
    product = make_product(creator, stock=10)
    place_order(shop, product)
    place_order(shop, product)

    chart = _element(logged_in_client.get("/").content.decode(), "orders-chart").split("</svg>", 1)[0]
    counts = re.findall(r'data-count="(\d+)"', chart)
    assert len(counts) == 24
    assert counts[-1] == "2"
    assert sum(int(count) for count in counts) == 2


def test_sync_operations_show_progress(logged_in_client, creator, shop):
    SyncOperation.objects.create(
        creator=creator, shop=shop, type="resync", status="running", entity_count=200, processed_count=50
    )
    panel = _element(logged_in_client.get("/").content.decode(), "sync-operations")
    assert 'value="25"' in panel
    assert "50 of 200 processed (25%)" in panel


# --- alert actions -----------------------------------------------------------------------------


@pytest.fixture
def urgent_alert(creator, make_product):
    make_product(creator, stock=1, reorder_point=10)
    return InventoryAlert.objects.get(creator=creator, status="active")


def test_acknowledge_by_htmx_returns_the_alert_fragments_out_of_band(logged_in_client, urgent_alert):
    response = logged_in_client.post(
        reverse("alert-acknowledge", args=[urgent_alert.pk]), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    urgent_alert.refresh_from_db()
    assert urgent_alert.status == "acknowledged"
    html = response.content.decode()
    for fragment_id in ("alert-list", "alert-banner", "metric-cards"):
        assert f'id="{fragment_id}"' in html
    assert html.count('hx-swap-oob="true"') == 3
    assert "Acknowledge</button>" not in html  # the acknowledged alert only offers Resolve now
    assert " hidden" in _element(html, "alert-banner").split(">", 1)[0]


def test_resolve_by_htmx_removes_the_alert_from_the_list(logged_in_client, urgent_alert):
    response = logged_in_client.post(reverse("alert-resolve", args=[urgent_alert.pk]), headers={"HX-Request": "true"})
    urgent_alert.refresh_from_db()
    assert urgent_alert.status == "resolved"
    assert f'id="alert-{urgent_alert.pk}"' not in response.content.decode()


def test_acknowledge_without_htmx_redirects_to_the_dashboard(logged_in_client, urgent_alert):
    response = logged_in_client.post(reverse("alert-acknowledge", args=[urgent_alert.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")


def test_alert_actions_need_a_csrf_token(creator, urgent_alert):
    client = Client(enforce_csrf_checks=True)
    client.force_login(creator)
    response = client.post(reverse("alert-acknowledge", args=[urgent_alert.pk]), headers={"HX-Request": "true"})
    assert response.status_code == 403
    urgent_alert.refresh_from_db()
    assert urgent_alert.status == "active"

    page = client.get("/")
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page.content.decode()).group(1)
    response = client.post(
        reverse("alert-acknowledge", args=[urgent_alert.pk]), headers={"HX-Request": "true", "X-CSRFToken": token}
    )
    assert response.status_code == 200
    urgent_alert.refresh_from_db()
    assert urgent_alert.status == "acknowledged"


def test_another_creators_alert_is_not_found(client, make_creator, urgent_alert):
    intruder = make_creator("mallory")
    client.force_login(intruder)
    for name in ("alert-acknowledge", "alert-resolve"):
        response = client.post(reverse(name, args=[urgent_alert.pk]), headers={"HX-Request": "true"})
        assert response.status_code == 404
    urgent_alert.refresh_from_db()
    assert urgent_alert.status == "active"


def test_alert_actions_refuse_get_and_anonymous(client, urgent_alert):
    assert client.post(reverse("alert-acknowledge", args=[urgent_alert.pk])).status_code == 302  # to login
    client.force_login(urgent_alert.creator)
    assert client.get(reverse("alert-acknowledge", args=[urgent_alert.pk])).status_code == 405
