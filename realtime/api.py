"""The JSON API (DESIGN.md "JSON API"): the logged-in creator's metrics, inventory, orders, alerts and LIVEs.

Session authentication (and Django's CSRF check on POST); anonymous requests get 401 JSON,
another creator's ids 404.
"""

from collections.abc import Callable
from functools import wraps

from django.http import Http404, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from inventory import selectors as inventory_selectors
from inventory.models import InventoryAlert, Warehouse
from orders import selectors as order_selectors
from orders.events import OrderError
from orders.statuses import status_filter_parse

from . import selectors
from .live import selectors as live_selectors
from .live import services as live_services

LIST_LIMIT_DEFAULT = 100
LIST_LIMIT_MAX = 500


class BadRequest(ValueError):
    """A query parameter the API cannot use; answered with 400 and the message."""


def _api(method_check: Callable) -> Callable[[Callable], Callable]:
    def decorate(view: Callable) -> Callable:
        @method_check
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return JsonResponse({"error": "Authentication required: log in first."}, status=401)
            try:
                return view(request, *args, **kwargs)
            except BadRequest as error:
                return JsonResponse({"error": str(error)}, status=400)
            except live_services.LiveError as error:
                return JsonResponse({"error": str(error)}, status=409)

        return wrapper

    return decorate


# Require a logged-in creator (else 401 JSON) and turn BadRequest into 400 JSON, a refused LIVE action into 409.
api_view = _api(require_GET)
api_action = _api(require_POST)


def _limit(request) -> int:
    raw = request.GET.get("limit", "")
    if raw == "":
        return LIST_LIMIT_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= LIST_LIMIT_MAX:
        raise BadRequest(f"limit must be a whole number from 1 to {LIST_LIMIT_MAX}.")
    return int(raw)


def _warehouse_id(request, creator_id: int) -> int | None:
    raw = request.GET.get("warehouse", "").strip()
    if raw == "":
        return None
    if not raw.isdigit():
        raise BadRequest("warehouse must be a warehouse id (a whole number).")
    try:
        return inventory_selectors.warehouse_get(creator_id=creator_id, warehouse_id=int(raw)).pk
    except Warehouse.DoesNotExist:
        raise Http404("No such warehouse.") from None


def _number(value) -> float:
    return float(value)


@api_view
def metrics(request):
    """Return the creator's dashboard metrics grouped as orders, inventory and system."""
    return JsonResponse(selectors.metrics_grouped(creator_id=request.user.pk))


@api_view
def inventory(request):
    """Return the creator's products with stock figures (of one warehouse with ``?warehouse=``)."""
    warehouse_id = _warehouse_id(request, request.user.pk)
    rows, count = inventory_selectors.inventory_rows(creator_id=request.user.pk, warehouse_id=warehouse_id, limit=None)
    products = [
        {
            "product_id": row.product_id,
            "sku": row.sku,
            "name": row.name,
            "on_hand": row.on_hand,
            "reserved": row.reserved,
            "available": row.available,
            "reorder_point": row.reorder_point,
            "velocity_per_hour": _number(row.velocity_per_hour),
            "stockout_eta_hours": row.stockout_eta_hours,
            "stock_level": row.level,
        }
        for row in rows
    ]
    return JsonResponse({"warehouse": warehouse_id, "count": count, "products": products})


@api_view
def orders(request):
    """Return the creator's latest orders, newest first (of one status with ``?status=``)."""
    try:
        status = status_filter_parse(request.GET.get("status"))
    except OrderError as error:
        raise BadRequest(str(error)) from None
    recent = order_selectors.orders_recent(creator_id=request.user.pk, status=status, limit=_limit(request))
    return JsonResponse(
        {
            "status": status,
            "orders": [
                {
                    "order_id": order.external_id,
                    "status": order.status,
                    "total_amount": str(order.total_amount),
                    "currency": order.currency,
                    "placed_at": order.placed_at.isoformat(),
                    "items": [
                        {
                            "product_id": item.product.external_id,
                            "quantity": item.quantity,
                            "price": str(item.unit_price),
                        }
                        for item in order.items.all()
                    ],
                    "flags": list(order.flags),
                }
                for order in recent
            ],
        }
    )


@api_view
def alerts(request):
    """Return the creator's alerts, newest first (of one status with ``?status=``)."""
    raw = request.GET.get("status", "").strip().lower()
    if raw and raw not in InventoryAlert.Status.values:
        raise BadRequest(f"status must be one of {', '.join(InventoryAlert.Status.values)}.")
    found = inventory_selectors.alerts_list(
        creator_id=request.user.pk, statuses=[raw] if raw else None, limit=_limit(request)
    )
    return JsonResponse(
        {
            "status": raw or None,
            "alerts": [
                {
                    "id": alert.pk,
                    "product_id": alert.product.external_id,
                    "type": alert.type,
                    "severity": alert.severity,
                    "status": alert.status,
                    "message": alert.message,
                    "available": alert.available,
                    "created_at": alert.created_at.isoformat(),
                    "updated_at": alert.updated_at.isoformat(),
                    "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
                    "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
                }
                for alert in found
            ],
        }
    )


def _live_session(session, *, now) -> dict:
    """A LIVE session as DESIGN.md names it: totals, orders per minute (last 60) and units sold per product."""
    figures = live_selectors.live_figures(session=session, now=now, products=True)
    if not session.is_running:
        kept = live_selectors.live_summary(session=session)
        figures.gmv, figures.orders, figures.units = kept.gmv, kept.orders, kept.units
        figures.short_orders, figures.short_units = kept.short_orders, kept.short_units
    return {
        "id": session.pk,
        "title": session.title,
        "started_at": session.started_at.isoformat(),
        "ended_at": session.ended_at.isoformat() if session.ended_at else None,
        "gmv": str(figures.gmv),
        "orders": figures.orders,
        "units": figures.units,
        "short_orders": figures.short_orders,
        "short_units": figures.short_units,
        "per_minute": [{"minute": row.minute.isoformat(), "orders": row.orders} for row in figures.per_minute],
        "products": [
            {"product_id": row.product_id, "sold": row.sold, "available": row.available} for row in figures.products
        ],
    }


@api_view
def live(request):
    """Return the running LIVE session (or null) and the latest ended ones, with their figures."""
    now = timezone.now()
    running = live_selectors.live_running(creator_id=request.user.pk)
    return JsonResponse(
        {
            "current": _live_session(running, now=now) if running else None,
            "recent": [
                _live_session(session, now=now) for session in live_selectors.live_ended(creator_id=request.user.pk)
            ],
        }
    )


@api_action
def live_start(request):
    """Start a LIVE session (optional ``title``); 409 while one runs."""
    session = live_services.live_start(creator_id=request.user.pk, title=request.POST.get("title", ""))
    return JsonResponse({"session": _live_session(session, now=timezone.now())}, status=201)


@api_action
def live_end(request):
    """End the running LIVE session, keeping its summary; 409 when none runs."""
    session = live_services.live_end(creator_id=request.user.pk)
    return JsonResponse({"session": _live_session(session, now=timezone.now())})
