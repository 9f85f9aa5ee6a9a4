"""Admin for the webhook inbox: browse deliveries, read their payload, replay them."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html

from . import webhooks
from .models import WebhookEvent


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
        events = super().get_queryset(request).select_related("shop")
        if request.user.is_superuser:
            return events
        return events.filter(shop__creator=request.user)

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
        report = webhooks.webhooks_replay(event_ids=list(queryset.values_list("pk", flat=True)))
        level = messages.WARNING if report.failed else messages.SUCCESS
        self.message_user(
            request,
            f"Replayed: {len(report.processed)} processed, {len(report.failed)} failed, "
            f"{len(report.skipped)} skipped (already processed or ignored).",
            level,
        )
