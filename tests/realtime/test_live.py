"""LIVE sessions: start and end, their figures from the rollups, the dashboard's buttons and /api/live/."""

import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event

from realtime import fragments
from realtime.broadcast import creator_group
from realtime.live import selectors as live_selectors
from realtime.live.services import LiveAlreadyRunning, LiveNotRunning, live_end, live_start
from realtime.models import LiveSession

pytestmark = pytest.mark.django_db


def test_live_start_refuses_a_second_running_session(creator):
    live_start(creator_id=creator.pk, title="Friday drop")
    with pytest.raises(LiveAlreadyRunning):
        live_start(creator_id=creator.pk)
    assert LiveSession.objects.filter(creator=creator).count() == 1


def test_live_end_without_a_running_session_is_refused(creator):
    with pytest.raises(LiveNotRunning):
        live_end(creator_id=creator.pk)


def test_a_live_counts_only_orders_placed_while_it_runs(creator, shop, make_product, place_order):
    product = make_product(creator, stock=5, reorder_point=1, external_id="TT-LIVE")
    place_order(shop, product, quantity=1, price="9.00")  # before: its minute is before the start
    LiveSession.objects.all().delete()
    session = live_start(creator_id=creator.pk, now=timezone.now() + timedelta(minutes=2))

    later = session.started_at + timedelta(seconds=5)
    for number, (quantity, status) in enumerate([(2, "AWAITING_SHIPMENT"), (1, "UNPAID"), (4, "AWAITING_SHIPMENT")]):
        order_apply_event(
            shop=shop,
            event=OrderEvent(
                order_id=f"L-{number}", status=status, updated_at=later, placed_at=later,
                total_amount=Decimal("10.00") * quantity,
                lines=[OrderLine(product_id="TT-LIVE", quantity=quantity, unit_price=Decimal("10.00"))],
            ),
        )

    figures = live_selectors.live_figures(session=session, now=later, products=True)
    assert figures.orders == 3
    assert figures.gmv == Decimal("60.00")  # the paid ones, short or not; the unpaid one is not GMV
    assert figures.units == 7
    assert (figures.short_orders, figures.short_units) == (1, 4)  # 4 asked, 1 left after the first two
    assert figures.per_minute[-1].orders == 3
    assert [(row.product_id, row.sold, row.available) for row in figures.products] == [("TT-LIVE", 3, 1)]

    ended = live_end(creator_id=creator.pk, now=later + timedelta(minutes=1))
    ended.refresh_from_db()
    assert (ended.orders, ended.gmv, ended.short_orders, ended.short_units) == (3, Decimal("60.00"), 1, 4)
    assert live_selectors.live_running(creator_id=creator.pk) is None


