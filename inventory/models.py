"""Warehouses, products and their TikTok SKUs, stock, the stock ledger, reservations, sales buckets and alerts.

Rules that change these rows live in ``inventory.services``; nothing here writes stock.
"""

from django.conf import settings
from django.db import models
from django.db.models import F, Q


class Warehouse(models.Model):
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="warehouses")
    name = models.CharField(max_length=120)
    external_id = models.CharField(max_length=64, blank=True, help_text="TikTok warehouse id, when known.")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["creator"], condition=Q(is_default=True), name="warehouse_one_default_per_creator"
            ),
            models.UniqueConstraint(
                fields=["creator", "external_id"], condition=~Q(external_id=""), name="warehouse_unique_external_id"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="products")
    external_id = models.CharField(max_length=64, help_text="TikTok product id.")
    name = models.CharField(max_length=255)
    sku = models.CharField(max_length=100, blank=True)
    reorder_point = models.PositiveIntegerField(default=10)
    unit_cost = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    velocity_per_hour = models.DecimalField(
        max_digits=12, decimal_places=3, default=0, help_text="Units sold per hour over the trailing 24 h."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "external_id"], name="product_unique_external_id"),
            models.CheckConstraint(condition=Q(unit_cost__gte=0), name="product_unit_cost_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku or self.external_id})"


class ProductSku(models.Model):
    """A TikTok SKU of a product: the id stock write-back names when it sets TikTok's quantity.

    CreatorFlow keeps stock per product, so only a product with exactly one SKU is written back.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="tiktok_skus")
    external_id = models.CharField(max_length=64, help_text="TikTok SKU id.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["product", "external_id"], name="product_sku_unique")]

    def __str__(self) -> str:
        return f"SKU {self.external_id} of {self.product}"


class Stock(models.Model):
    """Units of one product in one warehouse; ``available`` is computed by the database."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="stocks")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.CASCADE, related_name="stocks")
    on_hand = models.IntegerField(default=0)
    reserved = models.IntegerField(default=0)
    available = models.GeneratedField(
        expression=F("on_hand") - F("reserved"), output_field=models.IntegerField(), db_persist=True
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stock_unique_product_warehouse"),
            models.CheckConstraint(condition=Q(on_hand__gte=0), name="stock_on_hand_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="stock_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("on_hand")), name="stock_available_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.product} @ {self.warehouse}: {self.on_hand} on hand, {self.reserved} reserved"


class StockMovement(models.Model):
    """Append-only ledger: every change to a stock row's on_hand or reserved."""

    class Reason(models.TextChoices):
        RESTOCK = "restock"
        SYNC = "sync"
        RESERVE = "reserve"
        RELEASE = "release"
        SHIP = "ship"
        EXPIRE = "expire"
        ADJUST = "adjust"

    stock = models.ForeignKey(Stock, on_delete=models.CASCADE, related_name="movements")
    reason = models.CharField(max_length=16, choices=Reason.choices)
    on_hand_delta = models.IntegerField(default=0)
    reserved_delta = models.IntegerField(default=0)
    reference = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["stock", "created_at"])]

    def __str__(self) -> str:
        return f"{self.reason} {self.on_hand_delta:+d}/{self.reserved_delta:+d} ({self.reference})"


class Reservation(models.Model):
    """Units of one stock row held for one order line."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        RELEASED = "released"
        COMMITTED = "committed"
        EXPIRED = "expired"

    order_item = models.ForeignKey("orders.OrderItem", on_delete=models.CASCADE, related_name="reservations")
    stock = models.ForeignKey(Stock, on_delete=models.PROTECT, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Empty once the order is paid.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="reservation_active_expiry"),
        ]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="reservation_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.stock.product} ({self.status})"


class ProductSalesMinute(models.Model):
    """Units sold of a product per minute: velocity reads 1,440 rows at most, whatever the history."""

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="sales_minutes")
    minute = models.DateTimeField()
    units = models.IntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product", "minute"], name="sales_minute_unique")]


class InventoryAlert(models.Model):
    class Type(models.TextChoices):
        LOW_STOCK = "low_stock", "Low stock"
        STOCKOUT = "stockout", "Stockout"
        VELOCITY_ANOMALY = "velocity_anomaly", "Velocity anomaly"
        INSUFFICIENT_STOCK = "insufficient_stock", "Insufficient stock"

    class Severity(models.TextChoices):
        WARNING = "warning"
        CRITICAL = "critical"
        EMERGENCY = "emergency"

    class Status(models.TextChoices):
        ACTIVE = "active"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    OPEN_STATUSES = (Status.ACTIVE, Status.ACKNOWLEDGED)
    SEVERITY_RANK = {Severity.WARNING: 1, Severity.CRITICAL: 2, Severity.EMERGENCY: 3}

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="alerts")
    type = models.CharField(max_length=24, choices=Type.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    message = models.CharField(max_length=500)
    available = models.IntegerField(default=0, help_text="Available units when last evaluated.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["creator", "status", "severity"])]
        constraints = [
            models.UniqueConstraint(
                fields=["product", "type"],
                condition=Q(status__in=["active", "acknowledged"]),
                name="alert_one_open_per_product_type",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} ({self.severity}) — {self.product.name}"

    @property
    def is_urgent(self) -> bool:
        return self.severity in (self.Severity.CRITICAL, self.Severity.EMERGENCY)
