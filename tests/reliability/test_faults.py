"""Faults: Redis stops, PostgreSQL stops, the server is killed mid-burst.

Each scenario runs real daphne processes (``tests.browser.servers.DaphneServer``) on the test
database. The shared PostgreSQL and Redis are never touched: the server reaches the faulty one
through a ``ServiceProxy`` that this test cuts and restores.
"""

import json
import os
import re
import threading
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client

from inventory.models import Reservation, Stock, StockMovement
from orders.models import Order, WebhookEvent
from realtime.services import metrics_resync
from tests.browser.servers import DaphneServer

from .conftest import encode, figure, order_document, poll, signed, stock_ledger_mismatches
from tests.sockets import fragment_id

from .faults import DashboardSocket, ServiceProxy, WebsocketRefused, metric_value, session_cookie

DEADLINE_SECONDS = 30
SECRET = "fault-secret-0b7f9c"


def deliver(server: DaphneServer, shop, document: dict, *, timeout: float = 30) -> tuple[int | None, dict]:
    """POST one signed delivery; return (status, JSON answer), or (None, {}) when no answer came."""
    body = encode(document)
    request = urllib.request.Request(
        f"{server.url}/webhooks/tiktok/", data=body, method="POST",
        headers={"Authorization": signed(shop, body), "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload)
        except ValueError:
            return error.code, {"raw": payload.decode("utf-8", "replace")}
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None, {}


def get(server: DaphneServer, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{server.url}{path}", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def log_text(server: DaphneServer) -> str:
    return server.log_path.read_text(errors="replace")


SIGNATURE_PATTERN = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])")


def assert_log_keeps_secrets(log: str, *secrets: str) -> None:
    """No app secret, session id or signature (64 hex digits) in a server process's log."""
    assert log, "the server wrote no log at all"
    for secret in (SECRET, *secrets):
        assert secret not in log, f"a secret reached the server log: {secret[:6]}…"
    assert not SIGNATURE_PATTERN.search(log), "a signature reached the server log"


def logged_in_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return session_cookie(client)


@pytest.fixture
def fault_shop(make_creator, make_shop, make_product):
    creator = make_creator("fault-creator")
    shop = make_shop(creator, shop_id="fault-shop", app_key="fault-key", app_secret=SECRET)
    make_product(creator, stock=1_000, reorder_point=0, external_id="HOT")
    return shop


# --- Redis stops -----------------------------------------------------------------------------------


def _redis_proxy_env(proxy: ServiceProxy) -> dict[str, str]:
    real = urlsplit(os.environ["REDIS_URL"])
    prefix = os.environ.get("CHANNEL_LAYER_PREFIX", "creatorflow")
    return {
        "REDIS_URL": real._replace(netloc=f"127.0.0.1:{proxy.port}").geturl(),
        "CHANNEL_LAYER_PREFIX": f"{prefix}-redis-fault",
    }


@pytest.fixture
def redis_proxy():
    real = urlsplit(os.environ["REDIS_URL"])
    proxy = ServiceProxy(real.hostname or "127.0.0.1", real.port or 6379).start()
    yield proxy
    proxy.close()


def _today_count(frames: list[str]) -> str | None:
    cards = [frame for frame in frames if fragment_id(frame) == "metric-cards"]
    return metric_value(cards[-1], "orders.today_count") if cards else None


def _open_live(server, cookie) -> tuple[DashboardSocket, list[str]]:
    """Open the dashboard socket and read its snapshot (one frame per fragment)."""
    socket = DashboardSocket.open(server.port, session_cookie=cookie)
    snapshot = socket.receive_until(lambda frames: _today_count(frames) is not None, deadline=DEADLINE_SECONDS)
    return socket, snapshot


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_redis_stopping_loses_no_order_and_dashboards_reconnect_to_current_numbers(fault_shop, redis_proxy):
    shop = fault_shop
    server = DaphneServer(name="redis-fault", extra_env=_redis_proxy_env(redis_proxy)).start()
    try:
        cookie = logged_in_cookie(shop.creator)
        dashboard, snapshot = _open_live(server, cookie)
        assert _today_count(snapshot) == "0"
        for number in range(3):
            assert deliver(server, shop, order_document(shop, order_id=f"R-before-{number}", items=[("HOT", 1)]))[0] == 200
        pushed = dashboard.receive_until(lambda frames: _today_count(frames) == "3", deadline=DEADLINE_SECONDS)
        assert _today_count(pushed) == "3"

        redis_proxy.cut()

        # The open dashboard is told: its socket closes, and the page shows Disconnected.
        dashboard.receive_until(lambda frames: False, deadline=DEADLINE_SECONDS)
        assert dashboard.closed
        # Orders keep coming in, and every one is applied; a failed push never rolls one back.
        during = [deliver(server, shop, order_document(shop, order_id=f"R-during-{number}", items=[("HOT", 2)]))
                  for number in range(10)]
        assert [(status, answer.get("status")) for status, answer in during] == [(200, "processed")] * 10
        assert Order.objects.filter(external_id__startswith="R-during-").count() == 10
        assert Stock.objects.get(product__external_id="HOT").reserved == 3 + 20
        status, health = get(server, "/healthz")
        assert (status, health["failing"]) == (503, ["channel_layer"])
        # A dashboard opened now is not left looking live.
        try:
            refused = DashboardSocket.open(server.port, session_cookie=cookie)
            assert refused.receive_until(lambda frames: False, deadline=DEADLINE_SECONDS) == [] or refused.closed
            assert refused.closed
        except (WebsocketRefused, ConnectionError, EOFError):
            pass
        assert "dashboard push to creator" in log_text(server)

        redis_proxy.restore()

        # Reconnecting (the page retries with backoff) gives the current numbers at once.
        reconnected = poll(lambda: _try_open_live(server, cookie), deadline=DEADLINE_SECONDS,
                           interval=0.5, message="dashboard reconnect after Redis is back")
        dashboard, snapshot = reconnected
        assert _today_count(snapshot) == "13"
        assert deliver(server, shop, order_document(shop, order_id="R-after", items=[("HOT", 1)]))[0] == 200
        pushed = dashboard.receive_until(lambda frames: _today_count(frames) == "14", deadline=DEADLINE_SECONDS)
        assert _today_count(pushed) == "14"
        dashboard.close()
        figure("Redis stops", orders_sent=14, sent_while_redis_down=10, processed_while_redis_down=len(during),
               orders_lost=14 - Order.objects.count(), dashboard_closed_on_outage=True,
               today_count_after_reconnect=_today_count(snapshot))
        assert Order.objects.count() == 14
        assert not stock_ledger_mismatches()
        assert_log_keeps_secrets(log_text(server), cookie.split("=", 1)[1])
    finally:
        server.stop()


def _try_open_live(server, cookie):
    try:
        socket, snapshot = _open_live(server, cookie)
    except (WebsocketRefused, ConnectionError, EOFError, TimeoutError, OSError):
        return None
    if _today_count(snapshot) is None:
        socket.close()
        return None
    return socket, snapshot


# --- bursts and retries, as TikTok sends them ----------------------------------------------------------


class Burst:
    """Deliveries posted from several threads at once; remembers each one's answer."""

    def __init__(self, server: DaphneServer, shop, documents: list[dict], *, threads: int = 8):
        self.server, self.shop, self.documents, self.threads = server, shop, documents, threads
        self.answers: dict[str, tuple[int | None, dict]] = {}
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    def start(self) -> "Burst":
        self._pool = ThreadPoolExecutor(max_workers=self.threads)
        for document in self.documents:
            self._pool.submit(self._one, document)
        return self

    def _one(self, document: dict) -> None:
        answer = deliver(self.server, self.shop, document)
        with self._lock:
            self.answers[document["data"]["order_id"]] = answer

    def acknowledged(self) -> int:
        with self._lock:
            return sum(1 for status, _ in self.answers.values() if status is not None and 200 <= status < 300)

    def wait(self) -> dict[str, tuple[int | None, dict]]:
        self._pool.shutdown(wait=True)
        return dict(self.answers)


def retry_until_acknowledged(server, shop, documents: list[dict], *, deadline: float = 60) -> Counter:
    """Deliver each document again until it gets a 2xx, as TikTok retries; count the answers seen."""
    seen: Counter = Counter()
    pending = list(documents)

    def attempt():
        nonlocal pending
        still = []
        for document in pending:
            status, answer = deliver(server, shop, document)
            seen[status if status != 200 else answer.get("status")] += 1
            if status is None or not 200 <= status < 300:
                still.append(document)
        pending = still
        return not pending

    poll(attempt, deadline=deadline, interval=0.5, message="every delivery acknowledged")
    # A delivery answered "queued" is acknowledged and stored, its apply still to come (its batch
    # waited behind others, such as the sweep of the outage's unapplied events): wait for it.
    poll(lambda: not WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).exists(),
         deadline=deadline, message="every acknowledged delivery applied")
    return seen


