"""HTTP entry points of the orders app: the TikTok webhook."""

import logging

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import webhooks

logger = logging.getLogger("creatorflow.webhooks")


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse(
        {"error": webhooks.WebhookTooLarge.code, "detail": f"Body is larger than {limit:,} bytes."}, status=413
    )


@csrf_exempt  # Deliveries are authenticated by their HMAC signature, not by a session.
@require_POST
def tiktok_webhook(request: HttpRequest) -> JsonResponse:
    """Receive one TikTok Shop webhook delivery."""
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        return JsonResponse({"error": "invalid_request", "detail": "Content-Length is not a number."}, status=400)
    if declared > limit:
        return _too_large(limit)
    body = request.read(limit + 1)  # never trust the declared length alone
    if len(body) > limit:
        return _too_large(limit)
    try:
        result = webhooks.webhook_handle(body=body, signature=request.headers.get("Authorization"))
    except (OperationalError, InterfaceError) as error:
        # TikTok retries a delivery that was not acknowledged; a 5xx it can retry beats a lost order.
        logger.error("webhook database unavailable: %s", type(error).__name__)
        response = JsonResponse({"error": "unavailable", "detail": "Database unavailable; retry later."}, status=503)
        response["Retry-After"] = "5"
        return response
    return JsonResponse(result.body, status=result.status)
