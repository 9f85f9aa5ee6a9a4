"""The dashboard page, its htmx actions on alerts and LIVE sessions, the orders pages, and the health check.

Views parse the request, call one service or selector and render fragments; the rules live
in the services and selectors they call.
"""

import asyncio
import logging
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from inventory import selectors as inventory_selectors
from inventory.services import alerts as alert_services
from inventory.models import InventoryAlert
from orders import selectors as order_selectors
from orders.events import OrderError
from orders.models import Order, OrderStatus
from orders.statuses import status_filter_parse

from . import fragments, selectors
from .live import services as live_services
from .monitor import MONITOR

logger = logging.getLogger("creatorflow.realtime")

WEBSOCKET_PATH = "/ws/dashboard/"
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
ALERT_FRAGMENTS = (fragments.ALERT_BANNER, fragments.ALERT_LIST, fragments.METRIC_CARDS)
LIVE_FRAGMENTS = (fragments.LIVE_HEADER, fragments.INVENTORY_TABLE)


@login_required
@require_GET
def dashboard(request):
    """Render the whole dashboard; its fragments then stay live over the websocket."""
    creator_id = request.user.pk
    filters = fragments.filters_parse(creator_id=creator_id, data=request.GET)
    with timezone.override(selectors.creator_tz(creator_id)):
        context = fragments.dashboard_context(creator_id=creator_id, filters=filters)
        context["websocket_path"] = WEBSOCKET_PATH
        context["onboarding"] = _onboarding(request)
        return render(request, fragments.TEMPLATE, context)


def _onboarding(request) -> dict | None:
    """What a seller without a shop or products needs to connect one; None once both exist."""
    creator_id = request.user.pk
    shops = order_selectors.shop_ids(creator_id=creator_id)
    if shops and inventory_selectors.products_exist(creator_id=creator_id):
        return None
    return {
        "webhook_url": request.build_absolute_uri(reverse("orders:tiktok-webhook")),
        "shop_id": shops[0] if shops else "",
        "username": request.user.get_username(),
    }


def _fragments_response(request, names) -> object:
    """Answer an action: the changed fragments (swapped by id) for htmx, else back to the dashboard."""
    if not request.htmx:
        return HttpResponseRedirect(reverse("dashboard"))
    rendered = fragments.fragments_render(creator_id=request.user.pk, names=names)
    return render(request, "realtime/fragments.html", {"fragments": rendered.values()})


def _alert_action(request, alert_id: int, action) -> object:
    try:
        alert = inventory_selectors.alert_get(creator_id=request.user.pk, alert_id=alert_id)
    except InventoryAlert.DoesNotExist:
        raise Http404("That alert does not exist any more.") from None
    action(alert)
    return _fragments_response(request, ALERT_FRAGMENTS)


@login_required
@require_POST
def alert_acknowledge(request, alert_id: int):
    """Acknowledge one of the creator's alerts; answer with the alert fragments, swapped by id."""
    return _alert_action(request, alert_id, lambda alert: alert_services.alert_acknowledge(alert=alert, by=request.user))


@login_required
@require_POST
def alert_resolve(request, alert_id: int):
    """Resolve one of the creator's alerts; answer with the alert fragments, swapped by id."""
    return _alert_action(request, alert_id, lambda alert: alert_services.alert_resolve(alert=alert))


@login_required
@require_POST
def live_start(request):
    """Start a LIVE session; 409 with the reason while one runs."""
    try:
        live_services.live_start(creator_id=request.user.pk, title=request.POST.get("title", ""))
    except live_services.LiveError as error:
        return HttpResponse(str(error), status=409, content_type="text/plain; charset=utf-8")
    return _fragments_response(request, LIVE_FRAGMENTS)


@login_required
@require_POST
def live_end(request):
    """End the running LIVE session, keeping its summary; 409 when none runs."""
    try:
        live_services.live_end(creator_id=request.user.pk)
    except live_services.LiveError as error:
        return HttpResponse(str(error), status=409, content_type="text/plain; charset=utf-8")
    return _fragments_response(request, LIVE_FRAGMENTS)


