"""The dashboard page, its htmx actions on alerts, and the health check.

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
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from inventory import selectors as inventory_selectors
from inventory.services import alerts as alert_services
from inventory.models import InventoryAlert

from . import fragments, selectors
from .monitor import MONITOR

logger = logging.getLogger("creatorflow.realtime")

WEBSOCKET_PATH = "/ws/dashboard/"
HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
ALERT_FRAGMENTS = (fragments.ALERT_BANNER, fragments.ALERT_LIST, fragments.METRIC_CARDS)


@login_required
@require_GET
def dashboard(request):
    """Render the whole dashboard; its fragments then stay live over the websocket."""
    creator_id = request.user.pk
    filters = fragments.filters_parse(creator_id=creator_id, data=request.GET)
    with timezone.override(selectors.creator_tz(creator_id)):
        context = fragments.dashboard_context(creator_id=creator_id, filters=filters)
        context["websocket_path"] = WEBSOCKET_PATH
        return render(request, fragments.TEMPLATE, context)


def _alert_action(request, alert_id: int, action) -> object:
    try:
        alert = inventory_selectors.alert_get(creator_id=request.user.pk, alert_id=alert_id)
    except InventoryAlert.DoesNotExist:
        raise Http404("No such alert.") from None
    action(alert)
    if not request.htmx:
        return HttpResponseRedirect(reverse("dashboard"))
    rendered = fragments.fragments_render(creator_id=request.user.pk, names=ALERT_FRAGMENTS)
    return render(request, "realtime/fragments.html", {"fragments": rendered.values()})


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


# --- health ------------------------------------------------------------------------------------


def _database_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


async def _channel_layer_check() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    channel = await layer.new_channel(prefix="healthz.")
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
