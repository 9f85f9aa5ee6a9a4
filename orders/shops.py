"""Shop connections: a creator's TikTok shop, the keys that sign its webhooks and its API access."""

from django.db import transaction

from accounts.services import CreatorError, creator_upsert

from . import locks
from .events import OrderError
from .models import ShopConnection


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
) -> tuple[ShopConnection, bool]:
    """Create or update a creator and their shop connection; return (shop, created)."""
    for name, value in {"username": username, "shop_id": shop_id, "app_key": app_key, "app_secret": app_secret}.items():
        if not value or not value.strip():
            raise OrderError(f"{name} must not be empty.")
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
    if shop is None:
        return ShopConnection.objects.create(creator=creator, shop_id=shop_id, **fields), True
    for field, value in fields.items():
        setattr(shop, field, value)
    shop.save()
    return shop, False
