"""Every reader of TikTok's and CreatorFlow's JSON: webhook deliveries and API answers alike.

A reader checks each field it needs (type, length, range: the limits of ``orders.events``) and
returns the event it describes, or raises ``PayloadError`` naming the field and the problem.
Nothing here touches the database.
"""

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from inventory.services.stock import MAX_QUANTITY

from .events import (
    LINE_QUANTITY_MAX,
    LINES_MAX,
    TEXT_MAX,
    TOTAL_AMOUNT_MAX,
    UNIT_PRICE_MAX,
    InventoryUpdate,
    OrderError,
    OrderEvent,
    OrderLine,
    OrderNotice,
)
from .statuses import status_normalize

ORDER_STATUS_CHANGE = "ORDER_STATUS_CHANGE"
INVENTORY_UPDATE = "INVENTORY_UPDATE"
TIKTOK_ORDER_STATUS_CHANGE = "tiktok:1"  # TikTok's own shape, numeric type 1
# Unix seconds between 2001-09-09 and 2100-01-01: anything else is milliseconds or nonsense.
TIMESTAMP_RANGE = (1_000_000_000, 4_102_444_800)


class PayloadError(OrderError):
    """A payload that does not say what CreatorFlow needs; the message names the field."""


@dataclass(frozen=True)
class Delivery:
    """A parsed, validated delivery: its type, its idempotency key and what it says."""

    shop_id: str
    event_type: str
    delivery_key: str
    payload: OrderEvent | InventoryUpdate | OrderNotice | None = field(default=None)


@dataclass(frozen=True)
class ProductListing:
    """What TikTok's product search says of one product: catalogue fields and stock per warehouse."""

    product_id: str
    fields: dict
    units_by_warehouse: dict[str, int]
    sku_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class WarehouseStock:
    """What TikTok's Inventory Search says of one product in one warehouse, every SKU added up.

    ``committed`` is None when TikTok did not report committed units for every SKU there.
    """

    warehouse_id: str
    available: int
    committed: int | None


# --- field readers -------------------------------------------------------------------------


def _fail(message: str) -> PayloadError:
    return PayloadError(message)


def _kind(value: object) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _object(value: object, name: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise _fail(f"{name} must be a JSON object, got {_kind(value)}.")
    return value


def _text(data: Mapping, key: str, *, where: str = "data", required: bool = True, limit: int = TEXT_MAX) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"Field {where}.{key} must be a non-empty string, got {_kind(value)}.")
    if len(value) > limit:
        raise _fail(f"Field {where}.{key} is longer than {limit} characters.")
    if "\x00" in value:
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the query.
        raise _fail(f"Field {where}.{key} must not contain NUL characters.")
    return value


def _whole(data: Mapping, key: str, *, where: str, low: int, high: int, required: bool = True) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"Field {where}.{key} must be a whole number, got {_kind(value) if not isinstance(value, float) else value!r}.")
    if not low <= value <= high:
        raise _fail(f"Field {where}.{key} must be between {low:,} and {high:,}, got {value:,}.")
    return value


def _amount(data: Mapping, key: str, *, where: str, high: Decimal) -> Decimal | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _fail(f"Field {where}.{key} must be a number or a decimal string, got {_kind(value)}.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _fail(f"Field {where}.{key} must be a number or a decimal string, got {value!r}.")
    if not amount.is_finite() or not Decimal(0) <= amount < high:
        raise _fail(f"Field {where}.{key} must be between 0 and {high:,}, got {value!r}.")
    return amount.quantize(Decimal("0.01"))


def _moment(data: Mapping, key: str, *, where: str, required: bool = True) -> datetime | None:
    value = data.get(key)
    if value is None:
        if required:
            raise _fail(f"Missing field {where}.{key}.")
        return None
    # math.isfinite only for floats: it overflows on a JSON integer with hundreds of digits.
    if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not math.isfinite(value)):
        raise _fail(f"Field {where}.{key} must be Unix seconds (a number), got {_kind(value)}.")
    if not TIMESTAMP_RANGE[0] <= value < TIMESTAMP_RANGE[1]:
        raise _fail(f"Field {where}.{key} must be Unix seconds, got {value!r}.")
    return datetime.fromtimestamp(value, tz=UTC)


def _status(value: object, where: str) -> str:
    if value is None:
        raise _fail(f"Missing field {where}.")
    try:
        return status_normalize(value)
    except OrderError as error:
        raise _fail(f"Field {where}: {error}")


# --- CreatorFlow's and TikTok's webhook deliveries -------------------------------------------


