"""Dashboard page, alert actions, JSON API and health check."""

from django.urls import path

from . import api, views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("alerts/<int:alert_id>/acknowledge/", views.alert_acknowledge, name="alert-acknowledge"),
    path("alerts/<int:alert_id>/resolve/", views.alert_resolve, name="alert-resolve"),
    path("live/start/", views.live_start, name="live-start"),
    path("live/end/", views.live_end, name="live-end"),
    path("orders/", views.orders_list, name="orders-list"),
    path("orders/<int:order_pk>/", views.order_detail, name="order-detail"),
    path("api/metrics/", api.metrics, name="api-metrics"),
    path("api/inventory/", api.inventory, name="api-inventory"),
    path("api/orders/", api.orders, name="api-orders"),
    path("api/alerts/", api.alerts, name="api-alerts"),
    path("api/live/", api.live, name="api-live"),
    path("api/live/start/", api.live_start, name="api-live-start"),
    path("api/live/end/", api.live_end, name="api-live-end"),
    path("healthz", views.healthz, name="healthz"),
    path("system/", views.system_monitor, name="system-monitor"),
]
