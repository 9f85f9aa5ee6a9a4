"""The TikTok Shop API client, against the local fake TikTok Shop (which verifies every signature)."""

import socket
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orders.events import OrderError
from orders.payloads import order_event_from_api
from orders.tiktok import TikTokAuthError, TikTokClient, TikTokError, TikTokUnavailable, request_sign
from tests.fake_tiktok import FakeTikTokShop, expected_sign


def _client(fake: FakeTikTokShop, **overrides) -> TikTokClient:
    options = {
        "base_url": fake.base_url,
        "app_key": fake.app_key,
        "app_secret": fake.app_secret,
        "access_token": fake.access_token,
        "shop_cipher": fake.shop_cipher,
        "backoff": 0,
        "sleep": lambda seconds: None,
    }
    return TikTokClient(**{**options, **overrides})


def test_request_sign_follows_the_documented_recipe():
    params = {"timestamp": 1_700_000_000, "app_key": "k", "shop_cipher": "c", "access_token": "t", "sign": "x"}

    sign = request_sign(app_secret="s", path="/order/202309/orders", params=params, body=b'{"a":1}')

    assert sign == expected_sign("s", "/order/202309/orders", {k: str(v) for k, v in params.items()}, b'{"a":1}')
    assert sign != request_sign(app_secret="s", path="/order/202309/orders", params=params, body=b"")
    assert sign == request_sign(app_secret="s", path="/order/202309/orders", params={**params, "access_token": "z"},
                                body=b'{"a":1}')


def test_orders_get_returns_order_detail_from_a_signed_request(fake_tiktok):
    fake_tiktok.order_add("O-1", lines=[("P-1", 2, "3.00")])
    fake_tiktok.order_add("O-2")

    orders = _client(fake_tiktok).orders_get(order_ids=["O-1", "O-2"])

    assert [order["id"] for order in orders] == ["O-1", "O-2"]
    (seen,) = fake_tiktok.requests
    assert (seen.status, seen.query["ids"], seen.query["shop_cipher"]) == (200, "O-1,O-2", "cipher-1")
    assert "access_token" not in seen.query


def test_orders_get_refuses_more_than_fifty_ids(fake_tiktok):
    with pytest.raises(ValueError, match="1 to 50"):
        _client(fake_tiktok).orders_get(order_ids=[str(n) for n in range(51)])
    assert fake_tiktok.requests == []


def test_orders_search_follows_next_page_token_to_the_end(fake_tiktok):
    for number in range(7):
        fake_tiktok.order_add(f"O-{number}", update_time=1_700_000_000 + number)

    orders = list(_client(fake_tiktok).orders_iterate(page_size=3))

    assert [order["id"] for order in orders] == [f"O-{n}" for n in range(7)]
    assert [seen.query.get("page_token", "") for seen in fake_tiktok.requests] == ["", "page-3", "page-6"]
    assert all(seen.method == "POST" and seen.status == 200 for seen in fake_tiktok.requests)


def test_orders_search_sends_since_as_update_time_lower_bound(fake_tiktok):
    fake_tiktok.order_add("OLD", update_time=1_600_000_000)
    fake_tiktok.order_add("NEW", update_time=1_700_000_100)

    page = _client(fake_tiktok).orders_search(since=datetime.fromtimestamp(1_700_000_000, tz=UTC))

    assert [order["id"] for order in page.items] == ["NEW"]
    assert (page.next_page_token, page.total_count) == ("", 1)
    assert fake_tiktok.requests[0].body == b'{"update_time_ge":1700000000}'


def test_products_search_pages_and_inventory_search_reports_stock(fake_tiktok):
    fake_tiktok.products = [
        {"id": f"P-{n}", "title": f"Product {n}", "update_time": 1_700_000_000,
         "skus": [{"id": f"S-{n}", "seller_sku": f"SKU-{n}", "inventory": [{"warehouse_id": "W1", "quantity": n}]}]}
        for n in range(5)
    ]
    client = _client(fake_tiktok)

    first = client.products_search(page_size=2)
    products = list(client.products_iterate(page_size=2))
    inventory = client.inventory_search(product_ids=["P-3"])

    assert ([p["id"] for p in first.items], first.next_page_token, first.total_count) == (["P-0", "P-1"], "page-2", 5)
    assert [product["id"] for product in products] == [f"P-{n}" for n in range(5)]
    assert inventory[0]["product_id"] == "P-3"
    assert inventory[0]["skus"][0]["total_available_quantity"] == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_client_retries_once_after_rate_limit_or_server_error(fake_tiktok, status):
    fake_tiktok.order_add("O-1")
    fake_tiktok.fail_next(status)
    delays = []

    orders = _client(fake_tiktok, backoff=0.25, sleep=delays.append).orders_get(order_ids=["O-1"])

    assert [order["id"] for order in orders] == ["O-1"]
    assert [seen.status for seen in fake_tiktok.requests] == [status, 200]
    assert delays == [0.25]


