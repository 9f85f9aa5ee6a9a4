"""The dashboard's live fragments: what each one shows, which changes touch it, how it renders.

Each fragment is one partial of ``realtime/dashboard.html`` whose root element has the
fragment's name as its ``id`` and ``hx-swap-oob="true"``. The page, htmx responses and
websocket pushes all render fragments through ``fragments_render``, so they cannot drift apart.

Three fragments are lists of rows, each row a partial of its own with a stable ``id`` and its
place in the list's order (``data-sort``): recent orders, the inventory table and the alerts.
A change that names its rows (an order, the products whose stock it moved) pushes just those
rows (``push_render``); the page's script puts each where the list's order says and keeps the
list's length, so the page ends as a fresh render would show it.
"""

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from creatorflow.changes import ALERTS, INVENTORY, LIVE, ORDERS, Change
from creatorflow.reads import reads_shared, shared_reads_fill
from inventory import selectors as inventory_selectors
from inventory.models import Warehouse
from orders import selectors as order_selectors
from orders.events import OrderError
from orders.models import OrderStatus
from orders.statuses import status_filter_parse

from . import selectors
from .live import selectors as live_selectors
from .templatetags import dashboard as dashboard_tags

TEMPLATE = "realtime/dashboard.html"

LIVE_HEADER = "live-header"
METRIC_CARDS = "metric-cards"
ALERT_BANNER = "alert-banner"
ALERT_LIST = "alert-list"
INVENTORY_TABLE = "inventory-table"
RECENT_ORDERS = "recent-orders"
ORDERS_CHART = "orders-chart"
SYNC_OPERATIONS = "sync-operations"

# Fragment → the change topics (creatorflow.changes.TOPICS) that can alter what it shows.
FRAGMENT_TOPICS: dict[str, frozenset[str]] = {
    LIVE_HEADER: frozenset({"live", "orders"}),  # orders move it only while a LIVE runs (fragments_to_push)
    METRIC_CARDS: frozenset({"orders", "inventory", "alerts", "sync", "system"}),
    ALERT_BANNER: frozenset({"alerts"}),
    ALERT_LIST: frozenset({"alerts", "inventory"}),  # each alert shows its product's live available
    INVENTORY_TABLE: frozenset({"inventory", "live"}),  # "sold this LIVE" comes and goes with a LIVE
    RECENT_ORDERS: frozenset({"orders"}),
    ORDERS_CHART: frozenset({"orders"}),
    SYNC_OPERATIONS: frozenset({"sync"}),
}
FRAGMENT_NAMES: tuple[str, ...] = tuple(FRAGMENT_TOPICS)

CHART_WIDTH, CHART_HEIGHT, CHART_HOURS = 480, 120, 24
LIVE_CHART_WIDTH, LIVE_CHART_HEIGHT = 1200, 150  # the LIVE header spans the page
FLAGGED = "flagged"  # the recent orders' status filter for orders carrying any flag


@dataclass(frozen=True)
class DashboardFilters:
    """What one dashboard view narrows down to: a warehouse for inventory, a status (or "flagged") for orders."""

    warehouse_id: int | None = None
    status: str | None = None

    @property
    def is_default(self) -> bool:
        return self.warehouse_id is None and self.status is None

    def differs_for(self, name: str) -> bool:
        """Tell whether ``name`` renders differently under these filters than under none."""
        if name == INVENTORY_TABLE:
            return self.warehouse_id is not None
        if name == RECENT_ORDERS:
            return self.status is not None
        return False

    def fragments_changed_from(self, other: "DashboardFilters") -> list[str]:
        """Name the fragments that render differently under these filters than under ``other``."""
        changed = []
        if self.warehouse_id != other.warehouse_id:
            changed.append(INVENTORY_TABLE)
        if self.status != other.status:
            changed.append(RECENT_ORDERS)
        return changed

    def as_query(self) -> dict[str, str]:
        query = {}
        if self.warehouse_id is not None:
            query["warehouse"] = str(self.warehouse_id)
        if self.status is not None:
            query["status"] = self.status
        return query


DEFAULT_FILTERS = DashboardFilters()


