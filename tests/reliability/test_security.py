"""Security: who may see and do what, CSRF, websocket origins, deploy checks, secrets kept out of sight.

The authorization matrix covers every route of the project (a test fails when a new route has no
row) and every admin view, for four visitors: anonymous, creator A (who owns the data), creator B
and a staff operator. Wherever B or staff get an answer, it must not carry any of A's data.
"""

import json
import logging
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.utils import timezone

from creatorflow.asgi import application
from inventory.models import InventoryAlert, Product, Warehouse
from inventory.services.alerts import alerts_evaluate
from orders.models import Order, ShopConnection, SyncOperation, WebhookEvent
from orders.events import OrderEvent, OrderLine
from orders.services import order_apply_event
from orders.inbox import webhook_receive
from realtime.fragments import FRAGMENT_NAMES
from tests.sockets import ServerLikeCommunicator, fragment_id, frame_parts

from .conftest import WEBHOOK_URL, encode, order_document, signed

pytestmark = pytest.mark.django_db

SECRET_A = "security-secret-of-a-3c9d21"
TOKEN_A = "security-access-token-of-a-77aa"
# Strings that only creator A's data contains.
A_MARKERS = ("Aardvark Secret Lamp", "A-SECRET-ORDER-1", "SKU-AARDVARK")
ROLES = ("anonymous", "creator_a", "creator_b", "staff")


@dataclass
class World:
    creator_a: object
    creator_b: object
    staff: object
    shop_a: ShopConnection
    product_a: Product
    alert_a: InventoryAlert
    warehouse_a: Warehouse
    order_a: Order
    event_a: WebhookEvent
    clients: dict = field(default_factory=dict)

    def client(self, role: str, **options) -> Client:
        client = Client(**options)
        if role != "anonymous":
            client.force_login(getattr(self, role))
        return client


@pytest.fixture
def world(make_creator, make_shop, make_product) -> World:
    creator_a, creator_b = make_creator("creator-a"), make_creator("creator-b")
    staff = make_creator("operator", is_staff=True, is_superuser=True)
    shop_a = make_shop(creator_a, shop_id="shop-a", app_key="key-a", app_secret=SECRET_A, access_token=TOKEN_A)
    make_shop(creator_b, shop_id="shop-b", app_key="key-b", app_secret="security-secret-of-b")
    product_a = make_product(creator_a, stock=5, reorder_point=3, external_id="P-A", name="Aardvark Secret Lamp",
                             sku="SKU-AARDVARK")
    hot_a = make_product(creator_a, stock=0, reorder_point=3, external_id="P-A-OUT", name="Aardvark Secret Lamp XL",
                         sku="SKU-AARDVARK-XL")
    alerts_evaluate(product_ids=[hot_a.pk])
    make_product(creator_b, stock=50, external_id="P-B", name="Beaver Plain Mug", sku="SKU-BEAVER")
    now = timezone.now()
    order_a, _ = order_apply_event(
        shop=shop_a,
        event=OrderEvent(order_id="A-SECRET-ORDER-1", status="AWAITING_SHIPMENT", updated_at=now, placed_at=now,
                         total_amount=Decimal("12.00"), lines=[OrderLine("P-A", 1, Decimal("12.00"))]),
    )
    body = encode(order_document(shop_a, order_id="A-SECRET-ORDER-2", items=[("P-A", 1)]))
    event_a = webhook_receive(body=body, signature=signed(shop_a, body)).event
    SyncOperation.objects.create(creator=creator_a, shop=shop_a, type=SyncOperation.Type.RESYNC, target="orders")
    return World(
        creator_a=creator_a, creator_b=creator_b, staff=staff, shop_a=shop_a, product_a=product_a,
        alert_a=InventoryAlert.objects.get(product=hot_a, type="stockout"),
        warehouse_a=Warehouse.objects.get(creator=creator_a, is_default=True), order_a=order_a, event_a=event_a,
    )