def _assert_each_order_once_and_stock_conserved(order_ids: list[str]) -> None:
    orders = Counter(Order.objects.filter(external_id__in=order_ids).values_list("external_id", flat=True))
    assert sorted(orders) == sorted(order_ids), f"missing: {sorted(set(order_ids) - set(orders))[:10]}"
    assert set(orders.values()) == {1}
    assert not WebhookEvent.objects.filter(status__in=["received", "failed"]).exists(), list(
        WebhookEvent.objects.filter(status__in=["received", "failed"]).values_list("pk", "status", "error")[:5]
    )
    items_with_two_reservations = (
        Reservation.objects.values("order_item").annotate(count=Count("pk")).filter(count__gt=1)
    )
    assert not items_with_two_reservations.exists()
    assert not stock_ledger_mismatches()


# --- PostgreSQL stops ----------------------------------------------------------------------------------


@pytest.fixture
def postgres_proxy():
    settings_dict = connection.settings_dict
    proxy = ServiceProxy(settings_dict["HOST"] or "127.0.0.1", int(settings_dict["PORT"] or 5432)).start()
    yield proxy
    proxy.close()


def _postgres_proxy_env(proxy: ServiceProxy) -> dict[str, str]:
    real = urlsplit(DaphneServer.__init__.__globals__["test_database_environment"]()["DATABASE_URL"])
    credentials = real.netloc.rsplit("@", 1)[0]
    return {
        "DATABASE_URL": real._replace(netloc=f"{credentials}@127.0.0.1:{proxy.port}").geturl(),
        # A delivery must be answered within TikTok's few seconds, even while the database is away.
        "DATABASE_POOL_TIMEOUT": "3",
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgres_stopping_answers_503_writes_nothing_half_and_retries_apply_once(fault_shop, postgres_proxy):
    shop = fault_shop
    server = DaphneServer(name="postgres-fault", extra_env=_postgres_proxy_env(postgres_proxy)).start()
    try:
        before = [order_document(shop, order_id=f"P-before-{n}", items=[("HOT", 1)]) for n in range(3)]
        assert [deliver(server, shop, document)[0] for document in before] == [200] * 3

        # A burst is in flight when the database goes away.
        documents = [order_document(shop, order_id=f"P-burst-{n}", items=[("HOT", 1)]) for n in range(60)]
        burst = Burst(server, shop, documents, threads=8).start()
        poll(lambda: burst.acknowledged() >= 10, deadline=DEADLINE_SECONDS, message="10 deliveries acknowledged")
        postgres_proxy.cut()
        outage = [order_document(shop, order_id=f"P-outage-{n}", items=[("HOT", 1)]) for n in range(5)]
        outage_answers = [deliver(server, shop, document) for document in outage]
        answers = burst.wait()

        assert [status for status, _ in outage_answers] == [503] * 5
        assert all(answer["error"] == "unavailable" for _, answer in outage_answers)
        statuses = Counter(status for status, _ in answers.values())
        assert set(statuses) <= {200, 503, None}, statuses
        # Nothing of a delivery that got 503 was applied (an inbox row may exist, unprocessed).
        refused = [order_id for order_id, (status, _) in answers.items() if status != 200]
        refused += [document["data"]["order_id"] for document in outage]
        assert not Order.objects.filter(external_id__in=refused).exists()
        assert not stock_ledger_mismatches()
        status, health = get(server, "/healthz")
        assert (status, health["failing"]) == (503, ["database"])

        postgres_proxy.restore()

        retried = [document for document in documents + outage if document["data"]["order_id"] in refused]
        retry_answers = retry_until_acknowledged(server, shop, retried)
        figure("PostgreSQL stops", orders_sent=68, acknowledged_before_cut=68 - len(refused),
               queued_at_the_cut=sum(1 for _, answer in answers.values() if answer.get("status") == "queued"),
               answered_503=sum(1 for status, _ in list(answers.values()) + outage_answers if status == 503),
               unanswered=sum(1 for status, _ in answers.values() if status is None),
               retry_answers=dict(retry_answers),
               orders_lost=68 - Order.objects.filter(external_id__startswith="P-").count())
        assert set(retry_answers) <= {503, None, "processed", "duplicate", "queued"}, retry_answers
        assert retry_answers["processed"] + retry_answers["duplicate"] + retry_answers["queued"] >= len(retried)
        _assert_each_order_once_and_stock_conserved([d["data"]["order_id"] for d in before + documents + outage])
        assert Stock.objects.get(product__external_id="HOT").reserved == 3 + 60 + 5
        # Every delivery again: all duplicates now, nothing applied twice.
        again = [deliver(server, shop, document)[1].get("status") for document in documents[:10]]
        assert again == ["duplicate"] * 10
        assert StockMovement.objects.filter(reason="reserve").count() == 68
        # After-commit work that met the outage is logged (Django's robust on_commit); no request failed.
        log = log_text(server)
        assert_log_keeps_secrets(log)
        assert "Internal Server Error" not in log and '" 500 ' not in log, log[-3000:]
        # The dashboard's numbers caught up with the retried orders: a from-scratch resync finds no drift.
        assert metrics_resync(creator_id=shop.creator_id) == []
    finally:
        server.stop()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stored_delivery_whose_batch_meets_the_outage_is_answered_queued_and_applied_once_back(fault_shop, postgres_proxy):
    """Stored, then cut off mid-batch: its sender hears "queued", and the server applies it once PostgreSQL answers."""
    shop = fault_shop
    server = DaphneServer(name="postgres-mid-batch", extra_env=_postgres_proxy_env(postgres_proxy)).start()
    try:
        assert deliver(server, shop, order_document(shop, order_id="M-warm", items=[("HOT", 1)]))[0] == 200
        document = order_document(shop, order_id="M-held", items=[("HOT", 1)])
        with ThreadPoolExecutor(max_workers=1) as pool:
            with transaction.atomic():
                # Hold the hot stock row: the server's batch stores the delivery, then waits for this lock.
                Stock.objects.select_for_update().get(product__external_id="HOT")
                answer = pool.submit(deliver, server, shop, document)
                poll(lambda: WebhookEvent.objects.filter(body__contains='"M-held"').exists(), message="delivery stored")
                poll(_a_backend_waits_for_a_lock, message="the batch waiting for the stock row")
                postgres_proxy.cut()
                status, body = answer.result(timeout=DEADLINE_SECONDS)
            # Without the lock, the cut-off batch's transaction ends (PostgreSQL rolls it back).
        assert (status, body.get("status")) == (200, "queued"), (status, body)
        assert not Order.objects.filter(external_id="M-held").exists()

        postgres_proxy.restore()
        poll(lambda: Order.objects.filter(external_id="M-held").exists(), deadline=60, message="the owed event applied")
        poll(lambda: not WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED).exists(), deadline=30,
             message="no event left received")
        _assert_each_order_once_and_stock_conserved(["M-warm", "M-held"])
        assert Stock.objects.get(product__external_id="HOT").reserved == 2
        # Sent again, as TikTok might (a first try may meet a pooled connection the outage broke: 503).
        again = retry_until_acknowledged(server, shop, [document])
        assert again["duplicate"] == 1 and not again["processed"], again
        log = log_text(server)
        assert_log_keeps_secrets(log)
        assert "Internal Server Error" not in log, log[-3000:]
    finally:
        server.stop()