def filters_parse(*, creator_id: int, data: Mapping[str, object]) -> DashboardFilters:
    """Read ``warehouse`` and ``status`` leniently: anything unknown or not the creator's means "all"."""
    warehouse_id = None
    raw_warehouse = str(data.get("warehouse") or "").strip()
    if raw_warehouse.isdigit():
        try:
            warehouse_id = inventory_selectors.warehouse_get(creator_id=creator_id, warehouse_id=int(raw_warehouse)).pk
        except Warehouse.DoesNotExist:
            warehouse_id = None
    raw_status = str(data.get("status") or "")
    if raw_status.strip().lower() == FLAGGED:
        return DashboardFilters(warehouse_id=warehouse_id, status=FLAGGED)
    try:
        status = status_filter_parse(raw_status)
    except OrderError:
        status = None
    return DashboardFilters(warehouse_id=warehouse_id, status=status)


def fragments_for_topics(topics: Iterable[str]) -> list[str]:
    """Name the fragments that changes under ``topics`` can alter, in page order."""
    topics = set(topics)
    return [name for name, fragment_topics in FRAGMENT_TOPICS.items() if fragment_topics & topics]


def fragments_to_push(*, creator_id: int, topics: Iterable[str]) -> list[str]:
    """Name the fragments a committed change re-renders for the creator's open dashboards.

    Those under its topics, less the LIVE header when no LIVE runs: between LIVEs it shows the
    ended sessions' figures, kept at their end, which no order changes (a start or an end is
    the live topic). Most sellers are not in a LIVE; their order publishes skip its render.
    """
    topics = set(topics)
    names = fragments_for_topics(topics)
    if LIVE_HEADER in names and "live" not in topics and live_selectors.live_running(creator_id=creator_id) is None:
        names.remove(LIVE_HEADER)
    return names


# Fragment → the id of the element holding its rows.
ROW_LISTS: dict[str, str] = {
    RECENT_ORDERS: "recent-orders-rows",
    INVENTORY_TABLE: "inventory-rows",
    ALERT_LIST: "alert-rows",
}


def rows_frame(name: str, rows: Iterable[str]) -> str:
    """Wrap rendered rows of fragment ``name`` in one out-of-band swap that appends them to their list.

    The wrapper is a ``<template>``: table rows parse inside one wherever it stands, so rows can
    share a websocket frame with whole fragments and other lists' rows. ``static/js/dashboard.js``
    swaps in the template's content, then keeps one row per id, in the list's order and length.
    """
    return f'<template hx-swap-oob="beforeend:#{ROW_LISTS[name]}">{"".join(rows)}</template>'