def _shows_a(response) -> bool:
    text = response.content.decode("utf-8", "replace")
    return any(marker in text for marker in A_MARKERS)


# --- the matrix ----------------------------------------------------------------------------------------

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@dataclass(frozen=True)
class Row:
    """One route: how to call it and what each visitor gets (a status, or a redirect target prefix)."""

    url: object  # str, or a function of the World
    expected: dict
    method: str = "get"
    htmx: bool = False
    a_sees_own_data: bool = False  # positive control: A's answer carries A's data

    def path(self, world: World) -> str:
        return self.url(world) if callable(self.url) else self.url


def _each(status, **overrides) -> dict:
    return {role: overrides.get(role, status) for role in ROLES}


REDIRECT_TO_LOGIN = ("redirect", LOGIN)
MATRIX = {
    "dashboard": Row("/", _each(200, anonymous=REDIRECT_TO_LOGIN), a_sees_own_data=True),
    "dashboard filtered by A's warehouse": Row(
        lambda w: f"/?warehouse={w.warehouse_a.pk}", _each(200, anonymous=REDIRECT_TO_LOGIN), a_sees_own_data=True
    ),
    "api metrics": Row("/api/metrics/", _each(200, anonymous=401)),
    "api inventory": Row("/api/inventory/", _each(200, anonymous=401), a_sees_own_data=True),
    "api inventory of A's warehouse": Row(
        lambda w: f"/api/inventory/?warehouse={w.warehouse_a.pk}",
        _each(404, anonymous=401, creator_a=200), a_sees_own_data=True,
    ),
    "api orders": Row("/api/orders/", _each(200, anonymous=401), a_sees_own_data=True),
    "api alerts": Row("/api/alerts/", _each(200, anonymous=401), a_sees_own_data=True),
    "healthz": Row("/healthz", _each(200)),
    "system monitor (staff)": Row("/system/", _each(("redirect", ADMIN_LOGIN), staff=200)),
    "acknowledge A's alert": Row(
        lambda w: f"/alerts/{w.alert_a.pk}/acknowledge/",
        _each(404, anonymous=REDIRECT_TO_LOGIN, creator_a=("redirect", "/")), method="post",
    ),
    "acknowledge A's alert (htmx)": Row(
        lambda w: f"/alerts/{w.alert_a.pk}/acknowledge/",
        _each(404, anonymous=REDIRECT_TO_LOGIN, creator_a=200), method="post", htmx=True, a_sees_own_data=True,
    ),
    "resolve A's alert": Row(
        lambda w: f"/alerts/{w.alert_a.pk}/resolve/",
        _each(404, anonymous=REDIRECT_TO_LOGIN, creator_a=("redirect", "/")), method="post",
    ),
    "resolve A's alert (htmx)": Row(
        lambda w: f"/alerts/{w.alert_a.pk}/resolve/",
        _each(404, anonymous=REDIRECT_TO_LOGIN, creator_a=200), method="post", htmx=True,
    ),
    "orders page": Row("/orders/", _each(200, anonymous=REDIRECT_TO_LOGIN), a_sees_own_data=True),
    "A's order detail": Row(
        lambda w: f"/orders/{w.order_a.pk}/", _each(404, anonymous=REDIRECT_TO_LOGIN, creator_a=200), a_sees_own_data=True
    ),
    # Starting or ending a LIVE acts on the visitor's own sessions only: nobody reaches A's.
    "start a LIVE": Row("/live/start/", _each(("redirect", "/"), anonymous=REDIRECT_TO_LOGIN), method="post"),
    "end a LIVE (none running)": Row("/live/end/", _each(409, anonymous=REDIRECT_TO_LOGIN), method="post"),
    "api live": Row("/api/live/", _each(200, anonymous=401)),
    "api live start": Row("/api/live/start/", _each(201, anonymous=401), method="post"),
    "api live end (none running)": Row("/api/live/end/", _each(409, anonymous=401), method="post"),
    "webhook by GET": Row(WEBHOOK_URL, _each(405)),
    "webhook unsigned": Row(WEBHOOK_URL, _each(401), method="post"),
    "login page": Row(LOGIN, _each(200)),
    "logout": Row("/accounts/logout/", _each(("redirect", LOGIN)), method="post"),
    "password change": Row("/accounts/password_change/", _each(200, anonymous=REDIRECT_TO_LOGIN)),
    "password change done": Row("/accounts/password_change/done/", _each(200, anonymous=REDIRECT_TO_LOGIN)),
    "password reset": Row("/accounts/password_reset/", _each(200)),
    "password reset done": Row("/accounts/password_reset/done/", _each(200)),
    "password reset confirm, forged token": Row("/accounts/reset/MQ/forged-token/", _each(200)),
    "password reset complete": Row("/accounts/reset/done/", _each(200)),
}


