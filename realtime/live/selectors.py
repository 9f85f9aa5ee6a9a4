"""Reads behind the LIVE header, the inventory's "sold this LIVE" and ``/api/live/``.

A session counts the orders placed from its start to its end by whole minutes of the order
rollups (``OrderMinute``, ``ProductSalesMinute``): the minute it starts in through the minute it
ends in (now, while it runs). The cost is a few hundred rows whatever the seller's history.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Sum
from django.utils import timezone

from creatorflow.prepared import prepared
from creatorflow.reads import shared_read
from inventory import selectors as inventory_selectors
from inventory.models import Product, ProductSalesMinute
from orders.models import OrderMinute
from orders.rollups import minute_start

from ..models import LiveSession

PER_MINUTE_WINDOW = 60  # minutes of the per-minute chart
RECENT_LIMIT = 5


@dataclass(frozen=True)
class LiveMinute:
    minute: datetime
    orders: int


@dataclass(frozen=True)
class LiveProduct:
    product_pk: int
    product_id: str  # TikTok id
    name: str
    sold: int
    available: int


@dataclass
class LiveFigures:
    """What a LIVE session sold: totals, orders per minute (last 60 minutes) and, when asked, per product."""

    session: LiveSession
    gmv: Decimal
    orders: int
    units: int
    short_orders: int
    short_units: int
    per_minute: list[LiveMinute] = field(default_factory=list)
    products: list[LiveProduct] = field(default_factory=list)
    last_minute: datetime | None = None


def _minutes(session: LiveSession, now: datetime) -> tuple[datetime, datetime]:
    """Return the first and last minute (inclusive) a session counts."""
    first = minute_start(session.started_at)
    last = minute_start(session.ended_at or now)
    return first, max(first, last)


def live_running(*, creator_id: int) -> LiveSession | None:
    """Return the creator's running LIVE session, if one runs."""
    return shared_read(("live_running", creator_id), lambda: live_running_many(creator_ids=[creator_id])[creator_id])


@prepared
def _sessions_running(*, creator_ids: list[int]):
    return LiveSession.objects.filter(creator_id__in=creator_ids, ended_at__isnull=True).order_by("started_at", "pk")


def live_running_many(*, creator_ids: Iterable[int]) -> dict[int, LiveSession | None]:
    """The running LIVE session (or None) of several creators, in one statement."""
    running: dict[int, LiveSession | None] = dict.fromkeys(creator_ids)
    for session in _sessions_running.objects(creator_ids=list(running)):
        running[session.creator_id] = session  # the latest started is written last, as ``.first()`` would pick it
    return running


def live_ended(*, creator_id: int, limit: int = RECENT_LIMIT) -> list[LiveSession]:
    """Return the creator's ended sessions, latest first, with the summaries kept at their end."""
    return list(LiveSession.objects.filter(creator_id=creator_id, ended_at__isnull=False).order_by("-started_at", "-pk")[:limit])


def live_get(*, creator_id: int, session_id: int) -> LiveSession:
    """Return one of the creator's sessions; raise LiveSession.DoesNotExist for anyone else's."""
    return LiveSession.objects.get(creator_id=creator_id, pk=session_id)


def live_figures(*, session: LiveSession, now: datetime | None = None, products: bool = False) -> LiveFigures:
    """Add up a session's orders from the per-minute rollups (and its units sold per product)."""
    now = now or timezone.now()
    first, last = _minutes(session, now)
    rows = list(
        OrderMinute.objects.filter(creator_id=session.creator_id, minute__gte=first, minute__lte=last)
        .order_by("minute")
        .values_list("minute", "orders", "units", "paid_amount", "short_orders", "short_units")
    )
    window_start = max(first, last - timedelta(minutes=PER_MINUTE_WINDOW - 1))
    by_minute = {minute: orders for minute, orders, *_ in rows}
    figures = LiveFigures(
        session=session,
        gmv=sum((Decimal(row[3]) for row in rows), Decimal(0)).quantize(Decimal("0.01")),
        orders=sum(row[1] for row in rows),
        units=sum(row[2] for row in rows),
        short_orders=sum(row[4] for row in rows),
        short_units=sum(row[5] for row in rows),
        per_minute=[
            LiveMinute(minute=minute, orders=by_minute.get(minute, 0))
            for minute in (window_start + timedelta(minutes=index) for index in range(PER_MINUTE_WINDOW))
            if minute <= last
        ],
        last_minute=last,
    )
    if products:
        figures.products = live_products(session=session, now=now)
    return figures


def live_sold(*, session: LiveSession, now: datetime | None = None) -> dict[int, int]:
    """Units sold per product (by primary key) during the session, cancellations taken off.

    Read once per shared scope (a publish): the LIVE header and the inventory rows both show it.
    """
    return shared_read(("live_sold", session.pk), lambda: _live_sold(session, now))


def _live_sold(session: LiveSession, now: datetime | None) -> dict[int, int]:
    first, last = _minutes(session, now or timezone.now())
    return dict(
        ProductSalesMinute.objects.filter(
            product__creator_id=session.creator_id, minute__gte=first, minute__lt=last + timedelta(minutes=1)
        )
        .values_list("product_id")
        .annotate(sold=Sum("units"))
        .values_list("product_id", "sold")
    )


def live_products(*, session: LiveSession, now: datetime | None = None) -> list[LiveProduct]:
    """The products sold during the session, best seller first, with what is available now."""
    sold = {product_pk: units for product_pk, units in live_sold(session=session, now=now).items() if units}
    available = inventory_selectors.products_available(creator_id=session.creator_id, product_ids=list(sold))
    products = Product.objects.filter(pk__in=list(sold)).only("pk", "external_id", "name")
    return sorted(
        (
            LiveProduct(
                product_pk=product.pk,
                product_id=product.external_id,
                name=product.name,
                sold=sold[product.pk],
                available=available.get(product.pk) or 0,
            )
            for product in products
        ),
        key=lambda row: (-row.sold, row.name.lower(), row.product_pk),
    )


def live_summary(*, session: LiveSession) -> LiveFigures:
    """An ended session's figures as kept at its end (no per-minute rows, no products)."""
    return LiveFigures(
        session=session,
        gmv=session.gmv,
        orders=session.orders,
        units=session.units,
        short_orders=session.short_orders,
        short_units=session.short_units,
    )
