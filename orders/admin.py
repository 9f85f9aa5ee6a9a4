"""Admin for shops, orders, sync operations and the webhook inbox (browse, read payloads, replay).

Orders and sync operations are read-only here: they change only through the services."""

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join

from creatorflow.admin_base import ViewOnlyAdmin, ViewOnlyInline
from inventory.models import Reservation

from . import inbox
from .events import OrderError
from .models import Order, OrderItem, ShopConnection, SyncOperation, WebhookEvent
from .shops import currency_parse


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ["id", "event_type", "shop", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["delivery_key", "shop__shop_id"]
    date_hierarchy = "received_at"
    actions = ["replay"]
    fields = [
        "shop", "event_type", "delivery_key", "status", "attempts", "error", "received_at", "processed_at", "payload",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        # Staff see every shop's deliveries; creators without staff status have no admin at all.
        return super().get_queryset(request).select_related("shop")

    def has_add_permission(self, request) -> bool:
        return False  # deliveries come from TikTok, never from a form

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="payload")
    def payload(self, event: WebhookEvent) -> str:
        try:
            text = json.dumps(json.loads(event.body), indent=2, sort_keys=True, ensure_ascii=False)
        except ValueError:
            text = event.body
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)

    @admin.action(description="Replay selected events (each is applied at most once)")
    def replay(self, request, queryset):
        report = inbox.webhooks_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        level = messages.WARNING if report.failed else messages.SUCCESS
        self.message_user(
            request,
            f"Replayed: {len(report.processed)} processed, {len(report.failed)} failed, "
            f"{len(report.skipped)} skipped (already processed or ignored).",
            level,
        )


class ShopConnectionForm(forms.ModelForm):
    """The app secret and access token can be replaced here but are never shown back."""

    app_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current secret.",
    )
    access_token = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current token.",
    )
    api_base_url = forms.URLField(assume_scheme="https", initial="https://open-api.tiktokglobalshop.com")

    class Meta:
        model = ShopConnection
        fields = [
            "creator", "shop_id", "app_key", "app_secret", "access_token", "shop_cipher", "api_base_url", "stock_write_back",
            "currency",
        ]

    def clean_currency(self) -> str:
        try:
            return currency_parse(self.cleaned_data["currency"])
        except OrderError as error:
            raise forms.ValidationError(str(error)) from error

    def clean_app_secret(self) -> str:
        secret = self.cleaned_data["app_secret"]
        if not secret and not self.instance.pk:
            raise forms.ValidationError("A new shop needs its app secret.")
        return secret or self.instance.app_secret

    def clean_access_token(self) -> str:
        return self.cleaned_data["access_token"] or self.instance.access_token


@admin.register(ShopConnection)
class ShopConnectionAdmin(admin.ModelAdmin):
    form = ShopConnectionForm
    list_display = ["shop_id", "creator", "app_key", "api_base_url", "currency", "stock_write_back", "created_at"]
    search_fields = ["shop_id", "creator__username"]
    list_filter = ["creator", "stock_write_back"]


class OrderItemInline(ViewOnlyInline):
    model = OrderItem
    fields = ["product", "quantity", "unit_price", "reservations_held"]
    readonly_fields = fields

    @admin.display(description="reservations")
    def reservations_held(self, item: OrderItem) -> str:
        rows = Reservation.objects.filter(order_item=item).select_related("stock__warehouse").order_by("pk")
        return format_html_join(
            ", ",
            "{} × {} ({}{})",
            (
                (
                    row.quantity,
                    row.stock.warehouse.name,
                    row.status,
                    f", expires {row.expires_at:%Y-%m-%d %H:%M}" if row.expires_at and row.status == "active" else "",
                )
                for row in rows
            ),
        ) or "—"


@admin.register(Order)
class OrderAdmin(ViewOnlyAdmin):
    list_display = ["external_id", "creator", "status", "total_amount", "currency", "flag_list", "placed_at"]
    list_filter = ["status", "creator"]
    search_fields = ["external_id"]
    date_hierarchy = "placed_at"
    inlines = [OrderItemInline]
    readonly_fields = [
        "creator", "shop", "external_id", "status", "total_amount", "currency", "flags", "placed_at", "paid_at",
        "shipped_at", "cancelled_at", "completed_at", "tiktok_updated_at", "created_at", "updated_at",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("creator")

    @admin.display(description="flags")
    def flag_list(self, order: Order) -> str:
        return ", ".join(order.flags) or "—"


@admin.register(SyncOperation)
class SyncOperationAdmin(admin.ModelAdmin):
    list_display = [
        "pk", "creator", "type", "status", "processed_count", "entity_count", "error_count", "last_event_at",
        "started_at", "completed_at",
    ]
    list_filter = ["type", "status", "creator"]
    readonly_fields = [
        "creator", "shop", "type", "source", "target", "status", "entity_count", "processed_count", "error_count",
        "last_error", "detail", "last_event_at", "started_at", "completed_at", "estimated_completion",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