def _call(world: World, row: Row, role: str):
    client = world.client(role)
    headers = {"HTTP_HX_REQUEST": "true"} if row.htmx else {}
    path = row.path(world)
    if row.method == "post" and path == WEBHOOK_URL:
        return client.generic("POST", path, data=b"{}", content_type="application/json")
    return getattr(client, row.method)(path, **headers)


def _check(response, expected, role: str) -> None:
    if isinstance(expected, tuple):
        assert response.status_code == 302, (role, response.status_code, response.content[:300])
        assert response["Location"].startswith(expected[1]), (role, response["Location"])
    else:
        assert response.status_code == expected, (role, response.status_code, response.content[:300])


@pytest.mark.parametrize("route", MATRIX)
def test_authorization_matrix(world, route):
    row = MATRIX[route]
    # A last: A's own actions may change A's data, which the other visitors' attempts must not.
    for role in ("anonymous", "creator_b", "staff", "creator_a"):
        alert_before = InventoryAlert.objects.values_list("status", flat=True).get(pk=world.alert_a.pk)

        response = _call(world, row, role)

        _check(response, row.expected[role], role)
        if role == "creator_a":
            if row.a_sees_own_data:
                assert _shows_a(response), "A's own data is missing, so the isolation checks prove nothing"
        else:
            assert not _shows_a(response), f"{role} was shown creator A's data"
            # Nobody but A changes A's alert.
            assert InventoryAlert.objects.values_list("status", flat=True).get(pk=world.alert_a.pk) == alert_before


def _project_routes() -> set[str]:
    """Names of every route outside the admin (which has its own matrix below)."""
    names = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    continue
                walk(pattern.url_patterns, prefix + (f"{pattern.namespace}:" if pattern.namespace else ""))
            elif isinstance(pattern, URLPattern):
                names.add(prefix + (pattern.name or pattern.lookup_str))

    walk(get_resolver().url_patterns)
    return names


def test_the_matrix_covers_every_route_of_the_project(world):
    covered = {resolve(row.path(world).split("?")[0]).view_name for row in MATRIX.values()}

    assert _project_routes() - covered == set()


# --- the admin -----------------------------------------------------------------------------------------------


def _admin_views() -> list[str]:
    views = ["/admin/"]
    for model in admin.site._registry:
        views.append(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
    return views


def _a_object_of(model, world: World):
    """The first object of ``model`` that belongs to creator A, if any."""
    for lookup in ("creator", "shop__creator", "product__creator", "stock__product__creator",
                   "order_item__order__creator", "order__creator"):
        try:
            found = model._default_manager.filter(**{lookup: world.creator_a}).order_by("pk").first()
        except Exception:  # noqa: BLE001 - the model has no such relation
            continue
        if found is not None:
            return found
    return world.creator_a if model is type(world.creator_a) else None


@pytest.mark.parametrize("path", _admin_views())
def test_admin_is_for_staff_only(world, path):
    for role in ROLES:
        response = world.client(role).get(path)

        if role == "staff":
            assert response.status_code == 200
        else:
            assert response.status_code == 302, role
            assert response["Location"].startswith(ADMIN_LOGIN), role
            assert not _shows_a(response)


# Groups and django-axes' sign-in records (by username and address) belong to no creator; every
# other admin model holds creator data. All of them are staff-only through test_admin_is_for_staff_only.
CREATOR_MODELS = [
    model for model in admin.site._registry if model._meta.label != "auth.Group" and model._meta.app_label != "axes"
]


@pytest.mark.parametrize("model", CREATOR_MODELS, ids=lambda model: model._meta.label)
def test_admin_change_pages_of_a_creators_objects_are_for_staff_only(world, model):
    target = _a_object_of(model, world)
    assert target is not None, f"the world has no {model._meta.verbose_name} of creator A"
    path = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[target.pk])

    for role in ROLES:
        response = world.client(role).get(path)

        if role == "staff":
            assert response.status_code == 200
            text = response.content.decode()
            assert SECRET_A not in text and TOKEN_A not in text, "the admin shows a shop's secret"
        else:
            assert response.status_code == 302 and response["Location"].startswith(ADMIN_LOGIN), role


