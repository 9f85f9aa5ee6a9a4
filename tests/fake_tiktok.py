"""A local stand-in for the TikTok Shop Open API, for tests and demos (127.0.0.1 only).

It checks every request the way TikTok does — app key, fresh timestamp, shop cipher, access
token header and the request signature, recomputed here independently of CreatorFlow's
client — and serves order detail, paged order search, paged product search, inventory search
and inventory update from what the test put in it. It can be told to answer 429 or 500 a
number of times, to stay down until told otherwise, or to answer slowly.

Stock behaves as TikTok's does: a SKU's inventory ``quantity`` is what TikTok can still sell.
Placing an order takes its units out of it (they are "committed" until the order ships or is
cancelled), cancelling an unshipped order puts them back, shipping leaves ``quantity`` alone.
Inventory Search reports ``available_quantity`` (the ``quantity``) and ``committed_quantity``
per warehouse, and their totals per SKU; Update Inventory sets ``quantity``.
"""

import hashlib
import hmac
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

SIGNATURE_WINDOW_SECONDS = 300
INVENTORY_UPDATE_PATH = re.compile(r"^/product/202309/products/(?P<product_id>[^/]+)/inventory/update$")
# Statuses whose units have left the warehouse: no longer committed, never given back.
SHIPPED_STATUSES = {"PARTIALLY_SHIPPING", "AWAITING_COLLECTION", "IN_TRANSIT", "DELIVERED", "COMPLETED"}
CANCELLED = "CANCELLED"


def expected_sign(app_secret: str, path: str, query: dict[str, str], body: bytes) -> str:
    """Recompute TikTok's request signature from the documented recipe."""
    pieces = [f"{name}{query[name]}" for name in sorted(query) if name not in ("sign", "access_token")]
    text = f"{app_secret}{path}{''.join(pieces)}".encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), text, hashlib.sha256).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    body: bytes
    status: int


@dataclass(frozen=True)
class InventorySet:
    """One Update Inventory call TikTok accepted: the SKU's sellable quantity was set."""

    product_id: str
    sku_id: str
    quantity: int
    at: float  # time.monotonic()


