"""Admin for alerts and the catalogue. Stock is read-only here: it changes only through services."""

from django.contrib import admin, messages
from django.db.models import Sum

from creatorflow.admin_base import ViewOnlyAdmin, ViewOnlyInline

from .services import alerts as alert_services
from .services import catalogue
from .models import InventoryAlert, Product, Reservation, Stock, StockMovement, Warehouse


class StockInline(ViewOnlyInline):
    model = Stock
    fields = ["warehouse", "on_hand", "reserved", "available", "updated_at"]
    readonly_fields = fields


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "sku", "external_id", "creator", "available_total", "reorder_point", "velocity_per_hour"]
    list_filter = ["creator"]
    search_fields = ["name", "sku", "external_id"]
    fields = ["creator", "external_id", "name", "sku", "reorder_point", "unit_cost", "velocity_per_hour"]
    readonly_fields = ["creator", "external_id", "velocity_per_hour"]
    inlines = [StockInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("creator").annotate(available_sum=Sum("stocks__available"))

    @admin.display(description="available", ordering="available_sum")
    def available_total(self, product) -> int:
        return product.available_sum or 0

    def has_add_permission(self, request) -> bool:
        return False  # Products arrive from TikTok (webhooks, resync).

    def save_model(self, request, obj, form, change):
        # Through the service, so a new reorder point re-evaluates the product's alerts.
        catalogue.product_upsert(
            creator_id=obj.creator_id,
            external_id=obj.external_id,
            name=obj.name,
            sku=obj.sku,
            reorder_point=obj.reorder_point,
            unit_cost=obj.unit_cost,
        )


class MovementInline(ViewOnlyInline):
    model = StockMovement
    fields = ["created_at", "reason", "on_hand_delta", "reserved_delta", "reference"]
    readonly_fields = fields
    ordering = ["-pk"]


@admin.register(Stock)
class StockAdmin(admin.ModelAdmin):
    list_display = ["product", "warehouse", "on_hand", "reserved", "available", "updated_at"]
    list_filter = ["warehouse__creator", "warehouse"]
    search_fields = ["product__name", "product__sku"]
    readonly_fields = ["product", "warehouse", "on_hand", "reserved", "available", "updated_at"]
    inlines = [MovementInline]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "warehouse")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["name", "creator", "external_id", "is_default"]
    list_filter = ["creator"]
    readonly_fields = ["is_default"]


@admin.register(Reservation)
class ReservationAdmin(ViewOnlyAdmin):
    list_display = ["pk", "order_item", "stock", "quantity", "status", "expires_at", "created_at"]
    list_filter = ["status"]
    search_fields = ["order_item__order__external_id", "stock__product__name"]
    readonly_fields = ["order_item", "stock", "quantity", "status", "expires_at", "created_at", "updated_at"]


@admin.register(InventoryAlert)
class InventoryAlertAdmin(admin.ModelAdmin):
    list_display = ["product", "type", "severity", "status", "available", "creator", "created_at", "updated_at"]
    list_filter = ["severity", "status", "type", "creator"]
    search_fields = ["product__name", "product__sku", "product__external_id", "message"]
    readonly_fields = [
        "creator", "product", "type", "severity", "status", "message", "available",
        "created_at", "updated_at", "acknowledged_at", "acknowledged_by", "resolved_at",
    ]
    actions = ["acknowledge", "resolve"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "creator")

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Acknowledge selected alerts")
    def acknowledge(self, request, queryset):
        alerts = list(queryset.filter(status=InventoryAlert.Status.ACTIVE))
        for alert in alerts:
            alert_services.alert_acknowledge(alert=alert, by=request.user)
        self.message_user(request, f"Acknowledged {len(alerts)} alert(s).", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts")
    def resolve(self, request, queryset):
        alerts = list(queryset.exclude(status=InventoryAlert.Status.RESOLVED))
        for alert in alerts:
            alert_services.alert_resolve(alert=alert)
        self.message_user(request, f"Resolved {len(alerts)} alert(s).", messages.SUCCESS)
