"""Small presentation filters for the dashboard's fragments."""

from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

from orders.models import Order, OrderStatus

register = template.Library()

_STATUS_TONES = {
    OrderStatus.UNPAID: "pending",
    OrderStatus.ON_HOLD: "paid",
    OrderStatus.AWAITING_SHIPMENT: "paid",
    OrderStatus.PARTIALLY_SHIPPING: "shipping",
    OrderStatus.AWAITING_COLLECTION: "shipping",
    OrderStatus.IN_TRANSIT: "shipping",
    OrderStatus.DELIVERED: "done",
    OrderStatus.COMPLETED: "done",
    OrderStatus.CANCELLED: "cancelled",
}

_FLAG_LABELS = {
    Order.Flag.INSUFFICIENT_STOCK: "Insufficient stock",
    Order.Flag.UNKNOWN_PRODUCT: "Unknown product",
    Order.Flag.RESERVATION_EXPIRED: "Reservation expired",
}

_STATUS_LABELS = dict(OrderStatus.choices)


@register.filter
def order_status_tone(status: str) -> str:
    """Name the colour family of an order status badge."""
    return _STATUS_TONES.get(status, "pending")


@register.filter
def order_status_label(status: str) -> str:
    return _STATUS_LABELS.get(status, status)


@register.filter
def order_flag_label(flag: str) -> str:
    return _FLAG_LABELS.get(flag, flag.replace("_", " ").capitalize())


@register.filter
def minutes_label(minutes) -> str:
    """Show a duration in minutes as "42 min" or "3 h 5 min"; a dash when unknown."""
    if minutes is None or minutes == "":
        return "—"
    minutes = round(float(minutes))
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


@register.filter
def hours_label(hours) -> str:
    """Show a stockout ETA in hours as "5 h" or "2 d 3 h"; a dash when nothing sells."""
    if hours is None:
        return "—"
    hours = int(hours)
    if hours < 48:
        return f"{hours} h"
    days, rest = divmod(hours, 24)
    return f"{days} d {rest} h" if rest else f"{days} d"


_SYNC_STATUS_LABELS = {"synced": "Sync up to date", "syncing": "Syncing now", "error": "Sync failed"}


@register.filter
def sync_status_label(status: str) -> str:
    return _SYNC_STATUS_LABELS.get(status, f"Sync {status}")


@register.filter
def ago(moment: datetime | None) -> str:
    """Say how long ago ``moment`` was, "just now" under a minute."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment, depth=1)} ago"


@register.filter
def money(value) -> str:
    """Show an amount with two decimals and thousands separators ("1,234.50"); a dash when unknown."""
    try:
        return f"{Decimal(str(value)):,.2f}"
    except (InvalidOperation, ValueError, TypeError):
        return "—"
