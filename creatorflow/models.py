"""What every app writes: system health measurements.

The webhook inbox, the realtime monitor and the health checks record how their part is doing;
the dashboard reads the latest record per component. It lives at the bottom of the house so that
every app can write it without importing the app that shows it.
"""

from django.conf import settings
from django.db import models


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
        indexes = [models.Index(fields=["component", "-measured_at"], name="health_component_latest")]

    def __str__(self) -> str:
        return f"{self.component}: {self.status}"
