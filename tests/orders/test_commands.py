"""webhooks_replay and simulate_flash_sale."""

import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from inventory.models import Stock, StockMovement
from orders.models import Order, WebhookEvent

from tests.cli import free_port, manage  # noqa: F401 - manage is a fixture

from .conftest import tiktok_body

pytestmark = pytest.mark.django_db


def _run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def failed_event(tiktok_shop, post_webhook):
    """A TikTok order notice that failed: the order was not in TikTok's order detail yet."""
    post_webhook(tiktok_shop, tiktok_body(tiktok_shop, notification_id="n-1", order_id="LATE"))
    event = WebhookEvent.objects.get()
    assert event.status == "failed"
    return event


def test_webhooks_replay_failed_applies_a_fixed_event_exactly_once(failed_event, fake_tiktok, tiktok_shop, make_product):
    product = make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    fake_tiktok.order_add("LATE", lines=[("P-1", 4, "1.00")])

    first = _run("webhooks_replay", "--failed")
    again = _run("webhooks_replay", "--failed")
    by_id = _run("webhooks_replay", "--id", str(failed_event.pk))

    assert first.startswith("1 processed, 0 failed")
    assert again.startswith("0 processed, 0 failed, 0 skipped")
    assert by_id.startswith("0 processed, 0 failed, 1 skipped")
    assert Stock.objects.get(product=product).reserved == 4
    assert StockMovement.objects.filter(reason="reserve").count() == 1
    assert Order.objects.count() == 1


def test_webhooks_replay_reports_events_that_still_fail(failed_event):
    err = io.StringIO()

    with pytest.raises(CommandError, match="1 event"):
        call_command("webhooks_replay", stdout=io.StringIO(), stderr=err)

    assert f"event {failed_event.pk} failed again" in err.getvalue()
    failed_event.refresh_from_db()
    assert (failed_event.status, failed_event.attempts) == ("failed", 2)


def test_webhooks_replay_names_an_unknown_event_id():
    with pytest.raises(CommandError, match="No webhook event with id 999"):
        call_command("webhooks_replay", "--id", "999")


def test_webhook_admin_replay_action_uses_the_same_exactly_once_service(
    failed_event, fake_tiktok, tiktok_shop, make_product, admin_client
):
    product = make_product(tiktok_shop.creator, stock=10, external_id="P-1")
    fake_tiktok.order_add("LATE", lines=[("P-1", 2, "1.00")])
    url = "/admin/orders/webhookevent/"

    for _ in range(2):
        response = admin_client.post(url, {"action": "replay", "_selected_action": [failed_event.pk]}, follow=True)
        assert response.status_code == 200

    assert Stock.objects.get(product=product).reserved == 2
    messages = [str(message) for message in response.context["messages"]]
    assert messages == ["Replayed: 0 processed, 0 failed, 1 skipped (already processed or ignored)."]
    detail = admin_client.get(f"{url}{failed_event.pk}/change/")
    assert b"&quot;order_id&quot;: &quot;LATE&quot;" in detail.content


@pytest.mark.django_db(transaction=True)
def test_simulate_flash_sale_posts_signed_orders_that_all_land(live_server, shop, make_product):
    hot = [make_product(shop.creator, stock=1_000, external_id=f"HOT-{n}") for n in range(3)]
    make_product(shop.creator, stock=1_000, external_id="COLD")

    # The test server shares one SQLite connection between its threads: one request at a time there.
    concurrency = "3" if connection.vendor == "postgresql" else "1"

    with pytest.raises(CommandError, match=r"is not the webhook route: a GET there answered 404.*/webhooks/tiktok/"):
        _run("simulate_flash_sale", "--url", f"{live_server.url}/webhook/", "--shop-id", shop.shop_id,
             "--orders", "12", "--rate", "500")
    assert not WebhookEvent.objects.exists()

    output = _run("simulate_flash_sale", "--url", f"{live_server.url}/webhooks/tiktok/", "--shop-id", shop.shop_id,
                  "--orders", "12", "--rate", "500", "--concurrency", concurrency, "--seed", "7")

    assert output.startswith("sent 12, 2xx 12, errors 0, achieved ")
    assert Order.objects.count() == 12
    assert WebhookEvent.objects.filter(status="processed").count() == 12
    sold = {item.product.external_id for order in Order.objects.all() for item in order.items.all()}
    assert sold <= {product.external_id for product in hot}
    reserved = sum(Stock.objects.get(product=product).reserved for product in hot)
    assert reserved == sum(item.quantity for order in Order.objects.all() for item in order.items.all())


