"""Shop connections, orders, their rollups, the webhook inbox and sync operations."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ShopConnection(models.Model):
    """A creator's TikTok shop: the keys that sign its webhooks and the API it is resynced from."""

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="shops")
    shop_id = models.CharField(max_length=64, unique=True)
    app_key = models.CharField(max_length=128)
    app_secret = models.CharField(max_length=256)
    access_token = models.CharField(max_length=512, blank=True)
    shop_cipher = models.CharField(max_length=256, blank=True)
    api_base_url = models.URLField(default="https://open-api.tiktokglobalshop.com")
    stock_write_back = models.BooleanField(
        default=False,
        help_text="After a product's available stock changes, set it on TikTok (products with one TikTok SKU).",
    )
    currency = models.CharField(
        max_length=3, blank=True, help_text="ISO 4217 code shown on this shop's amounts when an order carries none, e.g. USD."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"shop {self.shop_id}"

    def __repr__(self) -> str:
        return f"<ShopConnection {self.shop_id}>"


class OrderStatus(models.TextChoices):
    UNPAID = "UNPAID", "Unpaid"
    ON_HOLD = "ON_HOLD", "On hold"
    AWAITING_SHIPMENT = "AWAITING_SHIPMENT", "Awaiting shipment"
    PARTIALLY_SHIPPING = "PARTIALLY_SHIPPING", "Partially shipping"
    AWAITING_COLLECTION = "AWAITING_COLLECTION", "Awaiting collection"
    IN_TRANSIT = "IN_TRANSIT", "In transit"
    DELIVERED = "DELIVERED", "Delivered"
    COMPLETED = "COMPLETED", "Completed"
    CANCELLED = "CANCELLED", "Cancelled"


class Order(models.Model):
    class Flag(models.TextChoices):
        INSUFFICIENT_STOCK = "insufficient_stock"
        UNKNOWN_PRODUCT = "unknown_product"
        RESERVATION_EXPIRED = "reservation_expired"

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="orders")
    shop = models.ForeignKey(ShopConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="orders")
    external_id = models.CharField(max_length=64, help_text="TikTok order id.")
    status = models.CharField(max_length=24, choices=OrderStatus.choices, default=OrderStatus.UNPAID)
    total_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    flags = models.JSONField(default=list, blank=True)
    placed_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    shipped_at = models.DateTimeField(null=True, blank=True, help_text="First shipped status.")
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    tiktok_updated_at = models.DateTimeField(help_text="TikTok's update time of the newest event applied.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-placed_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "external_id"], name="order_unique_external_id"),
            models.CheckConstraint(condition=Q(total_amount__gte=0), name="order_total_not_negative"),
        ]
        indexes = [
            models.Index(fields=["creator", "-placed_at"]),
            models.Index(fields=["creator", "status"]),
        ]

    def __str__(self) -> str:
        return f"order {self.external_id} ({self.status})"


class OrderItem(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey("inventory.Product", on_delete=models.PROTECT, related_name="order_items")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(max_digits=12, decimal_places=2, default=0)

    class Meta:
        ordering = ["pk"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_item_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product}"


class WebhookEvent(models.Model):
    """A verified webhook delivery, stored raw before it is processed."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        FAILED = "failed"
        IGNORED = "ignored"

    shop = models.ForeignKey(ShopConnection, on_delete=models.CASCADE, related_name="webhook_events")
    delivery_key = models.CharField(
        max_length=100, unique=True, help_text="tts_notification_id, or the body's SHA-256 for CreatorFlow's shape."
    )
    event_type = models.CharField(max_length=64)
    body = models.TextField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["status", "received_at"])]

    def __str__(self) -> str:
        return f"webhook {self.pk} {self.event_type} ({self.status})"


class SyncOperation(models.Model):
    """A resync run, a shop's webhook stream or its stock write-back, with progress the dashboard shows."""

    class Type(models.TextChoices):
        WEBHOOK_STREAM = "webhook_stream", "Webhook stream"
        RESYNC = "resync", "Resync"
        STOCK_WRITE_BACK = "stock_write_back", "Stock write-back"

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"
        RETRYING = "retrying"

    ACTIVE_STATUSES = (Status.PENDING, Status.RUNNING, Status.RETRYING)

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sync_operations")
    shop = models.ForeignKey(ShopConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    type = models.CharField(max_length=24, choices=Type.choices)
    source = models.CharField(max_length=64, default="tiktok")
    target = models.CharField(max_length=64, default="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    entity_count = models.PositiveIntegerField(null=True, blank=True)
    processed_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    detail = models.TextField(blank=True, help_text="What the operation passes over, e.g. products not written back.")
    last_event_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    estimated_completion = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["shop"], condition=Q(type="webhook_stream"), name="sync_one_webhook_stream_per_shop"
            ),
            models.UniqueConstraint(
                fields=["shop"], condition=Q(type="stock_write_back"), name="sync_one_stock_write_back_per_shop"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} {self.source}→{self.target} ({self.status})"

    @property
    def progress_percent(self) -> int | None:
        if not self.entity_count:
            return None
        return min(100, round(100 * self.processed_count / self.entity_count))


class OrderTotals(models.Model):
    """Per-creator running totals of orders, kept in the same transaction as the orders."""

    creator = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="order_totals"
    )
    orders_count = models.BigIntegerField(default=0)
    completed_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    short_count = models.BigIntegerField(default=0, help_text="Orders flagged insufficient_stock and not cancelled.")
    short_units = models.BigIntegerField(default=0, help_text="Units on the lines of those orders.")


class OrderStatsBucket(models.Model):
    """Orders placed and shipped per quarter hour (UTC).

    Every time zone's midnight falls on a quarter hour, so "today" in any creator's time zone,
    the last 7 days and the orders-per-hour chart are sums over at most a few hundred rows,
    however long the creator's history is.
    """

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    placed_count = models.IntegerField(default=0)
    shipped_count = models.IntegerField(default=0)
    processing_seconds = models.BigIntegerField(default=0, help_text="Σ placement → first shipment.")
    paid_amount = models.DecimalField(
        max_digits=16, decimal_places=2, default=0, help_text="Σ totals of paid, not cancelled orders placed here."
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["creator", "start"], name="order_bucket_unique")]


class OrderMinute(models.Model):
    """Orders placed per minute (not cancelled): what a LIVE session and its per-minute chart add up."""

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    minute = models.DateTimeField()
    orders = models.IntegerField(default=0)
    units = models.IntegerField(default=0)
    paid_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    short_orders = models.IntegerField(default=0)
    short_units = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["creator", "minute"], name="order_minute_unique")]


class ProductShortage(models.Model):
    """Per product: orders flagged insufficient_stock (not cancelled) with a line of it, and their units."""

    product = models.OneToOneField(
        "inventory.Product", primary_key=True, on_delete=models.CASCADE, related_name="shortage"
    )
    orders = models.IntegerField(default=0)
    units = models.IntegerField(default=0)