def _order_event(data: Mapping, timestamp: datetime) -> OrderEvent:
    order_id = _text(data, "order_id")
    status = _status(data.get("status"), "data.status")
    items = data.get("items")
    lines = None
    if items is not None:
        if not isinstance(items, list):
            raise _fail(f"Field data.items must be an array, got {_kind(items)}.")
        if len(items) > LINES_MAX:
            raise _fail(f"An order carries at most {LINES_MAX} items, got {len(items)}.")
        lines = []
        for index, item in enumerate(items):
            where = f"data.items[{index}]"
            item = _object(item, where)
            lines.append(
                OrderLine(
                    product_id=_text(item, "product_id", where=where),
                    quantity=_whole(item, "quantity", where=where, low=1, high=LINE_QUANTITY_MAX),
                    unit_price=_amount(item, "price", where=where, high=UNIT_PRICE_MAX) or Decimal(0),
                    name=_text(item, "name", where=where, required=False, limit=255) or "",
                    sku=_text(item, "sku", where=where, required=False, limit=100) or "",
                )
            )
        if not lines:
            raise _fail("Field data.items is empty; leave it out for a status change without lines.")
    currency = _text(data, "currency", required=False, limit=3) or ""
    return OrderEvent(
        order_id=order_id,
        status=status,
        updated_at=_moment(data, "update_time", where="data", required=False) or timestamp,
        placed_at=_moment(data, "create_time", where="data", required=False),
        total_amount=_amount(data, "total_amount", where="data", high=TOTAL_AMOUNT_MAX),
        currency=currency,
        lines=lines,
    )


def _inventory_update(data: Mapping) -> InventoryUpdate:
    return InventoryUpdate(
        product_id=_text(data, "product_id"),
        quantity=_whole(data, "quantity", where="data", low=0, high=MAX_QUANTITY),
        name=_text(data, "name", required=False, limit=255),
        sku=_text(data, "sku", required=False, limit=100),
        warehouse_id=_text(data, "warehouse_id", required=False),
        reorder_point=_whole(data, "reorder_point", where="data", low=0, high=MAX_QUANTITY, required=False),
        unit_cost=_amount(data, "unit_cost", where="data", high=UNIT_PRICE_MAX),
    )


def _order_notice(data: Mapping) -> OrderNotice:
    return OrderNotice(
        order_id=_text(data, "order_id"),
        status=_status(data.get("order_status"), "data.order_status"),
        updated_at=_moment(data, "update_time", where="data"),
    )


