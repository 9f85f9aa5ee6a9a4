"""A small TikTok Shop Open API client (API version 202309), standard library only.

Every request is signed the way TikTok Shop documents it: the query parameters other than
``sign`` and ``access_token``, sorted by name and joined as ``key + value``, are put after the
request path, the raw request body is appended, the whole string is wrapped in the app secret
on both sides, and ``sign`` is its HMAC-SHA256 (key: the app secret) in lowercase hex. The
access token travels in the ``x-tts-access-token`` header.

Answers of 429 and 5xx (and network failures) are retried with exponential backoff; bad
credentials or a refused signature raise ``TikTokAuthError`` at once, since retrying cannot
help. The client is shared by webhook processing (order detail) and resync (paged searches);
reading what TikTok's answers say is ``orders.payloads``' job.
"""

import hashlib
import hmac
import http.client
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .models import ShopConnection

API_VERSION = "202309"
ORDER_DETAIL_PATH = f"/order/{API_VERSION}/orders"
ORDER_SEARCH_PATH = f"/order/{API_VERSION}/orders/search"
PRODUCT_SEARCH_PATH = f"/product/{API_VERSION}/products/search"
INVENTORY_SEARCH_PATH = f"/product/{API_VERSION}/inventory/search"
INVENTORY_UPDATE_PATH = "/product/{version}/products/{product_id}/inventory/update"
ORDER_DETAIL_MAX_IDS = 50
PAGE_SIZE_MAX = 100
RETRY_AFTER_MAX_SECONDS = 30.0
# TikTok's error families: 105xxx concern the access token (105002: expired), 106xxx the app
# key and the request signature. Neither gets better by asking again.
CREDENTIAL_ERROR_FAMILIES = (105, 106)
# A signed URL's query carries the app key, the signature and the timestamp: no error text keeps it.
QUERY_STRING = re.compile(r"\?[^\s'\"<>]*")
REDACTED = "[redacted]"


