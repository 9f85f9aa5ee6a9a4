"""Browser tests: a real daphne server on the test database, and Debian's Chromium through Playwright.

Server processes must see what the tests write, so with SQLite the test database lives in a
file for this run (pytest-django would otherwise keep it in memory, invisible to them).
"""

import hashlib
import hmac
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from .servers import DaphneServer

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(settings.BASE_DIR) / "artifacts"


def pytest_configure(config):
    database = settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test_settings = database.setdefault("TEST", {})
        if not test_settings.get("NAME"):
            test_settings["NAME"] = str(Path(tempfile.mkdtemp(prefix="creatorflow-test-")) / "test.sqlite3")


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker):
    """A daphne process serving CreatorFlow on the test database for the whole session."""
    with django_db_blocker.unblock():
        daphne = DaphneServer(name="browser-server").start()
    yield daphne
    daphne.stop()


@pytest.fixture(scope="module")
def chromium():
    """Chromium for one test module: Playwright's sync API keeps an event loop running in this
    thread while it is open, which asyncio tests elsewhere in the run must not inherit."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 - only browser runs need it

    # Playwright's sync API runs an event loop in this thread; Django's ORM calls in the tests
    # are still plain synchronous calls between browser steps.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def browser_context(chromium, server):
    context = chromium.new_context(viewport={"width": 1440, "height": 1000}, base_url=server.url)
    yield context
    context.close()


@pytest.fixture
def page(browser_context):
    page = browser_context.new_page()
    yield page
    page.close()


def log_in(context, server, user) -> None:
    """Give the browser a session for ``user`` without typing the password."""
    client = Client()
    client.force_login(user)
    context.add_cookies(
        [{"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value, "url": server.url}]
    )


def webhook_post(server, shop, document: dict) -> dict:
    """POST a webhook signed as DESIGN.md says: hex HMAC-SHA256(app secret, app key + raw body)."""
    body = json.dumps(document).encode()
    signature = hmac.new(shop.app_secret.encode(), shop.app_key.encode() + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{server.url}/webhooks/tiktok/",
        data=body,
        method="POST",
        headers={"Authorization": signature, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200, response.read()
        return json.loads(response.read())


def order_document(shop, *, order_id: str, items, status: str = "AWAITING_SHIPMENT", total: str = "25.00") -> dict:
    return {
        "type": "ORDER_STATUS_CHANGE",
        "shop_id": shop.shop_id,
        "timestamp": int(time.time()),
        "data": {
            "order_id": order_id,
            "status": status,
            "total_amount": total,
            "items": [{"product_id": product_id, "quantity": quantity, "price": "12.50"} for product_id, quantity in items],
        },
    }
