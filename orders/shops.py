"""Shop connections: a creator's TikTok shop, the keys that sign its webhooks and its API access."""

from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.db import transaction

from accounts.services import CreatorError, creator_upsert

from . import locks
from .events import OrderError
from .models import ShopConnection


def api_base_url_problem(url: str) -> str | None:
    """Say what is wrong with ``url`` as a TikTok Shop API base URL, or None when it will do."""
    if any(character.isspace() or ord(character) < 32 for character in url):
        return f"API base URL {url!r} contains spaces or control characters."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return f"API base URL {url!r} is not a valid URL."
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"API base URL must be an http:// or https:// URL with a host, got {url!r}."
    if parts.username or parts.password or parts.query or parts.fragment:
        return "API base URL must not carry credentials, a query or a fragment."
    return None


def currency_parse(value: str | None) -> str:
    """Return an ISO 4217 currency code in capitals ("" for none); raise OrderError for anything else."""
    code = (value or "").strip().upper()
    if code and not (len(code) == 3 and code.isascii() and code.isalpha()):
        raise OrderError(f"Currency must be a three-letter ISO 4217 code such as USD or EUR, got {value!r}.")
    return code


def shop_api_problem(shop: ShopConnection) -> str | None:
    """Say why a resync of ``shop`` cannot start (no access token, bad base URL), or None."""
    if not shop.access_token:
        return (
            f"Shop {shop.shop_id} has no TikTok access token, so TikTok would refuse every call. Set it in the admin "
            f"(Shop connections) or with: .venv/bin/python manage.py shop_connect {shop.creator.username} "
            f"--shop-id {shop.shop_id} --app-key KEY --app-secret SECRET --access-token TOKEN"
        )
    return api_base_url_problem(shop.api_base_url)


@transaction.atomic
def shop_connect(
    *,
    username: str,
    shop_id: str,
    app_key: str,
    app_secret: str,
    password: str | None = None,
    timezone_name: str | None = None,
    api_base_url: str | None = None,
    access_token: str | None = None,
    stock_write_back: bool | None = None,
    currency: str | None = None,
    no_login: bool = False,
) -> tuple[ShopConnection, bool]:
    """Create or update a creator and their shop connection; return (shop, created).

    A new creator needs a password, unless ``no_login`` says they are not to log in yet.
    """
    for name, value in {"username": username, "shop_id": shop_id, "app_key": app_key, "app_secret": app_secret}.items():
        if not value or not value.strip():
            raise OrderError(f"{name} must not be empty.")
    if api_base_url and (problem := api_base_url_problem(api_base_url)):
        raise OrderError(problem)
    currency = None if currency is None else currency_parse(currency)
    if not password and not no_login and not get_user_model().objects.filter(username=username).exists():
        raise OrderError(
            f"Creator {username} is new and has no password, so they could not log in: give --password, "
            f"or --no-login and set one later with: .venv/bin/python manage.py changepassword {username}"
        )
    try:
        creator, _ = creator_upsert(username=username, password=password, timezone_name=timezone_name)
    except CreatorError as error:
        raise OrderError(str(error)) from error
    shop = locks.shop_lock(shop_id=shop_id)
    if shop is not None and shop.creator_id != creator.pk:
        raise OrderError(f"Shop {shop_id} is already connected to another creator.")
    fields = {"app_key": app_key, "app_secret": app_secret}
    if api_base_url:
        fields["api_base_url"] = api_base_url
    if access_token is not None:
        fields["access_token"] = access_token
    if stock_write_back is not None:
        fields["stock_write_back"] = stock_write_back
    if currency is not None:
        fields["currency"] = currency
    if shop is None:
        return ShopConnection.objects.create(creator=creator, shop_id=shop_id, **fields), True
    for field, value in fields.items():
        setattr(shop, field, value)
    shop.save()
    return shop, False
