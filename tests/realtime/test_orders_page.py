"""The orders page: search by order id, status and flag filters, paging, and its limits."""

import re

import pytest

from orders import selectors as order_selectors

pytestmark = pytest.mark.django_db


def shown(page) -> list[str]:
    """The TikTok order ids of the rows on the page, top to bottom."""
    return re.findall(r'data-order-id="([^"]+)"', page.content.decode())


@pytest.fixture
def orders(shop, creator, make_product, place_order):
    product = make_product(creator, stock=3, reorder_point=0)
    place_order(shop, product, order_id="SPRING-100", status="AWAITING_SHIPMENT")
    place_order(shop, product, order_id="SPRING-101", status="UNPAID")
    place_order(shop, product, order_id="DROP-200", quantity=5)  # more than the 2 left: flagged short
    return product


def test_search_finds_orders_by_part_of_their_id(logged_in_client, orders):
    page = logged_in_client.get("/orders/", {"q": "spring-10"})
    assert sorted(shown(page)) == ["SPRING-100", "SPRING-101"]
    assert b"2 matches" in page.content


def test_status_and_flag_filters_narrow_the_list(logged_in_client, orders):
    assert shown(logged_in_client.get("/orders/", {"status": "UNPAID"})) == ["SPRING-101"]
    assert shown(logged_in_client.get("/orders/", {"flag": "insufficient_stock"})) == ["DROP-200"]
    assert shown(logged_in_client.get("/orders/", {"flag": "any"})) == ["DROP-200"]
    # A filter value the page does not know shows everything rather than an error.
    assert len(shown(logged_in_client.get("/orders/", {"status": "teleported", "flag": "haunted"}))) == 3


def test_pages_hold_a_fixed_number_of_orders_and_a_page_past_the_end_shows_the_last(
    logged_in_client, shop, creator, make_product, place_order
):
    product = make_product(creator, stock=10_000, reorder_point=0)
    for number in range(order_selectors.ORDERS_PAGE_SIZE + 3):
        place_order(shop, product, order_id=f"P-{number:03d}")

    first = logged_in_client.get("/orders/")
    second = logged_in_client.get("/orders/", {"page": "2"})
    past_the_end = logged_in_client.get("/orders/", {"page": "99"})

    assert len(shown(first)) == order_selectors.ORDERS_PAGE_SIZE
    assert len(shown(second)) == 3 and not set(shown(first)) & set(shown(second))
    assert b"Page 2 of 2" in second.content and b'rel="prev"' in second.content
    assert shown(past_the_end) == shown(second) and b"Page 2 of 2" in past_the_end.content
    assert len(shown(logged_in_client.get("/orders/", {"page": "zero"}))) == order_selectors.ORDERS_PAGE_SIZE
