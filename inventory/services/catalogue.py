"""The catalogue: a creator's warehouses and products, keyed by their TikTok ids."""

from collections.abc import Iterable
from decimal import Decimal

from django.db import transaction

from creatorflow.changes import INVENTORY, changes_mark
from creatorflow.prepared import prepared

from ..models import Product, ProductSku, Warehouse
from .alerts import alerts_evaluate


def warehouse_get_default(*, creator_id: int) -> Warehouse:
    """Return the creator's default warehouse, creating it on first use."""
    warehouse, _ = Warehouse.objects.get_or_create(
        creator_id=creator_id, is_default=True, defaults={"name": "Main warehouse"}
    )
    return warehouse


def warehouse_get_or_create(*, creator_id: int, external_id: str) -> Warehouse:
    """Return the creator's warehouse with this TikTok id, creating it when first named."""
    warehouse, _ = Warehouse.objects.get_or_create(
        creator_id=creator_id, external_id=external_id, defaults={"name": f"Warehouse {external_id}"}
    )
    return warehouse


@transaction.atomic
def product_upsert(
    *,
    creator_id: int,
    external_id: str,
    name: str | None = None,
    sku: str | None = None,
    reorder_point: int | None = None,
    unit_cost: Decimal | None = None,
) -> tuple[Product, bool]:
    """Create or update the creator's product with this TikTok id; return (product, created)."""
    changes = {
        field: value
        for field, value in {"name": name, "sku": sku, "reorder_point": reorder_point, "unit_cost": unit_cost}.items()
        if value is not None
    }
    product, created = Product.objects.get_or_create(
        creator_id=creator_id,
        external_id=external_id,
        defaults={"name": f"TikTok product {external_id}", **changes},
    )
    if created:
        # A whole-table change: a new row, the product count under the table, the alerts' empty note.
        changes_mark(creator_id, INVENTORY)
    elif any(getattr(product, field) != value for field, value in changes.items()):
        for field, value in changes.items():
            setattr(product, field, value)
        product.save(update_fields=[*changes, "updated_at"])
        changes_mark(creator_id, INVENTORY, ids=[product.pk])
        if "reorder_point" in changes:
            alerts_evaluate(product_ids=[product.pk])
    return product, created


@prepared
def _products_of(*, creator_ids: list[int], external_ids: list[str]):
    return Product.objects.filter(creator_id__in=creator_ids, external_id__in=external_ids)


def products_by_external_id(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Product]:
    """Return the products named by (creator id, TikTok id) pairs, in one query; missing ones are left out.

    The query asks for every named creator's products among every named id, a read prepared once
    per batch size (``creatorflow.prepared``); the pairs not named are left out here.
    """
    keys = set(keys)
    if not keys:
        return {}
    found = _products_of.objects(creator_ids=sorted({c for c, _ in keys}), external_ids=sorted({e for _, e in keys}))
    return {key: product for product in found if (key := (product.creator_id, product.external_id)) in keys}


def product_skus_learn(*, skus: Iterable[tuple[int, str]]) -> None:
    """Remember TikTok SKU ids of products, as (product id, SKU id) pairs; known ones are passed over."""
    rows = [ProductSku(product_id=product_id, external_id=sku_id) for product_id, sku_id in sorted(set(skus))]
    if rows:
        ProductSku.objects.bulk_create(rows, ignore_conflicts=True)


@transaction.atomic
def product_skus_set(*, product: Product, sku_ids: Iterable[str]) -> None:
    """Make the product's TikTok SKUs exactly ``sku_ids`` (its full list, from TikTok's product search)."""
    sku_ids = set(sku_ids)
    ProductSku.objects.filter(product=product).exclude(external_id__in=sku_ids).delete()
    product_skus_learn(skus=[(product.pk, sku_id) for sku_id in sku_ids])