# --- websockets -----------------------------------------------------------------------------------------------


async def _socket(user, *, origin: str | None = "http://testserver"):
    headers = []
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        headers.append((b"cookie", cookie.encode()))
    communicator = ServerLikeCommunicator(application, "/ws/dashboard/", headers=headers)
    connected, _ = await communicator.connect()
    return communicator, connected


async def _snapshot(communicator) -> str:
    """Return the snapshot: one frame carrying every fragment."""
    snapshot = await communicator.receive_from(timeout=10)
    assert {fragment_id(part) for part in frame_parts(snapshot)} == set(FRAGMENT_NAMES)
    return snapshot


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("role", ROLES)
async def test_websocket_matrix(role, make_creator, make_shop, make_product):
    world = await sync_to_async(_world_for_sockets)(make_creator, make_shop, make_product)

    communicator, connected = await _socket(world.get(role))
    try:
        if role == "anonymous":
            assert connected
            closing = await communicator.receive_output(timeout=10)
            assert closing == {"type": "websocket.close", "code": 4401}
            return
        assert connected
        snapshot = await _snapshot(communicator)
        assert ("Aardvark Secret Lamp" in snapshot) == (role == "creator_a")
    finally:
        await communicator.disconnect()


def _world_for_sockets(make_creator, make_shop, make_product) -> dict:
    creator_a = make_creator("socket-a")
    make_product(creator_a, stock=5, external_id="P-A", name="Aardvark Secret Lamp")
    return {
        "anonymous": None,
        "creator_a": creator_a,
        "creator_b": make_creator("socket-b"),
        "staff": make_creator("socket-staff", is_staff=True, is_superuser=True),
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "origin",
    [None, "https://evil.example", "http://testserver.evil.example", "null", "http://evil.example:80",
     "file://", "http://127.0.0.1.evil.example"],
)
async def test_websocket_from_a_foreign_origin_is_refused(make_creator, origin):
    creator = await sync_to_async(make_creator)("socket-origin")

    communicator, connected = await _socket(creator, origin=origin)
    await communicator.disconnect()
    allowed, allowed_connected = await _socket(creator)
    await allowed.disconnect()

    assert not connected
    assert allowed_connected  # the same creator from the site's own origin gets in


# --- CSRF -------------------------------------------------------------------------------------------------------