# --- orders pages ------------------------------------------------------------------------------


@login_required
@require_GET
def orders_list(request):
    """Every order of the creator, paged, searchable by order id, filtered by status and flag."""
    creator_id = request.user.pk
    try:
        status = status_filter_parse(request.GET.get("status"))
    except OrderError:
        status = None
    try:
        flag = order_selectors.flag_filter_parse(request.GET.get("flag"))
    except OrderError:
        flag = None
    search = request.GET.get("q", "").strip()[:64]
    tz = selectors.creator_tz(creator_id)
    with timezone.override(tz):
        page = order_selectors.orders_page(
            creator_id=creator_id, status=status, flag=flag, search=search, page=request.GET.get("page")
        )
        query = {key: value for key, value in (("status", status), ("flag", flag), ("q", search)) if value}
        return render(
            request,
            "realtime/orders.html",
            {
                "order_rows": [fragments.OrderRow.of(order, tz) for order in page],
                "order_count": page.paginator.count,
                "page": page,
                "query": query,
                "order_statuses": OrderStatus.choices,
                "order_flags": Order.Flag.values,
                "selected_status": status,
                "selected_flag": flag,
                "search": search,
                "currency": order_selectors.orders_currency(creator_id=creator_id),
            },
        )


@login_required
@require_GET
def order_detail(request, order_pk: int):
    """One order: its items, the stock reservations of its lines, and the inbox events that made it."""
    creator_id = request.user.pk
    try:
        order = order_selectors.order_get(creator_id=creator_id, order_pk=order_pk)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    with timezone.override(selectors.creator_tz(creator_id)):
        return render(
            request,
            "realtime/order_detail.html",
            {
                "order": order,
                "row": fragments.OrderRow.of(order, timezone.get_current_timezone()),
                "reservations": order_selectors.order_reservations(order=order),
                "events": order_selectors.order_webhook_events(order=order),
                "currency": order.currency or order.shop.currency or order_selectors.orders_currency(creator_id=creator_id),
            },
        )


# --- health ------------------------------------------------------------------------------------


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_check() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # A channel like every dashboard's (``new_channel()``'s default prefix). With Redis, one
    # receive at a time reads this process's channels for all of them, and it reads only the
    # channels of its own prefix: under another prefix, the reply waited for that reader's poll
    # to time out (5 s), past the check's limit, on every server with a dashboard open.
    channel = await layer.new_channel()
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "healthz.ping", "token": token})
    message = await layer.receive(channel)
    if message.get("token") != token:
        raise RuntimeError("channel layer answered with another message")


async def _check(name: str, check) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check(), timeout=HEALTH_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        logger.warning("health check: %s timed out", name)
        return name, "timeout"
    except Exception as error:  # noqa: BLE001 - any failure means the part is down
        # Only the class name: connection errors can carry URLs with credentials.
        logger.warning("health check: %s failed (%s)", name, type(error).__name__)
        return name, f"error: {type(error).__name__}"
    return name, "ok"


async def healthz(request):
    """Answer 200 when the database and the channel layer answer, 503 naming the part that does not."""
    results = dict(
        await asyncio.gather(
            _check("database", sync_to_async(_database_check)),
            _check("channel_layer", _channel_layer_check),
        )
    )
    failing = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "ok" if not failing else "unavailable", "checks": results, "failing": failing}
    return JsonResponse(body, status=503 if failing else 200)


@staff_member_required
@require_GET
def system_monitor(request):
    """Show staff every server process once: this one's figures now, the others' latest reports."""
    own_report, others = selectors.realtime_processes_besides(component=MONITOR.component)
    return render(
        request,
        "realtime/system.html",
        {"this_process": MONITOR.snapshot(), "this_report": own_report, "processes": others},
    )