def _a_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


# --- kill -9 mid-burst ---------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.timeout(900)
@pytest.mark.django_db(transaction=True)
def test_server_killed_mid_burst_loses_no_acknowledged_delivery(fault_shop):
    """SIGKILL the server with deliveries in flight; after a restart and TikTok's retries nothing is lost or doubled."""
    shop = fault_shop
    # The restarted server picks up what the killed one stored and answered "queued" without applying.
    server = DaphneServer(name="kill-9", extra_env={"CREATORFLOW_INBOX_ORPHAN_SECONDS": "2"}).start()
    try:
        documents = [order_document(shop, order_id=f"K-{n}", items=[("HOT", 1 + n % 3)]) for n in range(200)]
        burst = Burst(server, shop, documents, threads=12).start()
        poll(lambda: burst.acknowledged() >= 40, deadline=120, message="40 deliveries acknowledged")
        server.process.kill()  # SIGKILL: no cleanup, open transactions die with their connections
        server.process.wait(timeout=30)
        answers = burst.wait()

        acknowledged = [order_id for order_id, (status, _) in answers.items() if status is not None and status < 300]
        queued = [order_id for order_id, (_, answer) in answers.items() if answer.get("status") == "queued"]
        unanswered = [document for document in documents if document["data"]["order_id"] not in acknowledged]
        # Every acknowledged delivery is already applied, exactly once, before any restart or retry;
        # one answered "queued" (its batch outwaited the answer's deadline) is at least stored.
        _assert_each_order_once_and_stock_conserved_for(sorted(set(acknowledged) - set(queued)))
        stored = [order_id for order_id in queued if WebhookEvent.objects.filter(body__contains=f'"{order_id}"').exists()]
        assert stored == queued
        stuck = WebhookEvent.objects.filter(status="received").count()
        server.start()
        retries = retry_until_acknowledged(server, shop, unanswered, deadline=120)
        call_command("webhooks_replay", "--failed")

        figure("kill -9 mid-burst", orders_sent=len(documents), acknowledged_before_kill=len(acknowledged),
               unanswered=len(unanswered), stored_but_unapplied_at_kill=stuck, retry_answers=dict(retries),
               orders_lost=len(documents) - Order.objects.filter(external_id__startswith="K-").count(),
               oversold=max(0, Stock.objects.get(product__external_id="HOT").reserved
                            - Stock.objects.get(product__external_id="HOT").on_hand))
        assert acknowledged and unanswered, "the kill did not land mid-burst"
        _assert_each_order_once_and_stock_conserved([document["data"]["order_id"] for document in documents])
        assert not WebhookEvent.objects.filter(status="failed").exists()
        units = sum(1 + n % 3 for n in range(200))
        assert Stock.objects.get(product__external_id="HOT").reserved == units
        assert metrics_resync(creator_id=shop.creator_id) == []
        assert_log_keeps_secrets(log_text(server))
    finally:
        server.stop()


def _assert_each_order_once_and_stock_conserved_for(order_ids: list[str]) -> None:
    orders = Counter(Order.objects.filter(external_id__in=order_ids).values_list("external_id", flat=True))
    assert sorted(orders) == sorted(order_ids) and set(orders.values()) <= {1}
    assert WebhookEvent.objects.filter(status="processed").count() >= len(order_ids)
    assert not stock_ledger_mismatches()