def webhook_parse(*, body: bytes) -> dict:
    """Decode a delivery's JSON object and check its envelope names a shop; raise PayloadError."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise _fail("Body is not UTF-8 text.")
    try:
        document = json.loads(text)
    except ValueError as error:
        raise _fail(f"Body is not valid JSON: {error}.")
    except RecursionError:
        # Python's JSON parser recurses per nesting level; a hostile body must be a 400, not a 500.
        raise _fail("Body is not valid JSON: nested too deeply.")
    document = _object(document, "The body")
    _text(document, "shop_id", where="body")
    return document


def delivery_parse(*, document: Mapping, body: bytes, shop_pk: int, shop_id: str) -> Delivery:
    """Validate a verified delivery of either shape and work out its type and idempotency key."""
    kind = document.get("type")
    body_key = "sha256:" + hashlib.sha256(body).hexdigest()
    if kind is None:
        raise _fail("Missing field body.type.")
    if isinstance(kind, bool) or not isinstance(kind, int | str):
        raise _fail(f"Field body.type must be a string or a number, got {_kind(kind)}.")
    if isinstance(kind, int):
        # TikTok's own shape: the notification id names the delivery, retries included.
        notification_id = _text(document, "tts_notification_id", where="body", required=False, limit=80)
        key = f"tts:{shop_pk}:{notification_id}" if notification_id else body_key
        event_type = f"tiktok:{kind}"
        if event_type != TIKTOK_ORDER_STATUS_CHANGE:
            return Delivery(shop_id, event_type, key)
        _moment(document, "timestamp", where="body")
        return Delivery(shop_id, event_type, key, _order_notice(_object(document.get("data"), "body.data")))
    event_type = kind.strip().replace("\x00", "\ufffd")[:TEXT_MAX]  # stored as text; PostgreSQL refuses NUL
    if event_type not in (ORDER_STATUS_CHANGE, INVENTORY_UPDATE):
        return Delivery(shop_id, event_type or "(empty)", body_key)
    timestamp = _moment(document, "timestamp", where="body")
    data = _object(document.get("data"), "body.data")
    if event_type == ORDER_STATUS_CHANGE:
        return Delivery(shop_id, event_type, body_key, _order_event(data, timestamp))
    return Delivery(shop_id, event_type, body_key, _inventory_update(data))


# --- TikTok Shop API answers -----------------------------------------------------------------


def order_event_from_api(order: Mapping) -> OrderEvent:
    """Translate one order of TikTok's order detail or order search into an OrderEvent.

    TikTok (202309) lists one line item per unit sold; the units of a product are added up
    into one CreatorFlow line. A ``quantity`` on a line item, where present, is honoured.
    """
    order_id = order.get("id")
    if not isinstance(order_id, str) or not order_id or len(order_id) > TEXT_MAX:
        raise _fail("TikTok order has no id.")
    where = f"order {order_id}"
    payment = order.get("payment") if isinstance(order.get("payment"), Mapping) else {}
    quantities: dict[str, int] = {}
    details: dict[str, tuple[Decimal, str, str]] = {}
    skus: dict[str, list[Mapping]] = {}
    for index, item in enumerate(order.get("line_items") or []):
        line_where = f"{where}.line_items[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(f"TikTok {line_where} is not an object.")
        product_id = item.get("product_id")
        if not isinstance(product_id, str) or not product_id:
            raise _fail(f"TikTok {line_where} has no product_id.")
        quantity = _whole({"quantity": item.get("quantity", 1)}, "quantity", where=line_where, low=1, high=LINE_QUANTITY_MAX)
        quantities[product_id] = quantities.get(product_id, 0) + quantity
        skus.setdefault(product_id, []).append({"id": item.get("sku_id")})
        details.setdefault(
            product_id,
            (
                _amount({"sale_price": item.get("sale_price", "0")}, "sale_price", where=line_where, high=UNIT_PRICE_MAX),
                str(item.get("product_name") or "")[:255],
                str(item.get("seller_sku") or "")[:100],
            ),
        )
    lines = [
        OrderLine(product_id=product_id, quantity=quantity, unit_price=details[product_id][0],
                  name=details[product_id][1], sku=details[product_id][2], sku_ids=_sku_ids(skus[product_id]))
        for product_id, quantity in quantities.items()
    ]
    return OrderEvent(
        order_id=order_id,
        status=str(order.get("status") or ""),
        updated_at=_moment(order, "update_time", where=where),
        placed_at=_moment(order, "create_time", where=where, required=False),
        total_amount=_amount(payment, "total_amount", where=f"{where}.payment", high=TOTAL_AMOUNT_MAX),
        currency=str(payment.get("currency") or "")[:3],
        lines=lines or None,
    )


def product_from_api(product: Mapping) -> ProductListing:
    """Read one product of TikTok's product search: catalogue fields and on-hand units per warehouse."""
    product_id = product.get("id")
    if not isinstance(product_id, str) or not product_id or len(product_id) > TEXT_MAX:
        raise _fail("TikTok product has no id.")
    skus = [sku for sku in product.get("skus") or [] if isinstance(sku, Mapping)]
    units: dict[str, int] = {}
    for sku in skus:
        for row in sku.get("inventory") or []:
            row = row if isinstance(row, Mapping) else {}
            quantity = _whole(row, "quantity", where=f"product {product_id}.inventory", low=0, high=MAX_QUANTITY)
            warehouse_id = str(row.get("warehouse_id") or "")
            units[warehouse_id] = units.get(warehouse_id, 0) + quantity
    fields = {"name": str(product.get("title") or "")[:255] or None}
    if skus and skus[0].get("seller_sku"):
        fields["sku"] = str(skus[0]["seller_sku"])[:100]
    return ProductListing(product_id=product_id, fields=fields, units_by_warehouse=units, sku_ids=_sku_ids(skus))


def _sku_ids(skus: list[Mapping]) -> tuple[str, ...]:
    ids = [sku.get("id") for sku in skus]
    return tuple(dict.fromkeys(sku_id for sku_id in ids if isinstance(sku_id, str) and 0 < len(sku_id) <= TEXT_MAX))


def inventory_from_api(entry: Mapping) -> tuple[str, list[WarehouseStock]]:
    """Read one product of TikTok's Inventory Search: (product id, its stock per warehouse)."""
    product_id = entry.get("product_id")
    if not isinstance(product_id, str) or not product_id or len(product_id) > TEXT_MAX:
        raise _fail("TikTok inventory entry has no product_id.")
    where = f"inventory of product {product_id}"
    available: dict[str, int] = {}
    committed: dict[str, int | None] = {}
    for sku in entry.get("skus") or []:
        sku = sku if isinstance(sku, Mapping) else {}
        for row in sku.get("warehouse_inventory") or []:
            row = row if isinstance(row, Mapping) else {}
            warehouse_id = str(row.get("warehouse_id") or "")
            units = _whole(row, "available_quantity", where=where, low=0, high=MAX_QUANTITY)
            held = _whole(row, "committed_quantity", where=where, low=0, high=MAX_QUANTITY, required=False)
            available[warehouse_id] = available.get(warehouse_id, 0) + units
            before = committed.get(warehouse_id, 0)
            committed[warehouse_id] = None if held is None or before is None else before + held
    return product_id, [WarehouseStock(warehouse_id, units, committed[warehouse_id]) for warehouse_id, units in available.items()]
