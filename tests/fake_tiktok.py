"""A local stand-in for the TikTok Shop Open API, for tests and demos (127.0.0.1 only).

It checks every request the way TikTok does — app key, fresh timestamp, shop cipher, access
token header and the request signature, recomputed here independently of CreatorFlow's
client — and serves order detail, paged order search, paged product search and inventory
search from what the test put in it. It can be told to answer 429 or 500 a number of times.
"""

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

SIGNATURE_WINDOW_SECONDS = 300


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


@dataclass
class FakeTikTokShop:
    app_key: str = "app-key"
    app_secret: str = "app-secret"
    access_token: str = "access-token"
    shop_cipher: str = "cipher-1"
    orders: dict[str, dict] = field(default_factory=dict)
    products: list[dict] = field(default_factory=list)
    requests: list[Seen] = field(default_factory=list)

    def __post_init__(self):
        self._failures: deque[int] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- what the test controls -----------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` (429 or 5xx) before serving again."""
        with self._lock:
            self._failures.extend([status] * times)

    def order_add(self, order_id: str, *, status: str = "AWAITING_SHIPMENT", lines=(), update_time: int | None = None,
                  create_time: int | None = None, total: str = "0", currency: str = "USD") -> dict:
        """Store an order; ``lines`` are (product_id, units, unit price) and become one line item per unit."""
        now = int(time.time())
        items = [
            {"id": f"{order_id}-{number}-{unit}", "product_id": product_id, "sku_id": f"sku-{product_id}",
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
        self.orders[order_id] = order
        return order

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
            failure = self._failures.popleft() if self._failures else None
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
            inventory = [
                {"product_id": product["id"], "skus": [
                    {"id": sku["id"], "seller_sku": sku.get("seller_sku", ""),
                     "total_available_quantity": sum(row["quantity"] for row in sku.get("inventory", [])),
                     "warehouse_inventory": [
                         {"warehouse_id": row["warehouse_id"], "available_quantity": row["quantity"]}
                         for row in sku.get("inventory", [])]}
                    for sku in product.get("skus", [])]}
                for product in self.products if product["id"] in wanted
            ]
            return 200, self._ok({"inventory": inventory}), {}
        return 404, {"code": 40004, "message": f"no route {method} {path}"}, {}

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