class TikTokError(Exception):
    """The TikTok Shop API did not give a usable answer."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, request_id: str = ""):
        self.status, self.code, self.request_id = status, code, request_id
        super().__init__(message)


class TikTokAuthError(TikTokError):
    """TikTok refused the credentials or the signature: fix the shop connection, do not retry."""


class TikTokUnavailable(TikTokError):
    """TikTok stayed rate-limited, failing or unreachable through every retry."""


@dataclass(frozen=True)
class Page:
    """One page of a paged search; an empty ``next_page_token`` means it was the last."""

    items: list[dict]
    next_page_token: str
    total_count: int | None


def request_sign(*, app_secret: str, path: str, params: Mapping[str, object], body: bytes = b"") -> str:
    """Return the TikTok Shop request signature for ``path``, ``params`` and the raw ``body``."""
    joined = "".join(f"{key}{params[key]}" for key in sorted(params) if key not in ("sign", "access_token"))
    message = app_secret.encode() + path.encode() + joined.encode() + body + app_secret.encode()
    return hmac.new(app_secret.encode(), message, hashlib.sha256).hexdigest()


class TikTokClient:
    """Signed calls to one shop's TikTok Shop API."""

    def __init__(
        self,
        *,
        base_url: str,
        app_key: str,
        app_secret: str,
        access_token: str,
        shop_cipher: str,
        timeout: float = 5.0,
        retries: int = 3,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.app_key, self.app_secret = app_key, app_secret
        self.access_token, self.shop_cipher = access_token, shop_cipher
        self.timeout, self.retries, self.backoff, self.sleep = timeout, retries, backoff, sleep

    @classmethod
    def for_shop(cls, shop: ShopConnection, **options) -> "TikTokClient":
        """Build a client from a shop connection's base URL and credentials."""
        return cls(
            base_url=shop.api_base_url,
            app_key=shop.app_key,
            app_secret=shop.app_secret,
            access_token=shop.access_token,
            shop_cipher=shop.shop_cipher,
            **options,
        )

    def __repr__(self) -> str:
        # The secret and the token stay out of reprs, tracebacks and logs.
        return f"<TikTokClient {self.base_url} app_key={self.app_key}>"

    # --- calls -----------------------------------------------------------------------------

    def orders_get(self, *, order_ids: Sequence[str]) -> list[dict]:
        """Return TikTok's detail of the given orders (at most 50 ids per call)."""
        if not order_ids or len(order_ids) > ORDER_DETAIL_MAX_IDS:
            raise ValueError(f"Ask for 1 to {ORDER_DETAIL_MAX_IDS} order ids, got {len(order_ids)}.")
        data = self._request("GET", ORDER_DETAIL_PATH, params={"ids": ",".join(order_ids)})
        return list(data.get("orders") or [])

    def orders_search(self, *, page_token: str = "", page_size: int = 50, since: datetime | None = None) -> Page:
        """Return one page of orders updated at or after ``since`` (all orders when None)."""
        body = {"update_time_ge": int(since.timestamp())} if since is not None else {}
        return self._page(ORDER_SEARCH_PATH, "orders", page_token=page_token, page_size=page_size, body=body)

    def products_search(self, *, page_token: str = "", page_size: int = 50, since: datetime | None = None) -> Page:
        """Return one page of products (with their SKUs and stock) updated at or after ``since``."""
        body = {"update_time_ge": int(since.timestamp())} if since is not None else {}
        return self._page(PRODUCT_SEARCH_PATH, "products", page_token=page_token, page_size=page_size, body=body)

    def inventory_search(self, *, product_ids: Sequence[str]) -> list[dict]:
        """Return the stock of the given products, per SKU and warehouse."""
        data = self._request("POST", INVENTORY_SEARCH_PATH, body={"product_ids": list(product_ids)})
        return list(data.get("inventory") or [])

    def inventory_update(self, *, product_id: str, sku_id: str, quantity: int) -> None:
        """Set the quantity TikTok can sell of one SKU of a product (202309 Update Inventory)."""
        path = INVENTORY_UPDATE_PATH.format(version=API_VERSION, product_id=urllib.parse.quote(product_id, safe=""))
        self._request("POST", path, body={"skus": [{"id": sku_id, "inventory": [{"quantity": quantity}]}]})

    def orders_pages(self, *, since: datetime | None = None, page_size: int = 50) -> Iterator[Page]:
        """Yield every page of orders updated since ``since``, following the page tokens."""
        yield from self._pages(self.orders_search, since=since, page_size=page_size)

    def products_pages(self, *, since: datetime | None = None, page_size: int = 50) -> Iterator[Page]:
        """Yield every page of products updated since ``since``, following the page tokens."""
        yield from self._pages(self.products_search, since=since, page_size=page_size)

    def orders_iterate(self, *, since: datetime | None = None, page_size: int = 50) -> Iterator[dict]:
        """Yield every order updated since ``since``, following the pages."""
        for page in self.orders_pages(since=since, page_size=page_size):
            yield from page.items

    def products_iterate(self, *, since: datetime | None = None, page_size: int = 50) -> Iterator[dict]:
        """Yield every product updated since ``since``, following the pages."""
        for page in self.products_pages(since=since, page_size=page_size):
            yield from page.items

    # --- plumbing --------------------------------------------------------------------------

    @staticmethod
    def _pages(search: Callable[..., Page], *, since: datetime | None, page_size: int) -> Iterator[Page]:
        token = ""
        while True:
            page = search(page_token=token, page_size=page_size, since=since)
            yield page
            if not page.next_page_token or page.next_page_token == token:
                return
            token = page.next_page_token

    def _page(self, path: str, key: str, *, page_token: str, page_size: int, body: dict) -> Page:
        if not 1 <= page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be 1 to {PAGE_SIZE_MAX}, got {page_size}.")
        params: dict[str, object] = {"page_size": page_size}
        if page_token:
            params["page_token"] = page_token
        data = self._request("POST", path, params=params, body=body)
        total = data.get("total_count")
        return Page(
            items=list(data.get(key) or []),
            next_page_token=str(data.get("next_page_token") or ""),
            total_count=total if isinstance(total, int) else None,
        )

    def _request(self, method: str, path: str, *, params: Mapping[str, object] | None = None, body=None) -> dict:
        """Send one signed request, retrying 429, 5xx and network failures; return ``data``.

        Every error raised from here is a TikTokError whose text holds neither the signed query,
        the app secret nor the access token, and which chains no exception that could.
        """
        raw_body = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(self.retries + 1):
            query = {**(params or {}), "app_key": self.app_key, "timestamp": int(time.time())}
            if self.shop_cipher:
                query["shop_cipher"] = self.shop_cipher
            query["sign"] = request_sign(app_secret=self.app_secret, path=path, params=query, body=raw_body)
            answer, failure, retry_after = self._send(method, path, query, raw_body)
            if failure is None:
                return self._data(*answer, path)
            if attempt == self.retries:
                raise failure
            self.sleep(self._delay(attempt, retry_after))
        raise AssertionError("unreachable")

    def _send(self, method: str, path: str, query: dict, raw_body: bytes):
        """Return ((status, payload), None, None), or (None, a retryable failure, Retry-After).

        A failure that retrying cannot mend (a malformed base URL, a crash in the HTTP stack) is
        raised at once, its text scrubbed and its cause dropped: the cause carries the signed URL.
        """
        try:
            request = urllib.request.Request(
                f"{self.base_url}{path}?{urllib.parse.urlencode(query)}",
                data=raw_body if method != "GET" else None,
                method=method,
                headers={"content-type": "application/json", "x-tts-access-token": self.access_token},
            )
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return (response.status, response.read()), None, None
        except http.client.InvalidURL as error:
            raise self._crash(method, path, error) from None
        except urllib.error.HTTPError as error:
            status, payload, retry_after = error.code, error.read(), error.headers.get("Retry-After")
            if status != 429 and status < 500:
                return (status, payload), None, None
            return None, TikTokUnavailable(f"TikTok answered {status} to {method} {path}.", status=status), retry_after
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as error:
            reason = self.scrub(str(getattr(error, "reason", error)))
            return None, TikTokUnavailable(f"TikTok unreachable at {self.base_url} for {method} {path}: {reason}."), None
        except Exception as error:  # noqa: BLE001 - whatever broke, its text may hold the signed URL
            raise self._crash(method, path, error) from None

    def _crash(self, method: str, path: str, error: Exception) -> TikTokError:
        detail = self.scrub(f"{type(error).__name__}: {error}")
        return TikTokError(f"TikTok request {method} {path} could not be made ({detail}); check the shop's API base URL.")

    def scrub(self, text: str) -> str:
        """Return ``text`` without query strings, the app secret or the access token."""
        text = QUERY_STRING.sub("", text)
        for secret in (self.app_secret, self.access_token):
            if secret:
                text = text.replace(secret, REDACTED)
        return text

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        delay = self.backoff * 2**attempt
        if retry_after:
            try:
                delay = max(delay, min(float(retry_after), RETRY_AFTER_MAX_SECONDS))
            except ValueError:
                pass
        return delay

    def _data(self, status: int, payload: bytes, path: str) -> dict:
        try:
            document = json.loads(payload or b"{}")
        except ValueError:
            raise TikTokError(f"TikTok answered {status} with a body that is not JSON for {path}.", status=status) from None
        if not isinstance(document, dict):
            raise TikTokError(f"TikTok answered {status} with unexpected JSON for {path}.", status=status)
        code, message = document.get("code"), self.scrub(str(document.get("message") or ""))
        request_id = str(document.get("request_id") or "")
        family = code // 1000 if isinstance(code, int) else None
        if status in (401, 403) or family in CREDENTIAL_ERROR_FAMILIES:
            raise TikTokAuthError(
                f"TikTok refused the shop's credentials or signature for {path} (code {code}: {message}). "
                "Check the app key, app secret, access token and shop cipher of the shop connection.",
                status=status,
                code=code,
                request_id=request_id,
            )
        if status >= 400 or code != 0:
            raise TikTokError(
                f"TikTok answered {status} for {path} (code {code}: {message}).",
                status=status,
                code=code,
                request_id=request_id,
            )
        data = document.get("data")
        return data if isinstance(data, dict) else {}
