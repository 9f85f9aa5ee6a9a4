"""Derived data only: a committed change to these rows refreshes the creator's dashboard."""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save

from inventory.models import InventoryAlert, Product, Stock
from orders.models import Order, SyncOperation

from . import services
from .models import SystemHealth


def _order_changed(sender, instance: Order, **kwargs) -> None:
    services.changes_mark(instance.creator_id, services.ORDERS)


def _stock_changed(sender, instance: Stock, **kwargs) -> None:
    services.changes_mark(instance.product.creator_id, services.INVENTORY)


def _product_changed(sender, instance: Product, **kwargs) -> None:
    services.changes_mark(instance.creator_id, services.INVENTORY)


def _alert_changed(sender, instance: InventoryAlert, **kwargs) -> None:
    services.changes_mark(instance.creator_id, services.ALERTS)


def _sync_changed(sender, instance: SyncOperation, **kwargs) -> None:
    services.changes_mark(instance.creator_id, services.SYNC)


def _creator_saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        # A new creator starts with every metric at zero rather than missing.
        services.changes_mark(instance.pk, *services.TOPICS)


def _health_changed(sender, instance: SystemHealth, **kwargs) -> None:
    if instance.creator_id is not None:
        services.changes_mark(instance.creator_id, services.SYSTEM)
        return
    # A process-wide record (database, channel layer, a server's monitor) concerns every creator,
    # but only when it changes that component's status: the monitor reports every 30 s.
    previous = (
        SystemHealth.objects.filter(component=instance.component, creator__isnull=True, pk__lt=instance.pk)
        .order_by("-pk")
        .values_list("status", flat=True)
        .first()
    )
    if kwargs.get("created") and previous == instance.status:
        return
    for creator_id in get_user_model().objects.values_list("pk", flat=True):
        services.changes_mark(creator_id, services.SYSTEM)


RECEIVERS = {
    Order: _order_changed,
    Stock: _stock_changed,
    Product: _product_changed,
    InventoryAlert: _alert_changed,
    SyncOperation: _sync_changed,
    SystemHealth: _health_changed,
}


def connect() -> None:
    post_save.connect(_creator_saved, sender=get_user_model(), dispatch_uid="realtime.Creator.save")
    for model, receiver in RECEIVERS.items():
        post_save.connect(receiver, sender=model, dispatch_uid=f"realtime.{model.__name__}.save")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"realtime.{model.__name__}.delete")