def _sort_key(*parts: object) -> str:
    """Encode a row's place in its list for ``data-sort`` (compared part by part in the browser)."""
    return json.dumps(parts, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Push:
    """What a committed change re-renders: whole fragments, and rows (fragment → row ids) on their own."""

    fragments: list[str]
    rows: dict[str, set[int]]


def push_plan(*, creator_id: int, change: Change) -> Push:
    """Decide what to render for a change: the rows it names where it names them, else whole fragments.

    New or changed orders are order rows; products whose stock moved are their inventory rows and
    the rows of their open alerts (each alert shows its product's available units). A topic marked
    as a whole (a resync, a new product, a LIVE starting or ending, an alert raised or resolved)
    re-renders its fragments whole.
    """
    names = fragments_to_push(creator_id=creator_id, topics=change.topics)
    rows: dict[str, set[int]] = {}
    order_ids = change.rows(ORDERS)
    if RECENT_ORDERS in names and order_ids is not None:
        names.remove(RECENT_ORDERS)
        rows[RECENT_ORDERS] = order_ids
    product_ids = change.rows(INVENTORY)
    if product_ids is not None and LIVE not in change.topics:
        if INVENTORY_TABLE in names:
            names.remove(INVENTORY_TABLE)
            rows[INVENTORY_TABLE] = product_ids
        if ALERT_LIST in names and ALERTS not in change.topics:
            names.remove(ALERT_LIST)
            rows[ALERT_LIST] = product_ids
    return Push(fragments=names, rows=rows)


# --- contexts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChartBar:
    start: datetime
    count: int
    title: str
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class ChartTick:
    x: float
    label: str
    anchor: str = "middle"


@dataclass
class Chart:
    bars: list[ChartBar] = field(default_factory=list)
    ticks: list[ChartTick] = field(default_factory=list)
    scale_max: int = 0
    total: int = 0
    peak: int = 0
    unit: str = "h"
    width: int = CHART_WIDTH
    height: int = CHART_HEIGHT

    @property
    def marks(self) -> SafeString:
        """The bars and time labels as SVG elements, built here rather than in a template loop.

        A chart is re-rendered on every order's push, and 24 (or, in a LIVE, 60) bars through the
        template engine cost more than the rest of the push's HTML. Between two pushes nearly every
        bar is the one drawn before (only the current slot's count moves), so each element's HTML
        is remembered by what it shows (``_chart_mark``).
        """
        last = len(self.bars) - 1
        bars = [
            _chart_mark(
                _BAR_MARK,
                "" if bar.count else " chart-bar-empty",
                " chart-bar-current" if index == last else "",
                bar.x, bar.y, bar.width, bar.height, 2 if bar.width > 4 else 0.5, bar.count, bar.title,
            )
            for index, bar in enumerate(self.bars)
        ]
        ticks = [_chart_mark(_TICK_MARK, tick.x, self.height - 2, tick.anchor, tick.label) for tick in self.ticks]
        return SafeString("".join(bars + ticks))


_BAR_MARK = '<rect class="chart-bar{}{}" x="{}" y="{}" width="{}" height="{}" rx="{}" data-count="{}"><title>{}</title></rect>'
_TICK_MARK = '<text class="chart-tick" x="{}" y="{}" text-anchor="{}">{}</text>'


@functools.lru_cache(maxsize=16_384, typed=True)  # ~200 bytes each; typed, so 104 and 104.0 stay apart
def _chart_mark(template: str, *values: object) -> SafeString:
    """Format one SVG element of a chart, its values escaped (``format_html``); remembered by template and values."""
    return format_html(template, *values)


def _scale_max(peak: int) -> int:
    """Round the chart's top up to 1, 2 or 5 times a power of ten."""
    if peak <= 4:
        return 4
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if peak <= step * magnitude:
                return step * magnitude
        magnitude *= 10


def _bar_chart(
    slots: list[tuple[datetime, int]], *, unit: str, tick_every: int, width: int = CHART_WIDTH, height: int = CHART_HEIGHT
) -> Chart:
    """Lay out one bar per slot (start, orders) for an SVG, labelled in the current time zone."""
    peak = max((count for _, count in slots), default=0)
    top = _scale_max(peak)
    slot = width / len(slots)
    gap = 4 if slot >= 12 else 2
    plot_height = height - 16  # room for the time labels under the bars
    chart = Chart(scale_max=top, total=sum(count for _, count in slots), peak=peak, unit=unit, width=width, height=height)
    current_tz = timezone.get_current_timezone()
    for index, (start, count) in enumerate(slots):
        height = round(plot_height * count / top, 1) if count else 0
        label = start.astimezone(current_tz).strftime("%H:%M")
        chart.bars.append(
            ChartBar(
                start=start,
                count=count,
                title=f"{label}: {count} order{'' if count == 1 else 's'}",
                x=round(index * slot + gap / 2, 1),
                y=round(plot_height - height, 1),
                width=round(slot - gap, 1),
                height=height,
            )
        )
        if index == 0:
            chart.ticks.append(ChartTick(x=2, label=label, anchor="start"))
        elif index == len(slots) - 1:
            chart.ticks.append(ChartTick(x=width - 2, label="now", anchor="end"))
        elif index % tick_every == 0:
            chart.ticks.append(ChartTick(x=round(index * slot + slot / 2, 1), label=label))
    return chart


def orders_chart(*, creator_id: int, now: datetime) -> Chart:
    """Lay out the orders-per-hour bars of the last 24 h for an SVG."""
    return _bar_chart(selectors.orders_per_hour(creator_id=creator_id, now=now, hours=CHART_HOURS), unit="h", tick_every=6)


def live_chart(figures: live_selectors.LiveFigures) -> Chart:
    """Lay out a LIVE's orders per minute over the last 60 minutes (empty before it started)."""
    counts = {row.minute: row.orders for row in figures.per_minute}
    window = live_selectors.PER_MINUTE_WINDOW
    first = figures.last_minute - timedelta(minutes=window - 1)
    minutes = [first + timedelta(minutes=index) for index in range(window)]
    return _bar_chart(
        [(minute, counts.get(minute, 0)) for minute in minutes], unit="min", tick_every=15,
        width=LIVE_CHART_WIDTH, height=LIVE_CHART_HEIGHT,
    )


def _context_live_header(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    running = live_selectors.live_running(creator_id=creator_id)
    figures = live_selectors.live_figures(session=running, now=now) if running else None
    return {
        "live": figures,
        "live_chart": live_chart(figures) if figures else None,
        "live_ended": [
            live_selectors.live_summary(session=session) for session in live_selectors.live_ended(creator_id=creator_id)
        ],
    }


def _context_metric_cards(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    metrics = selectors.metrics_grouped(creator_id=creator_id, now=now)
    last_sync = metrics["system"].get("last_sync")
    return {
        "metrics": metrics,
        "health": selectors.health_headline(
            health_status=metrics["system"].get("health_status"), sync_status=metrics["system"].get("sync_status")
        ),
        "last_sync_at": parse_datetime(last_sync) if isinstance(last_sync, str) else None,
    }


def _context_alert_banner(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    return {"urgent_alert_count": inventory_selectors.alerts_urgent_count(creator_id=creator_id)}


def _context_alert_list(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    alerts = inventory_selectors.alerts_open(creator_id=creator_id)
    count = len(alerts)
    if count >= inventory_selectors.ALERTS_OPEN_LIMIT:
        count = inventory_selectors.alerts_open_count(creator_id=creator_id)
    available = inventory_selectors.products_available(
        creator_id=creator_id, product_ids=[alert.product_id for alert in alerts]
    )
    return {
        "alert_rows": [AlertRow.of(alert, available=available.get(alert.product_id) or 0) for alert in alerts],
        "alert_rows_limit": inventory_selectors.ALERTS_OPEN_LIMIT,
        "open_alert_count": count,
        "has_products": bool(alerts) or inventory_selectors.products_exist(creator_id=creator_id),
    }


def _context_inventory_table(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    rows, count = inventory_selectors.inventory_rows(creator_id=creator_id, warehouse_id=filters.warehouse_id)
    running = live_selectors.live_running(creator_id=creator_id)
    sold = live_selectors.live_sold(session=running, now=now) if running else {}
    return {
        "inventory_rows": [(row, sold.get(row.product_pk, 0), inventory_sort(row)) for row in rows],
        "live_running": running is not None,
        "inventory_count": count,
        "inventory_rows_limit": inventory_selectors.INVENTORY_ROWS_LIMIT,
        "warehouses": inventory_selectors.warehouses_list(creator_id=creator_id),
        "selected_warehouse": filters.warehouse_id,
    }


_NO_STOCKOUT = 10**15  # sorts after every stockout time, as "never" does


def inventory_sort(row: inventory_selectors.InventoryRow) -> str:
    """The ``data-sort`` of an inventory row: ``inventory_selectors.inventory_row_order`` for the browser."""
    urgency, eta, name, pk = inventory_selectors.inventory_row_order(row)
    return _sort_key(urgency, _NO_STOCKOUT if eta == float("inf") else eta, name, pk)


@dataclass(frozen=True)
class OrderRow:
    """One line of the recent orders table, formatted once in Python (it is rendered often)."""

    pk: int
    order_id: str
    status: str
    status_label: str
    status_tone: str
    flags: tuple[str, ...]
    placed_iso: str
    placed_time: str
    placed_day: str
    items: tuple[str, ...]
    total: str
    currency: str
    updated_stamp: str
    sort_key: str  # newest first: (placed, pk), the list sorted descending

    @classmethod
    def of(cls, order, tz) -> "OrderRow":
        placed = order.placed_at.astimezone(tz)
        return cls(
            pk=order.pk,
            order_id=order.external_id,
            status=order.status,
            status_label=dashboard_tags.order_status_label(order.status),
            status_tone=dashboard_tags.order_status_tone(order.status),
            flags=tuple(dashboard_tags.order_flag_label(flag) for flag in order.flags),
            placed_iso=placed.isoformat(),
            placed_time=placed.strftime("%H:%M"),
            placed_day=f"{placed:%b} {placed.day}",
            items=tuple(f"{item.quantity} × {item.product.name}" for item in order.items.all()),
            total=f"{order.total_amount:,.2f}",
            currency=order.currency or order.shop.currency,  # blank still: the seller's, at render
            updated_stamp=f"{order.updated_at.timestamp():.6f}",
            sort_key=_sort_key(order.placed_at.astimezone(UTC).strftime("%Y%m%d%H%M%S%f"), order.pk),
        )


@dataclass(frozen=True)
class AlertRow:
    """One open alert, formatted once in Python."""

    pk: int
    type_label: str
    severity: str
    severity_label: str
    status: str
    is_urgent: bool
    title: str
    message: str
    product_code: str
    available: int
    age: str
    acknowledge_url: str
    resolve_url: str
    sort_key: str  # inventory_selectors.ALERTS_OPEN_ORDER

    @classmethod
    def of(cls, alert, *, available: int) -> "AlertRow":
        return cls(
            pk=alert.pk,
            type_label=alert.get_type_display(),
            severity=alert.severity,
            severity_label=alert.get_severity_display().capitalize(),
            status=alert.status,
            is_urgent=alert.is_urgent,
            title=f"{alert.get_type_display()}: {alert.product.name}",
            message=alert.message,
            product_code=alert.product.sku or alert.product.external_id,
            available=available,
            age=dashboard_tags.ago(alert.updated_at),
            acknowledge_url=reverse("alert-acknowledge", args=[alert.pk]),
            resolve_url=reverse("alert-resolve", args=[alert.pk]),
            sort_key=_sort_key(alert.severity_order, alert.status_order, -alert.updated_at.timestamp(), -alert.pk),
        )


def _context_recent_orders(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    tz = timezone.get_current_timezone()
    flagged = filters.status == FLAGGED
    recent = order_selectors.orders_recent(
        creator_id=creator_id,
        status=None if flagged else filters.status,
        flag=order_selectors.FLAG_ANY if flagged else None,
    )
    return {
        "order_rows": [OrderRow.of(order, tz) for order in recent],
        "order_rows_limit": order_selectors.RECENT_ORDERS_LIMIT,
        "order_statuses": OrderStatus.choices,
        "selected_status": filters.status,
    }


def _context_orders_chart(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    return {"chart": orders_chart(creator_id=creator_id, now=now)}


def _context_sync_operations(creator_id: int, filters: DashboardFilters, now: datetime) -> dict:
    return {"sync_operations": order_selectors.sync_operations_recent(creator_id=creator_id)}


_CONTEXTS = {
    LIVE_HEADER: _context_live_header,
    METRIC_CARDS: _context_metric_cards,
    ALERT_BANNER: _context_alert_banner,
    ALERT_LIST: _context_alert_list,
    INVENTORY_TABLE: _context_inventory_table,
    RECENT_ORDERS: _context_recent_orders,
    ORDERS_CHART: _context_orders_chart,
    SYNC_OPERATIONS: _context_sync_operations,
}


_SHOWS_AMOUNTS = {LIVE_HEADER, METRIC_CARDS, RECENT_ORDERS}


def dashboard_context(*, creator_id: int, filters: DashboardFilters = DEFAULT_FILTERS, names=FRAGMENT_NAMES) -> dict:
    """Gather what the named fragments show (all of them: the whole page)."""
    now = timezone.now()
    context: dict[str, object] = {"filters": filters, "now": now}
    if set(names) & _SHOWS_AMOUNTS:
        context["currency"] = order_selectors.orders_currency(creator_id=creator_id)
    for name in names:
        context.update(_CONTEXTS[name](creator_id, filters, now))
    return context


# --- rendering ---------------------------------------------------------------------------------


def fragments_render(
    *, creator_id: int, names: Iterable[str] = FRAGMENT_NAMES, filters: DashboardFilters = DEFAULT_FILTERS
) -> dict[str, str]:
    """Render the named fragments for the creator, in the creator's time zone."""
    names = [name for name in FRAGMENT_NAMES if name in set(names)]
    with reads_shared(), timezone.override(selectors.creator_tz(creator_id)):
        context = dashboard_context(creator_id=creator_id, filters=filters, names=names)
        return {name: render_to_string(f"{TEMPLATE}#{name}", context) for name in names}


# --- rows pushed on their own --------------------------------------------------------------------

ROW_TEMPLATES = {
    RECENT_ORDERS: "realtime/order_table.html#order-row",
    INVENTORY_TABLE: f"{TEMPLATE}#inventory-row",
    ALERT_LIST: f"{TEMPLATE}#alert-row",
}


def _rows_recent_orders(order_ids: Mapping[int, set[int]]) -> dict[int, list]:
    return order_selectors.orders_with_ids_many(order_ids=order_ids, limit=order_selectors.RECENT_ORDERS_LIMIT)


def _rows_inventory_table(product_ids: Mapping[int, set[int]]) -> dict[int, list]:
    return inventory_selectors.inventory_rows_many(product_ids=product_ids)


def _rows_alert_list(product_ids: Mapping[int, set[int]]) -> dict[int, list]:
    alerts = inventory_selectors.alerts_open_many(product_ids=product_ids)
    alerted = {creator_id: {alert.product_id for alert in found} for creator_id, found in alerts.items() if found}
    available = inventory_selectors.products_available_many(product_ids=alerted) if alerted else {}
    return {creator_id: [(alert, available.get(alert.product_id) or 0) for alert in found] for creator_id, found in alerts.items()}


# Fragment → read the rows of several creators at once (creator → row ids), one statement or two for all.
_ROWS_READ = {
    RECENT_ORDERS: _rows_recent_orders,
    INVENTORY_TABLE: _rows_inventory_table,
    ALERT_LIST: _rows_alert_list,
}


def _row_order(creator_id: int, order, now: datetime) -> tuple[str, dict]:
    row = OrderRow.of(order, timezone.get_current_timezone())
    return f"order-{row.pk}", {"row": row, "currency": "" if row.currency else order_selectors.orders_currency(creator_id=creator_id)}


def _row_inventory(creator_id: int, row: inventory_selectors.InventoryRow, now: datetime) -> tuple[str, dict]:
    running = live_selectors.live_running(creator_id=creator_id)
    sold = live_selectors.live_sold(session=running, now=now) if running else {}  # shared within a publish
    context = {"row": row, "sold": sold.get(row.product_pk, 0), "sort_key": inventory_sort(row), "live_running": running is not None}
    return f"product-{row.product_pk}", context


def _row_alert(creator_id: int, read: tuple, now: datetime) -> tuple[str, dict]:
    alert, available = read
    return f"alert-{alert.pk}", {"alert": AlertRow.of(alert, available=available)}


# Fragment → (creator, what ``_ROWS_READ`` gave for one row, now) → (row id, template context).
_ROW_CONTEXTS = {
    RECENT_ORDERS: _row_order,
    INVENTORY_TABLE: _row_inventory,
    ALERT_LIST: _row_alert,
}

Rendered = tuple[dict[str, str], dict[str, dict[str, str]]]


def _push_reads(pushes: Mapping[int, Push]) -> None:
    """Read, for every creator of the pushes at once, what their whole fragments ask for per creator."""
    def needing(*names: str) -> list[int]:
        return [creator_id for creator_id, push in pushes.items() if set(push.fragments) & set(names)]

    shared_reads_fill("creator_tz", pushes, selectors.creator_tz_many)
    shared_reads_fill("live_running", pushes, lambda ids: live_selectors.live_running_many(creator_ids=ids))
    priced = needing(*_SHOWS_AMOUNTS) + [creator_id for creator_id, push in pushes.items() if RECENT_ORDERS in push.rows]
    shared_reads_fill("orders_currency", set(priced), lambda ids: order_selectors.orders_currency_many(creator_ids=ids))
    shared_reads_fill("metrics_stored", needing(METRIC_CARDS), lambda ids: selectors.metrics_stored_many(creator_ids=ids))
    shared_reads_fill(
        "orders_per_hour",
        [(creator_id, CHART_HOURS) for creator_id in needing(ORDERS_CHART)],
        lambda keys: {
            (creator_id, CHART_HOURS): slots
            for creator_id, slots in selectors.orders_per_hour_many(creator_ids=[c for c, _ in keys], hours=CHART_HOURS).items()
        },
    )
    shared_reads_fill(
        "sync_operations_recent", needing(SYNC_OPERATIONS), lambda ids: order_selectors.sync_operations_recent_many(creator_ids=ids)
    )


def push_render_many(pushes: Mapping[int, Push]) -> dict[int, Rendered]:
    """Render the pushes of several creators: each kind of read once for all of them, then each creator's HTML.

    Returns creator → (whole fragments: name → HTML, rows: fragment → row id → HTML).
    """
    rendered: dict[int, Rendered] = {}
    with reads_shared():
        _push_reads(pushes)
        reads = {
            name: read({creator_id: ids for creator_id, push in pushes.items() if (ids := push.rows.get(name))})
            for name, read in _ROWS_READ.items()
            if any(push.rows.get(name) for push in pushes.values())
        }
        for creator_id, push in pushes.items():
            with timezone.override(selectors.creator_tz(creator_id)):
                whole = fragments_render(creator_id=creator_id, names=push.fragments) if push.fragments else {}
                now = timezone.now()
                rows: dict[str, dict[str, str]] = {}
                for name, found in reads.items():
                    lines = [_ROW_CONTEXTS[name](creator_id, read, now) for read in found.get(creator_id, ())]
                    if lines:
                        rows[name] = {row_id: render_to_string(ROW_TEMPLATES[name], context) for row_id, context in lines}
            rendered[creator_id] = (whole, rows)
    return rendered


def push_render(*, creator_id: int, push: Push) -> Rendered:
    """Render a push: its whole fragments (name → HTML) and its rows (fragment → row id → HTML)."""
    return push_render_many({creator_id: push})[creator_id]