def test_client_gives_up_after_its_retries(fake_tiktok):
    fake_tiktok.fail_next(500, times=10)
    delays = []

    with pytest.raises(TikTokUnavailable, match="500"):
        _client(fake_tiktok, retries=2, backoff=0.5, sleep=delays.append).orders_get(order_ids=["O-1"])

    assert len(fake_tiktok.requests) == 3
    assert delays == [0.5, 1.0]


def test_wrong_app_secret_is_a_clear_auth_error_without_retries(fake_tiktok):
    with pytest.raises(TikTokAuthError, match="credentials or signature") as caught:
        _client(fake_tiktok, app_secret="not-the-secret").orders_get(order_ids=["O-1"])

    assert caught.value.code == 106001
    assert len(fake_tiktok.requests) == 1


def test_revoked_access_token_is_a_clear_auth_error(fake_tiktok):
    with pytest.raises(TikTokAuthError, match="access token") as caught:
        _client(fake_tiktok, access_token="revoked").orders_search()

    assert (caught.value.status, caught.value.code) == (401, 105001)


def test_unknown_endpoint_error_is_reported_with_tiktoks_code(fake_tiktok):
    client = _client(fake_tiktok)

    with pytest.raises(TikTokError, match="404") as caught:
        client._request("GET", "/order/202309/nothing")

    assert not isinstance(caught.value, TikTokAuthError | TikTokUnavailable)
    assert caught.value.code == 40004


def test_unreachable_api_is_unavailable_after_retries():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TikTokClient(base_url=f"http://127.0.0.1:{port}", app_key="k", app_secret="s", access_token="t",
                          shop_cipher="c", retries=1, backoff=0, sleep=lambda seconds: None, timeout=2)

    with pytest.raises(TikTokUnavailable, match="unreachable"):
        client.orders_get(order_ids=["O-1"])


def test_client_repr_hides_secret_and_token(fake_tiktok):
    text = repr(_client(fake_tiktok))

    assert fake_tiktok.app_secret not in text and fake_tiktok.access_token not in text


def test_order_event_from_api_adds_up_units_per_product(fake_tiktok):
    order = fake_tiktok.order_add("O-9", status="UNPAID", lines=[("P-1", 3, "2.50"), ("P-2", 1, "9.99")],
                                  total="17.49", currency="USD", create_time=1_700_000_000, update_time=1_700_000_050)

    event = order_event_from_api(order)

    assert (event.order_id, event.status, event.total_amount, event.currency) == ("O-9", "UNPAID", Decimal("17.49"), "USD")
    assert event.placed_at == datetime.fromtimestamp(1_700_000_000, tz=UTC)
    assert event.updated_at == datetime.fromtimestamp(1_700_000_050, tz=UTC)
    assert [(line.product_id, line.quantity, line.unit_price, line.sku) for line in event.lines] == [
        ("P-1", 3, Decimal("2.50"), "SKU-P-1"),
        ("P-2", 1, Decimal("9.99"), "SKU-P-2"),
    ]


def test_order_event_from_api_refuses_orders_without_times_or_ids():
    with pytest.raises(OrderError, match="update_time"):
        order_event_from_api({"id": "O-1", "status": "UNPAID"})
    with pytest.raises(OrderError, match="no id"):
        order_event_from_api({"status": "UNPAID", "update_time": 1_700_000_000})
    with pytest.raises(OrderError, match="product_id"):
        order_event_from_api({"id": "O-1", "update_time": 1_700_000_000, "line_items": [{"sale_price": "1"}]})


def test_fake_tiktok_takes_sold_units_out_of_quantity_and_gives_cancelled_ones_back(fake_tiktok):
    fake_tiktok.product_add("P-1", 10)
    fake_tiktok.order_add("O-1", lines=[("P-1", 3, "2.00")])
    fake_tiktok.order_add("O-2", status="IN_TRANSIT", lines=[("P-1", 2, "2.00")])
    client = _client(fake_tiktok)

    (held,) = client.inventory_search(product_ids=["P-1"])
    fake_tiktok.order_update("O-1", status="CANCELLED")
    (cancelled,) = client.inventory_search(product_ids=["P-1"])

    (sku,) = held["skus"]
    assert (sku["total_available_quantity"], sku["total_committed_quantity"]) == (5, 3)
    assert sku["warehouse_inventory"] == [{"warehouse_id": "W1", "available_quantity": 5, "committed_quantity": 3}]
    assert (cancelled["skus"][0]["total_available_quantity"], cancelled["skus"][0]["total_committed_quantity"]) == (8, 0)
    assert fake_tiktok.orders["O-1"]["line_items"][0]["sku_id"] == "S-P-1"
    with pytest.raises(ValueError, match="not enough stock"):
        fake_tiktok.order_add("O-3", lines=[("P-1", 9, "2.00")])
    assert fake_tiktok.quantity("P-1") == 8
