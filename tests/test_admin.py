"""The admin: staff tools that go through the same services as the dashboard."""

from decimal import Decimal

import pytest
from django.utils import timezone

from inventory.models import InventoryAlert, StockMovement
from inventory.services.stock import stock_set_on_hand
from orders.models import ShopConnection
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_creator):
    return make_creator("ops", is_staff=True, is_superuser=True)


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_alert_list_filters_by_severity_status_type_and_creator(staff_client, creator, make_creator, make_product):
    stock_set_on_hand(product=make_product(creator, name="Empty lipstick"), quantity=0)
    make_product(make_creator("bob"), stock=8, reorder_point=10, name="Low balm")
    page = staff_client.get("/admin/inventory/inventoryalert/?severity__exact=emergency")
    assert page.status_code == 200
    assert b"Empty lipstick" in page.content and b"Low balm" not in page.content
    for query in ("status__exact=active", "type__exact=low_stock", f"creator__id__exact={creator.pk}", "q=balm"):
        assert staff_client.get(f"/admin/inventory/inventoryalert/?{query}").status_code == 200
    assert b"Low balm" in staff_client.get("/admin/inventory/inventoryalert/?q=balm").content


def test_alert_actions_acknowledge_and_resolve_through_the_services(staff_client, staff, creator, make_product):
    stock_set_on_hand(product=make_product(creator), quantity=0)
    alert = InventoryAlert.objects.get()
    staff_client.post("/admin/inventory/inventoryalert/", {"action": "acknowledge", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert (alert.status, alert.acknowledged_by) == ("acknowledged", staff)
    staff_client.post("/admin/inventory/inventoryalert/", {"action": "resolve", "_selected_action": [alert.pk]})
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_at is not None


def test_product_reorder_point_change_re_evaluates_alerts(staff_client, creator, make_product):
    product = make_product(creator, stock=8, reorder_point=5)
    assert not InventoryAlert.objects.exists()
    response = staff_client.post(
        f"/admin/inventory/product/{product.pk}/change/",
        {"name": product.name, "sku": product.sku, "reorder_point": 20, "unit_cost": "2.00",
         "stocks-TOTAL_FORMS": "1", "stocks-INITIAL_FORMS": "1", "stocks-MIN_NUM_FORMS": "0",
         "stocks-MAX_NUM_FORMS": "1000"},
    )
    assert response.status_code == 302, response.content[:2000]
    alert = InventoryAlert.objects.get()
    assert (alert.type, alert.severity) == ("low_stock", "critical")


def test_stock_is_read_only_in_the_admin(staff_client, creator, make_product):
    product = make_product(creator, stock=8)
    stock = product.stocks.get()
    page = staff_client.get(f"/admin/inventory/stock/{stock.pk}/change/")
    assert page.status_code == 200
    assert b'name="on_hand"' not in page.content
    assert b"restock" in page.content  # the ledger inline
    staff_client.post(f"/admin/inventory/stock/{stock.pk}/change/", {"on_hand": 999, "reserved": 0})
    stock.refresh_from_db()
    assert stock.on_hand == 8
    assert StockMovement.objects.count() == 1


def test_order_page_shows_items_and_their_reservations(staff_client, shop, creator, make_product):
    product = make_product(creator, stock=10, name="Glow serum")
    order, _ = order_apply_event(shop=shop, event=OrderEvent(
        order_id="5700123", status="UNPAID", updated_at=timezone.now(), total_amount=Decimal("20"),
        lines=[OrderLine(product.external_id, 2, Decimal("10"))]))
    page = staff_client.get(f"/admin/orders/order/{order.pk}/change/")
    assert page.status_code == 200
    assert b"Glow serum" in page.content
    assert b"2 \xc3\x97 Main warehouse (active, expires" in page.content
    assert b"5700123" in staff_client.get("/admin/orders/order/?status__exact=UNPAID").content


def test_shop_connection_admin_never_shows_the_app_secret(staff_client, shop):
    page = staff_client.get(f"/admin/orders/shopconnection/{shop.pk}/change/")
    assert page.status_code == 200
    assert shop.app_secret.encode() not in page.content
    fields = {"creator": shop.creator_id, "shop_id": shop.shop_id, "app_key": "new-key", "app_secret": "",
              "access_token": "", "shop_cipher": "", "api_base_url": shop.api_base_url}
    assert staff_client.post(f"/admin/orders/shopconnection/{shop.pk}/change/", fields).status_code == 302
    shop.refresh_from_db()
    assert (shop.app_key, shop.app_secret) == ("new-key", "app-secret")
    fields["app_secret"] = "rotated-secret"
    staff_client.post(f"/admin/orders/shopconnection/{shop.pk}/change/", fields)
    assert ShopConnection.objects.get().app_secret == "rotated-secret"


def test_shop_connection_admin_toggles_stock_write_back(staff_client, shop):
    url = f"/admin/orders/shopconnection/{shop.pk}/change/"
    assert b'name="stock_write_back"' in staff_client.get(url).content
    fields = {"creator": shop.creator_id, "shop_id": shop.shop_id, "app_key": shop.app_key, "app_secret": "",
              "access_token": "", "shop_cipher": "", "api_base_url": shop.api_base_url, "stock_write_back": "on"}
    assert staff_client.post(url, fields).status_code == 302
    assert ShopConnection.objects.get().stock_write_back is True
    del fields["stock_write_back"]
    staff_client.post(url, fields)
    assert ShopConnection.objects.get().stock_write_back is False


def test_non_staff_creator_cannot_open_the_admin(client, creator):
    client.force_login(creator)
    response = client.get("/admin/inventory/inventoryalert/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
