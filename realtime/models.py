"""Dashboard metrics, the order rollups they are computed from, and system health."""

from django.conf import settings
from django.db import models


class DashboardMetric(models.Model):
    class Type(models.TextChoices):
        ORDERS = "orders"
        INVENTORY = "inventory"
        SYSTEM = "system"

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="metrics")
    metric_type = models.CharField(max_length=16, choices=Type.choices)
    metric_key = models.CharField(max_length=64)
    value = models.JSONField(null=True, help_text="A number, a decimal string, a status word, an ISO time or null.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["metric_type", "metric_key"]
        constraints = [
            models.UniqueConstraint(fields=["creator", "metric_type", "metric_key"], name="metric_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.metric_type}.{self.metric_key} = {self.value}"


class OrderTotals(models.Model):
    """Per-creator running totals of orders, kept in the same transaction as the orders."""

    creator = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="order_totals"
    )
    orders_count = models.BigIntegerField(default=0)
    completed_revenue = models.DecimalField(max_digits=16, decimal_places=2, default=0)


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

    class Meta:
        constraints = [models.UniqueConstraint(fields=["creator", "start"], name="order_bucket_unique")]


class SystemHealth(models.Model):
    class Status(models.TextChoices):
        NOMINAL = "nominal"
        WARNING = "warning"
        CRITICAL = "critical"

    STATUS_RANK = {Status.NOMINAL: 0, Status.WARNING: 1, Status.CRITICAL: 2}

    component = models.CharField(max_length=64)
    status = models.CharField(max_length=16, choices=Status.choices)
    metrics = models.JSONField(default=dict, blank=True)
    error_message = models.TextField(blank=True)
    measured_at = models.DateTimeField(auto_now_add=True, db_index=True)
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="health_records"
    )

    class Meta:
        ordering = ["-measured_at", "-pk"]
        verbose_name_plural = "system health"
        indexes = [models.Index(fields=["component", "-measured_at"])]

    def __str__(self) -> str:
        return f"{self.component}: {self.status}"
