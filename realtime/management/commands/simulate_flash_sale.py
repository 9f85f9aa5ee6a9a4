"""Post signed order webhooks at a steady rate, like a LIVE-stream flash sale on a few hot SKUs.

With ``--live`` the shop's creator starts a LIVE session first (the realtime app's, hence here).
"""

import http.client
import itertools
import json
import random
import ssl
import sys
import threading
import time
import uuid
from decimal import Decimal
from urllib.parse import urlsplit

from django.core.management.base import BaseCommand, CommandError

from inventory.models import Product
from orders.management.progress import Progress
from orders.models import ShopConnection
from orders.inbox import webhook_signature
from orders.payloads import ORDER_STATUS_CHANGE
from realtime.live.services import LiveAlreadyRunning, live_start

LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
WEBHOOK_PATH = "/webhooks/tiktok/"
# The probe before the sale gives up quickly; a delivery may take the webhook's 2 s answer time and more.
PROBE_TIMEOUT_SECONDS = 3.0
REQUEST_TIMEOUT_SECONDS = 10.0


def _connection(parts, timeout: float) -> http.client.HTTPConnection:
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    return kind(parts.hostname, parts.port, timeout=timeout)


def webhook_probe(url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS) -> None:
    """Check that ``url`` answers like CreatorFlow's webhook route; raise CommandError saying why not.

    The probe is a GET, which the webhook route refuses with 405 (POST only) and stores nothing.
    """
    parts = urlsplit(url)
    connection = _connection(parts, timeout)
    try:
        connection.request("GET", parts.path or "/")
        response = connection.getresponse()
        response.read()
    except ssl.SSLError as error:
        raise CommandError(
            f"TLS handshake with {parts.netloc} failed ({error.reason}); if the server speaks plain HTTP, "
            f"use http://{parts.netloc}{parts.path}."
        ) from None
    except TimeoutError:
        hint = " (a plain-HTTP server never answers an https:// handshake: try http://)" if parts.scheme == "https" else ""
        raise CommandError(f"{parts.netloc} did not answer within {timeout:g} s{hint}.") from None
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise CommandError(f"Cannot reach {parts.netloc} ({reason}); is the server running (make run)?") from None
    finally:
        connection.close()
    if response.status != 405 or "POST" not in (response.getheader("Allow") or ""):
        raise CommandError(
            f"{url} is not the webhook route: a GET there answered {response.status}, where the route answers "
            f"405 (POST only). The route is {WEBHOOK_PATH}, e.g. {parts.scheme}://{parts.netloc}{WEBHOOK_PATH}"
        )


def flash_sale_body(*, shop_id: str, order_id: str, products: list[tuple[str, Decimal]], rng: random.Random) -> bytes:
    """Build one new paid order of 1 to 3 lines, drawn from ``products`` (TikTok id, unit price)."""
    lines = rng.sample(products, k=rng.randint(1, min(3, len(products))))
    items = [{"product_id": product_id, "quantity": rng.randint(1, 2), "price": str(price)} for product_id, price in lines]
    total = sum(Decimal(item["price"]) * item["quantity"] for item in items)
    document = {
        "type": ORDER_STATUS_CHANGE,
        "shop_id": shop_id,
        "timestamp": int(time.time()),
        "data": {"order_id": order_id, "status": "AWAITING_SHIPMENT", "items": items, "total_amount": str(total)},
    }
    return json.dumps(document, separators=(",", ":")).encode()