def _csrf_targets(world: World) -> dict:
    """Every state-changing POST: path, the role that may make it, and form data that would succeed."""
    product_url = reverse("admin:inventory_product_change", args=[world.product_a.pk])
    return {
        "acknowledge": (f"/alerts/{world.alert_a.pk}/acknowledge/", "creator_a", {}),
        "resolve": (f"/alerts/{world.alert_a.pk}/resolve/", "creator_a", {}),
        "logout": ("/accounts/logout/", "creator_a", {}),
        "login": (LOGIN, "anonymous", {"username": "creator-a", "password": "pass-1234"}),
        "password change": ("/accounts/password_change/", "creator_a",
                            {"old_password": "pass-1234", "new_password1": "n3w-Passw0rd!x",
                             "new_password2": "n3w-Passw0rd!x"}),
        "password reset": ("/accounts/password_reset/", "anonymous", {"email": "a@example.com"}),
        "admin login": (ADMIN_LOGIN, "anonymous", {"username": "operator", "password": "pass-1234"}),
        "admin logout": ("/admin/logout/", "staff", {}),
        "admin product change": (product_url, "staff", {"name": "Renamed", "sku": "X", "reorder_point": "3",
                                                       "unit_cost": "1.00", "_save": "Save"}),
        "admin alert action": ("/admin/inventory/inventoryalert/", "staff",
                               {"action": "acknowledge", "_selected_action": [world.alert_a.pk]}),
        "admin webhook replay": ("/admin/orders/webhookevent/", "staff",
                                 {"action": "replay", "_selected_action": [world.event_a.pk]}),
    }


@pytest.mark.parametrize("target", [
    "acknowledge", "resolve", "logout", "login", "password change", "password reset", "admin login", "admin logout",
    "admin product change", "admin alert action", "admin webhook replay",
])
def test_state_changing_posts_need_a_csrf_token(world, target):
    path, role, data = _csrf_targets(world)[target]
    before = (
        InventoryAlert.objects.values_list("status", flat=True).get(pk=world.alert_a.pk),
        Product.objects.values_list("name", flat=True).get(pk=world.product_a.pk),
        WebhookEvent.objects.values_list("status", flat=True).get(pk=world.event_a.pk),
    )
    forged = world.client(role, enforce_csrf_checks=True)

    response = forged.post(path, data=data)

    assert response.status_code == 403, (target, response.status_code)
    assert (
        InventoryAlert.objects.values_list("status", flat=True).get(pk=world.alert_a.pk),
        Product.objects.values_list("name", flat=True).get(pk=world.product_a.pk),
        WebhookEvent.objects.values_list("status", flat=True).get(pk=world.event_a.pk),
    ) == before
    # With the token the site hands out, the same request is accepted: the 403 was CSRF's doing.
    honest = world.client(role, enforce_csrf_checks=True)
    form_pages = {"acknowledge": "/", "resolve": "/", "logout": "/", "admin logout": "/admin/"}
    honest.get(form_pages.get(target, path))
    token = honest.cookies[settings.CSRF_COOKIE_NAME].value
    accepted = honest.post(path, data={**data, "csrfmiddlewaretoken": token})
    assert accepted.status_code in (200, 302), (target, accepted.status_code)


def test_the_webhook_needs_no_csrf_token_only_its_signature(world):
    client = Client(enforce_csrf_checks=True)
    body = encode(order_document(world.shop_a, order_id="CSRF-FREE", items=[("P-A", 1)]))

    unsigned = client.generic("POST", WEBHOOK_URL, data=body, content_type="application/json")
    signed_answer = client.generic("POST", WEBHOOK_URL, data=body, content_type="application/json",
                                   HTTP_AUTHORIZATION=signed(world.shop_a, body))

    assert unsigned.status_code == 401
    assert signed_answer.status_code == 200


# --- deploy checks -------------------------------------------------------------------------------------------------


def _manage(*arguments, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {key: value for key, value in os.environ.items()
            if not key.startswith(("DJANGO_", "DATABASE_", "REDIS_", "SECURE_", "SQLITE_"))
            and key not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "BEHIND_PROXY"}}
    return subprocess.run(
        [sys.executable, "manage.py", *arguments], cwd=settings.BASE_DIR, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "ALLOWED_HOSTS": "creatorflow.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://creatorflow.example.com",
    "BEHIND_PROXY": "1",
    "SECURE_HSTS_PRELOAD": "1",
    "DJANGO_SETTINGS_MODULE": "creatorflow.settings",
}


