"""Dashboard metrics (the stored figures the cards and the JSON API show) and LIVE sessions."""

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


class LiveSession(models.Model):
    """A seller's LIVE stream: its figures are the orders placed from its start to its end."""

    creator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="live_sessions")
    title = models.CharField(max_length=120, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True, help_text="Empty while the LIVE runs.")
    # The summary kept when the LIVE ends (while it runs, its figures are read from the order rollups).
    gmv = models.DecimalField(max_digits=16, decimal_places=2, default=0, help_text="Σ totals of paid orders.")
    orders = models.IntegerField(default=0)
    units = models.IntegerField(default=0)
    short_orders = models.IntegerField(default=0)
    short_units = models.IntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["creator"], condition=models.Q(ended_at__isnull=True), name="live_one_running_per_creator"
            ),
            models.CheckConstraint(
                condition=models.Q(ended_at__isnull=True) | models.Q(ended_at__gte=models.F("started_at")),
                name="live_ends_after_it_starts",
            ),
        ]
        indexes = [models.Index(fields=["creator", "-started_at"])]

    def __str__(self) -> str:
        return f"LIVE {self.title or self.pk} ({'running' if self.ended_at is None else 'ended'})"

    @property
    def is_running(self) -> bool:
        return self.ended_at is None