class Command(BaseCommand):
    help = "Post correctly signed ORDER_STATUS_CHANGE webhooks for a shop at a given rate."

    def add_arguments(self, parser):
        parser.add_argument("--url", required=True, help="Webhook URL, e.g. http://127.0.0.1:8000/webhooks/tiktok/")
        parser.add_argument("--shop-id", required=True, help="TikTok shop id of a connected shop.")
        parser.add_argument("--orders", type=int, required=True, help="How many orders to send.")
        parser.add_argument("--rate", type=float, required=True, help="Orders per second.")
        parser.add_argument("--hot-skus", type=int, default=3, help="How many of the creator's products sell (3).")
        parser.add_argument("--concurrency", type=int, default=8, help="Parallel connections (8).")
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a repeatable sale.")
        parser.add_argument(
            "--allow-remote", action="store_true", help="Allow a URL that is not on this machine (127.0.0.1)."
        )
        parser.add_argument(
            "--live", action="store_true", help="Start a LIVE session for the shop's creator first (kept if one runs)."
        )
        parser.add_argument("--live-title", default="Flash sale", help="Title of the LIVE session --live starts.")

    def handle(
        self, *args, url, shop_id, orders, rate, hot_skus, concurrency, seed, allow_remote, live, live_title, **options
    ):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CommandError(f"--url must be an http(s) URL, got {url!r}.")
        if parts.hostname not in LOOPBACK_HOSTS and not allow_remote:
            raise CommandError(f"{parts.hostname} is not this machine; pass --allow-remote to post there.")
        if not 1 <= orders <= 1_000_000:
            raise CommandError("--orders must be 1 to 1,000,000.")
        if not 0 < rate <= 10_000:
            raise CommandError("--rate must be above 0 and at most 10,000 per second.")
        if not 1 <= concurrency <= 256:
            raise CommandError("--concurrency must be 1 to 256.")
        shop = ShopConnection.objects.filter(shop_id=shop_id).first()
        if shop is None:
            raise CommandError(f"No shop connection with shop id {shop_id!r} (see shop_connect).")
        hot = list(
            Product.objects.filter(creator_id=shop.creator_id).order_by("pk").values_list("external_id", "unit_cost")[
                : max(1, hot_skus)
            ]
        )
        if not hot:
            raise CommandError(f"The creator of shop {shop_id} has no products yet; run demo_seed or send stock first.")
        products = [(external_id, max(Decimal("1.00"), unit_cost * 2)) for external_id, unit_cost in hot]
        if live:
            try:
                session = live_start(creator_id=shop.creator_id, title=live_title)
                self.stdout.write(f"LIVE session {session.pk} started.")
            except LiveAlreadyRunning:
                self.stdout.write("A LIVE session is already running; the sale counts in it.")

        webhook_probe(url)

        rng = random.Random(seed)
        run = uuid.uuid4().hex[:8]
        path = parts.path or WEBHOOK_PATH
        results: list[tuple[int, float]] = []  # (HTTP status or 0 for a connection error, seconds)
        lock = threading.Lock()
        numbers = itertools.count()
        progress = Progress(self.stderr, total=orders, unit="order", description="flash sale")
        started = time.perf_counter()

        def worker():
            connection = None
            while True:
                with lock:
                    number = next(numbers)
                    if number >= orders:
                        break
                    body = flash_sale_body(shop_id=shop.shop_id, order_id=f"LIVE-{run}-{number:06d}",
                                           products=products, rng=rng)
                delay = started + number / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)  # pacing: the sale runs at --rate, not as fast as possible
                signature = webhook_signature(app_key=shop.app_key, app_secret=shop.app_secret, body=body)
                sent = time.perf_counter()
                try:
                    if connection is None:
                        connection = _connection(parts, REQUEST_TIMEOUT_SECONDS)
                    connection.request("POST", path, body=body,
                                       headers={"Content-Type": "application/json", "Authorization": signature})
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    status = 0
                    if connection is not None:
                        connection.close()
                    connection = None
                with lock:
                    results.append((status, time.perf_counter() - sent))
                    progress.update(len(results))
            if connection is not None:
                connection.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(min(concurrency, orders))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        progress.close()
        elapsed = time.perf_counter() - started

        ok = sum(1 for status, _ in results if 200 <= status < 300)
        latencies = sorted(seconds for _, seconds in results)
        by_status: dict[str, int] = {}
        for status, _ in results:
            if not 200 <= status < 300:
                label = "connection error" if status == 0 else str(status)
                by_status[label] = by_status.get(label, 0) + 1

        def percentile(share: float) -> float:
            return latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000 if latencies else 0.0

        breakdown = ", ".join(f"{label}: {count}" for label, count in sorted(by_status.items()))
        failed = len(results) - ok
        self.stdout.write(
            f"sent {len(results)}, 2xx {ok}, errors {failed}"
            + (f" ({breakdown})" if by_status else "")
            + f", achieved {len(results) / elapsed:.1f}/s over {elapsed:.1f} s"
            + f", ack p50 {percentile(0.50):.1f} ms, p99 {percentile(0.99):.1f} ms"
        )
        sys.stdout.flush()
        if failed:
            raise CommandError(f"{failed} of {len(results)} orders failed ({breakdown}).")