def test_dashboard_start_and_end_buttons_post_with_csrf(client, creator, shop, make_product, place_order):
    client.force_login(creator)
    html = client.get("/").content.decode()
    assert 'id="live-header"' in html and "Start LIVE" in html

    response = client.post(reverse("live-start"), {"title": "Spring sale"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert 'id="live-header"' in response.content.decode() and "End LIVE" in response.content.decode()
    assert "Sold this LIVE" in response.content.decode()  # the inventory table gains its column

    refused = client.post(reverse("live-start"), HTTP_HX_REQUEST="true")
    assert refused.status_code == 409
    assert "already running" in refused.content.decode()

    place_order(shop, make_product(creator, stock=10), quantity=2, price="15.00")
    header = fragments.fragments_render(creator_id=creator.pk, names=[fragments.LIVE_HEADER])[fragments.LIVE_HEADER]
    assert 'data-live="gmv">30.00<' in header
    assert 'data-live="orders">1<' in header

    assert client.post(reverse("live-end")).status_code == 302
    html = client.get("/").content.decode()
    assert "Start LIVE" in html and "Spring sale" in html  # the ended one listed with its totals


def test_csrf_is_checked_on_live_actions(creator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(creator)
    assert client.post(reverse("live-start")).status_code == 403
    assert client.post("/api/live/start/").status_code == 403
    assert not LiveSession.objects.exists()


def test_api_live_shows_current_and_recent_sessions(logged_in_client, creator, shop, make_product, place_order):
    assert logged_in_client.get("/api/live/").json() == {"current": None, "recent": []}

    started = logged_in_client.post("/api/live/start/", {"title": "Night LIVE"})
    assert started.status_code == 201
    assert logged_in_client.post("/api/live/start/").status_code == 409
    product = make_product(creator, stock=10, external_id="TT-API")
    place_order(shop, product, quantity=3, price="5.00")

    current = logged_in_client.get("/api/live/").json()["current"]
    assert set(current) >= {
        "id", "started_at", "ended_at", "gmv", "orders", "units", "short_orders", "short_units", "per_minute", "products",
    }
    assert (current["gmv"], current["orders"], current["units"], current["ended_at"]) == ("15.00", 1, 3, None)
    assert current["per_minute"][-1]["orders"] == 1
    assert current["products"] == [{"product_id": "TT-API", "sold": 3, "available": 7}]

    assert logged_in_client.post("/api/live/end/").status_code == 200
    assert logged_in_client.post("/api/live/end/").status_code == 409
    body = logged_in_client.get("/api/live/").json()
    assert body["current"] is None
    assert [(session["title"], session["orders"], session["gmv"]) for session in body["recent"]] == [("Night LIVE", 1, "15.00")]


def test_api_live_refuses_anonymous_and_wrong_methods(logged_in_client):
    assert Client().get("/api/live/").status_code == 401
    assert Client().post("/api/live/start/").status_code == 401
    assert logged_in_client.post("/api/live/").status_code == 405
    assert logged_in_client.get("/api/live/start/").status_code == 405


def test_live_header_is_pushed_with_orders_changes():
    assert fragments.LIVE_HEADER in fragments.fragments_for_topics({"orders"})


def test_an_order_re_renders_the_live_header_only_while_a_live_runs(creator):
    def header_pushed(*topics: str) -> bool:
        return fragments.LIVE_HEADER in fragments.fragments_to_push(creator_id=creator.pk, topics=set(topics))

    assert not header_pushed("orders", "inventory")  # between LIVEs the header shows figures kept at their end
    live_start(creator_id=creator.pk)
    assert header_pushed("orders", "inventory")
    live_end(creator_id=creator.pk)
    assert not header_pushed("orders")
    assert header_pushed("live")


@pytest.mark.django_db(transaction=True)
def test_starting_and_ending_a_live_pushes_the_header_and_the_inventory_table(creator, make_product, group_listener):
    make_product(creator, stock=5)
    listener = group_listener(creator_group(creator.pk))

    live_start(creator_id=creator.pk, title="Pushed LIVE")
    live_end(creator_id=creator.pk)

    pushes = [listener.receive(), listener.receive()]
    started, ended = (message["fragments"] for message in sorted(pushes, key=lambda m: m["stamp"]))

    assert {"live-header", "inventory-table"} <= set(started) and {"live-header", "inventory-table"} <= set(ended)
    assert "recent-orders" not in started  # a start changes no order
    assert 'data-live="running"' in started["live-header"] and "Sold this LIVE" in started["inventory-table"]
    assert 'data-live="idle"' in ended["live-header"] and "Sold this LIVE" not in ended["inventory-table"]


@pytest.mark.django_db(transaction=True)
def test_simulate_flash_sale_live_starts_a_session_that_counts_the_sale(live_server, shop, make_product):
    make_product(shop.creator, stock=1_000, external_id="HOT-1", unit_cost="5.00")
    out = io.StringIO()

    call_command(
        "simulate_flash_sale", "--url", f"{live_server.url}/webhooks/tiktok/", "--shop-id", shop.shop_id,
        "--orders", "5", "--rate", "500", "--concurrency", "1", "--seed", "3", "--live", stdout=out,
    )

    assert "LIVE session" in out.getvalue() and "sent 5, 2xx 5" in out.getvalue()
    session = live_selectors.live_running(creator_id=shop.creator_id)
    assert session is not None
    assert live_selectors.live_figures(session=session).orders == 5
