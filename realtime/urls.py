"""Dashboard page, alert actions, JSON API and health check."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert-resolve"),
    path("api/metrics/", api.metrics, name="api-metrics"),
    path("api/inventory/", api.inventory, name="api-inventory"),
    path("api/orders/", api.orders, name="api-orders"),
    path("api/alerts/", api.alerts, name="api-alerts"),
    path("healthz", views.healthz, name="healthz"),
    path("system/", views.system_monitor, name="system-monitor"),
]
