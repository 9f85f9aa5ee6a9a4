"""Dashboard metrics: the stored figures the cards and the JSON API show."""

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
