"""Fixtures for the reliability tests: hypothesis profiles, signed deliveries, database snapshots.

The fuzz tests run under the ``reliability-ci`` hypothesis profile when ``CI`` is set (enough
examples for the issue's 2,000 on CI) and ``reliability-dev`` otherwise. The profiles are applied
per test, so the rest of the suite keeps hypothesis' defaults.

Server processes (``tests.browser.servers.DaphneServer``) must see what the tests write, so with
SQLite the test database lives in a file for this run, as for the browser tests.
"""

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Sum
from hypothesis import HealthCheck, settings

from inventory.models import Reservation, Stock, StockMovement
from orders.inbox import webhook_signature

WEBHOOK_URL = "/webhooks/tiktok/"
DEADLINE_SECONDS = 30
# Tables a webhook can write, directly or through signals and on-commit work.
SNAPSHOT_APPS = ("accounts", "inventory", "orders", "realtime")

_FUZZ_HEALTH = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large,
                HealthCheck.filter_too_much]
settings.register_profile(
    "reliability-ci", max_examples=480, deadline=None, suppress_health_check=_FUZZ_HEALTH, print_blob=True
)
settings.register_profile("reliability-dev", max_examples=60, deadline=None, suppress_health_check=_FUZZ_HEALTH)
FUZZ_PROFILE = "reliability-ci" if os.environ.get("CI", "").lower() in {"1", "true", "yes"} else "reliability-dev"


def fuzz_settings(**overrides) -> settings:
    """The fuzz profile of this run (CI or local), with per-test overrides."""
    return settings(settings.get_profile(FUZZ_PROFILE), **overrides)


def pytest_configure(config):
    database = django_settings.DATABASES["default"]
    if database["ENGINE"] == "django.db.backends.sqlite3":
        test_settings = database.setdefault("TEST", {})
        if not test_settings.get("NAME"):
            test_settings["NAME"] = str(Path(tempfile.mkdtemp(prefix="creatorflow-test-")) / "test.sqlite3")


# --- deliveries ------------------------------------------------------------------------------


def signed(shop, body: bytes) -> str:
    return webhook_signature(app_key=shop.app_key, app_secret=shop.app_secret, body=body)


def order_document(shop, *, order_id: str, items=(), status: str = "AWAITING_SHIPMENT", total: str = "10.00",
                   timestamp: int | None = None, **data) -> dict:
    """CreatorFlow's ORDER_STATUS_CHANGE; ``items`` are (product external id, quantity)."""
    return {
        "type": "ORDER_STATUS_CHANGE",
        "shop_id": shop.shop_id,
        "timestamp": timestamp or int(time.time()),
        "data": {
            "order_id": order_id,
            "status": status,
            "total_amount": total,
            **({"items": [{"product_id": p, "quantity": q, "price": "5.00"} for p, q in items]} if items else {}),
            **data,
        },
    }


def inventory_document(shop, *, product_id: str, quantity: int, timestamp: int | None = None, **data) -> dict:
    return {
        "type": "INVENTORY_UPDATE",
        "shop_id": shop.shop_id,
        "timestamp": timestamp or int(time.time()),
        "data": {"product_id": product_id, "quantity": quantity, **data},
    }


def tiktok_document(shop, *, notification_id: str, order_id: str, status: str = "AWAITING_SHIPMENT",
                    update_time: int | None = None) -> dict:
    now = int(time.time())
    return {
        "type": 1,
        "tts_notification_id": notification_id,
        "shop_id": shop.shop_id,
        "timestamp": now,
        "data": {"order_id": order_id, "order_status": status, "update_time": update_time or now},
    }


def encode(document) -> bytes:
    return json.dumps(document).encode()


# --- what the database holds -------------------------------------------------------------------


def database_snapshot() -> dict[str, str]:
    """A digest of every row of every CreatorFlow table, by table (one round trip on PostgreSQL)."""
    tables = [
        (model._meta.db_table, model._meta.pk.column)
        for label in SNAPSHOT_APPS
        for model in apps.get_app_config(label).get_models()
    ]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            digests = [
                f"(SELECT md5(coalesce(string_agg(row_::text, '|' ORDER BY row_.{quote(pk)}), '')) "
                f"FROM {quote(table)} AS row_)"
                for table, pk in tables
            ]
            cursor.execute("SELECT " + ", ".join(digests))
            return dict(zip((table for table, _ in tables), cursor.fetchone(), strict=True))
        snapshot = {}
        for table, pk in tables:
            cursor.execute(f"SELECT * FROM {quote(table)} ORDER BY {quote(pk)}")
            snapshot[table] = hashlib.sha256(repr(cursor.fetchall()).encode()).hexdigest()
        return snapshot


def stock_ledger_mismatches() -> list[str]:
    """Stock rows whose on_hand / reserved differ from their ledger sums or active reservations."""
    ledger = {
        row["stock"]: (row["on_hand"], row["reserved"])
        for row in StockMovement.objects.values("stock").annotate(
            on_hand=Sum("on_hand_delta"), reserved=Sum("reserved_delta")
        )
    }
    held = dict(
        Reservation.objects.filter(status=Reservation.Status.ACTIVE)
        .values("stock")
        .annotate(units=Sum("quantity"))
        .values_list("stock", "units")
    )
    problems = []
    for stock in Stock.objects.order_by("pk"):
        on_hand, reserved = ledger.get(stock.pk, (0, 0))
        if (stock.on_hand, stock.reserved) != (on_hand, reserved) or stock.reserved != held.get(stock.pk, 0):
            problems.append(
                f"stock {stock.pk}: on_hand {stock.on_hand} vs ledger {on_hand}, reserved {stock.reserved} "
                f"vs ledger {reserved} vs active reservations {held.get(stock.pk, 0)}"
            )
        if stock.available < 0 or stock.reserved < 0:
            problems.append(f"stock {stock.pk}: available {stock.available}, reserved {stock.reserved}")
    return problems


def poll(condition: Callable[[], object], *, deadline: float = DEADLINE_SECONDS, interval: float = 0.05,
         message: str = "condition") -> object:
    """Return ``condition()``'s first truthy value; fail when the deadline passes first."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            pytest.fail(f"{message} not met within {deadline}s")
        time.sleep(interval)  # polling with a deadline, not waiting a fixed time


# --- the figures the README quotes ---------------------------------------------------------------------

FIGURES: dict[str, dict[str, object]] = {}


def figure(scenario: str, **numbers) -> None:
    """Record what a scenario held (examples tried, orders sent, lost, oversold) for the run's summary."""
    FIGURES.setdefault(scenario, {}).update(numbers)


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    terminalreporter.section("CreatorFlow reliability figures")
    for scenario, numbers in FIGURES.items():
        terminalreporter.write_line(f"{scenario}: " + ", ".join(f"{key}={value}" for key, value in numbers.items()))