def test_check_deploy_passes_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_check_deploy_without_the_preload_opt_in_only_mentions_preload():
    """HSTS preload is a commitment the operator makes (SECURE_HSTS_PRELOAD=1); nothing else is left open."""
    production = {key: value for key, value in PRODUCTION.items() if key != "SECURE_HSTS_PRELOAD"}

    result = _manage("check", "--deploy", env=production)

    assert result.returncode == 0, result.stdout + result.stderr
    issues = [line for line in result.stderr.splitlines() if line.startswith("?: (")]
    assert [issue.split(")")[0] + ")" for issue in issues] == ["?: (security.W021)"], result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    production = {key: value for key, value in PRODUCTION.items() if key != "SECRET_KEY"}

    result = _manage("check", env=production)

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


# --- secrets stay out of logs and answers ------------------------------------------------------------------------


class _AllRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record):
        self.texts.append(self.format(record))


@pytest.fixture
def every_log_line():
    """Everything logged by any logger (creatorflow.*, django.*, ...), with tracebacks, at DEBUG."""
    handler = _AllRecords()
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(), logging.getLogger("creatorflow"), logging.getLogger("django"),
               logging.getLogger("django.request"), *(logging.getLogger(f"creatorflow.{name}")
                                                     for name in ("webhooks", "realtime", "orders", "inventory"))]
    previous = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler.texts
    for logger, level in previous:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_secrets_never_appear_in_logs_or_answers(world, every_log_line, settings):
    settings.DEBUG = False
    shop = world.shop_a
    answers: list[str] = []
    body = encode(order_document(shop, order_id="SECRET-CHECK-1", items=[("P-A", 1)]))
    good_signature = signed(shop, body)
    forged_signature = signed(ShopConnection(app_key=shop.app_key, app_secret="guess"), body)
    webhook = Client()
    for signature in (good_signature, good_signature, forged_signature, good_signature.upper(), ""):
        answers.append(webhook.generic("POST", WEBHOOK_URL, data=body, content_type="application/json",
                                       HTTP_AUTHORIZATION=signature).content.decode())
    tiktok_shaped = json.dumps({"type": 1, "tts_notification_id": "N-1", "shop_id": "shop-a",
                                "timestamp": 1_800_000_000,
                                "data": {"order_id": "T-1", "order_status": "UNPAID", "update_time": 1_800_000_000}})
    # TikTok's API is unreachable for this shop: processing fails, and the failure is logged and stored.
    ShopConnection.objects.filter(pk=shop.pk).update(api_base_url="http://127.0.0.1:9")
    answers.append(webhook.generic("POST", WEBHOOK_URL, data=tiktok_shaped.encode(), content_type="application/json",
                                   HTTP_AUTHORIZATION=signed(shop, tiktok_shaped.encode())).content.decode())
    browser = Client()
    login = browser.post(LOGIN, {"username": "creator-a", "password": "pass-1234"})
    session_id = browser.cookies[settings.SESSION_COOKIE_NAME].value
    for path in ("/", "/api/metrics/", "/api/orders/", "/api/alerts/", "/api/inventory/?warehouse=abc", "/healthz",
                 "/api/orders/?status=nonsense", "/no-such-page/"):
        answers.append(browser.get(path).content.decode())
    answers.append(login.content.decode())
    stored = list(WebhookEvent.objects.values_list("error", flat=True))
    from creatorflow.models import SystemHealth  # noqa: PLC0415 - only this test reads it

    stored += list(SystemHealth.objects.values_list("error_message", flat=True))

    assert any("T-1" in text or "TikTok" in text for text in stored), "the failure under test did not happen"
    assert every_log_line, "nothing was logged, so the check below proves nothing"
    for secret in (SECRET_A, TOKEN_A, good_signature, forged_signature, good_signature.upper(), session_id):
        assert not any(secret in line for line in every_log_line), f"a secret reached the logs: {secret[:6]}…"
        assert not any(secret in answer for answer in answers), f"a secret reached an answer: {secret[:6]}…"
        assert not any(secret in text for text in stored), f"a secret was stored in an error: {secret[:6]}…"