@dataclass
class FakeTikTokShop:
    app_key: str = "app-key"
    app_secret: str = "app-secret"
    access_token: str = "access-token"
    shop_cipher: str = "cipher-1"
    orders: dict[str, dict] = field(default_factory=dict)
    products: list[dict] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)
    inventory_sets: list[InventorySet] = field(default_factory=list)
    # False: Inventory Search answers without the committed figures (available only).
    reports_committed: bool = True
    delay: float = 0.0  # seconds to wait before answering each request

    def __post_init__(self):
        self._failures: deque[int] = deque()
        self._down: int | None = None
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        # Units each open order holds: order id → [(sku, inventory row, units)].
        self._held: dict[str, list[tuple[dict, dict, int]]] = {}

    # --- what the test controls -----------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (429 or 5xx) before serving again."""
        with self._lock:
            self._failures.extend([status] * times)

    def outage_start(self, status: int = 503) -> None:
        """Answer every request with ``status`` until ``outage_end``."""
        with self._lock:
            self._down = status

    def outage_end(self) -> None:
        with self._lock:
            self._down = None

    def product_add(self, product_id: str, quantity: int, *, warehouse: str = "W1", skus: int = 1,
                    title: str | None = None) -> dict:
        """Add a product whose SKUs (``skus`` of them) each have ``quantity`` sellable units in ``warehouse``."""
        product = {
            "id": product_id,
            "title": title or f"Product {product_id}",
            "update_time": int(time.time()),
            "skus": [
                {"id": f"S-{product_id}" + (f"-{number}" if number else ""), "seller_sku": f"SKU-{product_id}",
                 "inventory": [{"warehouse_id": warehouse, "quantity": quantity}]}
                for number in range(skus)
            ],
        }
        with self._lock:
            self.products.append(product)
        return product

    def quantity(self, product_id: str) -> int:
        """Units TikTok can still sell of the product (every SKU and warehouse)."""
        with self._lock:
            return sum(row["quantity"] for sku in self._product(product_id)["skus"] for row in sku.get("inventory", []))

    def committed(self, product_id: str) -> int:
        """Units of the product held for open (unshipped, uncancelled) orders."""
        with self._lock:
            skus = {id(sku) for sku in self._product(product_id)["skus"]}
            return sum(units for held in self._held.values() for sku, _, units in held if id(sku) in skus)

    def order_add(self, order_id: str, *, status: str = "AWAITING_SHIPMENT", lines=(), update_time: int | None = None,
                  create_time: int | None = None, total: str = "0", currency: str = "USD") -> dict:
        """Store an order; ``lines`` are (product_id, units, unit price) and become one line item per unit."""
        now = int(time.time())
        with self._lock:
            held = self._take(order_id, lines) if status != CANCELLED else []
            skus = {product_id: self._sku_id(product_id) for product_id, _, _ in lines}
        items = [
            {"id": f"{order_id}-{number}-{unit}", "product_id": product_id,
             "sku_id": skus[product_id],
             "product_name": f"Product {product_id}", "seller_sku": f"SKU-{product_id}", "sale_price": str(price),
             "currency": currency}
            for number, (product_id, units, price) in enumerate(lines)
            for unit in range(units)
        ]
        order = {
            "id": order_id,
            "status": status,
            "create_time": create_time or now,
            "update_time": update_time or now,
            "payment": {"currency": currency, "total_amount": total},
            "line_items": items,
        }
        with self._lock:
            self.orders[order_id] = order
            if held and status not in SHIPPED_STATUSES:
                self._held[order_id] = held
        return order

    def order_update(self, order_id: str, *, status: str, update_time: int | None = None) -> dict:
        """Move an order to ``status``: cancelling gives its units back, shipping settles them."""
        with self._lock:
            order = self.orders[order_id]
            order["status"] = status
            order["update_time"] = update_time or max(int(time.time()), order["update_time"] + 1)
            if status == CANCELLED:
                for _, row, units in self._held.pop(order_id, []):
                    row["quantity"] += units
            elif status in SHIPPED_STATUSES:
                self._held.pop(order_id, None)
            return order

    def _product(self, product_id: str, *, missing_ok: bool = False) -> dict:
        for product in self.products:
            if product["id"] == product_id:
                return product
        if missing_ok:
            return {}
        raise KeyError(f"no product {product_id!r} in the fake shop")

    def _sku_id(self, product_id: str) -> str:
        skus = self._product(product_id, missing_ok=True).get("skus")
        return skus[0]["id"] if skus else f"sku-{product_id}"

    def _take(self, order_id: str, lines) -> list[tuple[dict, dict, int]]:
        """Take the order's units out of the first SKU of each known product, as TikTok does when it sells."""
        held = []
        for product_id, units, _ in lines:
            product = self._product(product_id, missing_ok=True)
            if not product.get("skus"):
                continue  # a product the test did not put in the shop: its stock is not tracked
            sku = product["skus"][0]
            remaining = units
            for row in sku.get("inventory", []):
                take = min(row["quantity"], remaining)
                if take:
                    row["quantity"] -= take
                    held.append((sku, row, take))
                    remaining -= take
            if remaining:
                for _, row, take in held:
                    row["quantity"] += take
                raise ValueError(f"TikTok would not sell {units} of {product_id} for order {order_id}: not enough stock")
        return held

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "FakeTikTokShop":
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                fake._handle(self, "GET")

            def do_POST(self):
                fake._handle(self, "POST")

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- serving ---------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        status, document, headers = self._answer(method, parts.path, query, body, handler.headers)
        with self._lock:
            self.requests.append(Seen(method, parts.path, query, body, status))
        payload = json.dumps(document).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, method, path, query, body, headers):
        with self._lock:
            failure = self._failures.popleft() if self._failures else self._down
        if failure is not None:
            extra = {"Retry-After": "0"} if failure == 429 else {}
            return failure, {"code": 36009003 if failure >= 500 else 36009007, "message": "try again"}, extra
        refusal = self._refusal(path, query, body, headers)
        if refusal is not None:
            return 401, refusal, {}
        try:
            request = json.loads(body) if body else {}
        except ValueError:
            return 400, {"code": 36009004, "message": "body is not JSON"}, {}
        if method == "GET" and path == "/order/202309/orders":
            ids = [order_id for order_id in query.get("ids", "").split(",") if order_id]
            if not 1 <= len(ids) <= 50:
                return 400, {"code": 36009004, "message": "ids: 1 to 50 order ids"}, {}
            return 200, self._ok({"orders": [self.orders[i] for i in ids if i in self.orders]}), {}
        if method == "POST" and path == "/order/202309/orders/search":
            since = request.get("update_time_ge", 0)
            rows = [order for order in self.orders.values() if order["update_time"] >= since]
            return 200, self._ok(self._page(rows, "orders", query)), {}
        if method == "POST" and path == "/product/202309/products/search":
            since = request.get("update_time_ge", 0)
            rows = [product for product in self.products if product.get("update_time", 0) >= since]
            return 200, self._ok(self._page(rows, "products", query)), {}
        if method == "POST" and path == "/product/202309/inventory/search":
            wanted = set(request.get("product_ids") or [])
            with self._lock:
                inventory = [
                    {"product_id": product["id"], "skus": [self._sku_inventory(sku) for sku in product.get("skus", [])]}
                    for product in self.products if product["id"] in wanted
                ]
            return 200, self._ok({"inventory": inventory}), {}
        update = INVENTORY_UPDATE_PATH.match(path)
        if method == "POST" and update:
            return self._inventory_update(update["product_id"], request)
        return 404, {"code": 40004, "message": f"no route {method} {path}"}, {}

    def _sku_inventory(self, sku: dict) -> dict:
        committed: dict[int, int] = {}
        for held in self._held.values():
            for held_sku, row, units in held:
                if held_sku is sku:
                    committed[id(row)] = committed.get(id(row), 0) + units
        rows = sku.get("inventory", [])
        answer = {"id": sku["id"], "seller_sku": sku.get("seller_sku", ""),
                  "total_available_quantity": sum(row["quantity"] for row in rows),
                  "warehouse_inventory": [{"warehouse_id": row["warehouse_id"], "available_quantity": row["quantity"]}
                                          for row in rows]}
        if self.reports_committed:
            answer["total_committed_quantity"] = sum(committed.values())
            for row, reported in zip(rows, answer["warehouse_inventory"], strict=True):
                reported["committed_quantity"] = committed.get(id(row), 0)
        return answer

    def _inventory_update(self, product_id: str, request: dict):
        """Set the sellable quantity of the product's SKUs (202309 Update Inventory)."""
        with self._lock:
            product = self._product(product_id, missing_ok=True)
            if not product:
                return 200, {"code": 12052048, "message": f"product {product_id} does not exist"}, {}
            skus = {sku["id"]: sku for sku in product.get("skus", [])}
            for entry in request.get("skus") or []:
                sku = skus.get(entry.get("id"))
                rows = entry.get("inventory") or []
                if sku is None or not rows:
                    return 200, {"code": 12052049, "message": f"sku {entry.get('id')!r} is not a sku of {product_id}"}, {}
                for row in rows:
                    quantity = row.get("quantity")
                    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
                        return 200, {"code": 36009004, "message": "quantity must be a whole number"}, {}
                    targets = [stock for stock in sku["inventory"] if stock["warehouse_id"] == row.get("warehouse_id")]
                    if "warehouse_id" not in row:
                        # No warehouse named: the SKU's (first) warehouse gets the quantity.
                        targets = sku["inventory"][:1]
                        for other in sku["inventory"][1:]:
                            other["quantity"] = 0
                    if not targets:
                        return 200, {"code": 12052050, "message": f"unknown warehouse {row.get('warehouse_id')!r}"}, {}
                    targets[0]["quantity"] = quantity
                    self.inventory_sets.append(InventorySet(product_id, sku["id"], quantity, time.monotonic()))
        return 200, self._ok({}), {}

    def _refusal(self, path, query, body, headers) -> dict | None:
        if query.get("app_key") != self.app_key:
            return {"code": 106001, "message": "invalid app_key"}
        try:
            timestamp = int(query.get("timestamp", ""))
        except ValueError:
            return {"code": 106001, "message": "timestamp missing"}
        if abs(time.time() - timestamp) > SIGNATURE_WINDOW_SECONDS:
            return {"code": 106001, "message": "timestamp expired"}
        if query.get("shop_cipher") != self.shop_cipher:
            return {"code": 106001, "message": "invalid shop_cipher"}
        if headers.get("x-tts-access-token") != self.access_token:
            return {"code": 105001, "message": "access token is invalid"}
        if not hmac.compare_digest(query.get("sign", ""), expected_sign(self.app_secret, path, query, body)):
            return {"code": 106001, "message": "invalid signature"}
        return None

    @staticmethod
    def _ok(data: dict) -> dict:
        return {"code": 0, "message": "Success", "request_id": "fake", "data": data}

    @staticmethod
    def _page(rows: list[dict], key: str, query: dict) -> dict:
        size = int(query.get("page_size", 20))
        start = int(query["page_token"].removeprefix("page-")) if query.get("page_token") else 0
        end = start + size
        return {key: rows[start:end], "next_page_token": f"page-{end}" if end < len(rows) else "", "total_count": len(rows)}