def test_simulate_flash_sale_refuses_other_machines_and_unknown_shops(shop):
    with pytest.raises(CommandError, match="not this machine"):
        _run("simulate_flash_sale", "--url", "http://example.com/webhooks/tiktok/", "--shop-id", shop.shop_id,
             "--orders", "1", "--rate", "1")
    with pytest.raises(CommandError, match="No shop connection"):
        _run("simulate_flash_sale", "--url", "http://127.0.0.1:9/", "--shop-id", "nope", "--orders", "1",
             "--rate", "1")
    with pytest.raises(CommandError, match="no products"):
        _run("simulate_flash_sale", "--url", "http://127.0.0.1:9/", "--shop-id", shop.shop_id, "--orders", "1",
             "--rate", "1")


class _HalfFailing(BaseHTTPRequestHandler):
    """A plain-HTTP stand-in for the webhook route that answers every other delivery 500."""

    posts = 0

    def do_GET(self):
        self.send_response(405 if self.path == "/webhooks/tiktok/" else 404)
        self.send_header("Allow", "POST")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts += 1
        self.send_response(500 if self.posts % 2 else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def half_failing_server():
    _HalfFailing.posts = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HalfFailing)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_simulate_flash_sale_that_partly_fails_exits_non_zero_saying_how_many(shop, make_product, half_failing_server):
    make_product(shop.creator, stock=100, external_id="HOT-1")
    out = io.StringIO()

    with pytest.raises(CommandError, match=r"^3 of 6 orders failed \(500: 3\)\.$"):
        call_command("simulate_flash_sale", "--url", f"http://{half_failing_server}/webhooks/tiktok/",
                     "--shop-id", shop.shop_id, "--orders", "6", "--rate", "1000", "--concurrency", "1",
                     stdout=out, stderr=io.StringIO())

    assert out.getvalue().startswith("sent 6, 2xx 3, errors 3 (500: 3)")


def test_simulate_flash_sale_with_https_against_a_plain_http_server_fails_at_once(shop, make_product,
                                                                                     half_failing_server):
    make_product(shop.creator, stock=100, external_id="HOT-1")

    with pytest.raises(CommandError, match=r"http://") as refused:
        _run("simulate_flash_sale", "--url", f"https://{half_failing_server}/webhooks/tiktok/",
             "--shop-id", shop.shop_id, "--orders", "5", "--rate", "100")

    assert "TLS handshake" in str(refused.value)

    assert _HalfFailing.posts == 0  # the sale never started


def test_simulate_flash_sale_on_a_port_nothing_listens_on_exits_1_with_one_line(manage):
    manage("demo_seed", check=True)
    port = free_port()

    finished = manage("simulate_flash_sale", "--url", f"http://127.0.0.1:{port}/webhooks/tiktok/",
                      "--shop-id", "7495812345678901234", "--orders", "20", "--rate", "10", timeout=30)

    assert finished.returncode == 1
    assert finished.stdout == ""
    assert finished.stderr.strip().splitlines() == [
        f"CommandError: Cannot reach 127.0.0.1:{port} (Connection refused); is the server running (make run)?"
    ]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream_class", [_Terminal, io.StringIO])
def test_long_commands_draw_rate_and_eta_on_a_terminal_and_only_a_summary_otherwise(
    stream_class, shop, make_product, half_failing_server
):
    make_product(shop.creator, stock=100, external_id="HOT-1")
    out, err = io.StringIO(), stream_class()

    with pytest.raises(CommandError):
        call_command("simulate_flash_sale", "--url", f"http://{half_failing_server}/webhooks/tiktok/",
                     "--shop-id", shop.shop_id, "--orders", "4", "--rate", "1000", "--concurrency", "1",
                     stdout=out, stderr=err)

    assert len(out.getvalue().splitlines()) == 1  # the summary line, with the achieved rate
    assert "achieved" in out.getvalue()
    if stream_class is _Terminal:
        assert "flash sale: 100%" in err.getvalue() and "4/4" in err.getvalue()
        assert "order/s]" in err.getvalue() and "<00:00" in err.getvalue()  # rate, and the ETA
    else:
        assert err.getvalue() == ""
