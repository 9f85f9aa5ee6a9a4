"""HTTP entry points of the orders app: the TikTok webhook.

The view reads the raw body within the size limit, has the inbox verify and store it, and waits
for this process's applier (``orders.runtime``) to apply it with whatever else is waiting. It
answers once the event's effects are committed, so a sender that reads the API next sees them; an
event not applied within ``INBOX_ANSWER_WITHIN_SECONDS`` is answered ``queued`` and still applied.
200 for every stored delivery (processed, duplicate, ignored, failed and kept for replay, queued),
4xx for a refused one, 503 when the database is away so TikTok retries. One log line per delivery,
never with the secret or the signature.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import inbox, runtime
from .models import WebhookEvent
from .tiktok import TikTokClient

logger = logging.getLogger("creatorflow.webhooks")

Status = WebhookEvent.Status
QUEUED = "queued"
# TikTok waits a few seconds for the answer: fetch an order's detail briefly while it waits.
# A fetch that still fails leaves the event failed, and webhooks_replay fetches it patiently.
WEBHOOK_FETCH_OPTIONS = {"timeout": 3.0, "retries": 1, "backoff": 0.2}


@dataclass
class _Stored:
    """A delivery after the inbox: refused, answered already, or waiting for the applier."""

    shop_id: str = "-"
    event_type: str = "-"
    status: int = 200
    answer: dict | None = None
    pending: inbox.Pending | None = None
    duplicate: bool = False


def _outcome(event_id: int, status: str, *, duplicate: bool) -> dict:
    outcome = "duplicate" if duplicate and status != Status.FAILED else status
    answer = {"status": outcome, "event_id": event_id}
    if outcome == Status.FAILED:
        answer["detail"] = "Stored; processing failed and can be replayed."
    elif outcome == QUEUED:
        answer["detail"] = "Stored; it will be applied shortly."
    return answer


def _store(body: bytes, signature: str | None) -> _Stored:
    """Verify and store a delivery; read what it says (fetching TikTok's order detail) before it waits."""
    try:
        receipt = inbox.webhook_receive(body=body, signature=signature)
    except inbox.WebhookRejected as rejection:
        return _Stored(
            shop_id=rejection.shop.shop_id if rejection.shop else "-",
            status=rejection.status,
            answer={"error": rejection.code, "detail": rejection.message},
        )
    event = receipt.event
    stored = _Stored(shop_id=receipt.shop.shop_id, event_type=event.event_type, duplicate=receipt.duplicate)
    if receipt.duplicate and event.status != Status.RECEIVED:
        stored.answer = {"status": "duplicate", "event_id": event.pk}
        return stored
    if event.status == Status.IGNORED:
        stored.answer = {"status": "ignored", "event_id": event.pk}
        return stored
    # A duplicate still "received" was stored by an attempt that never got to apply it (the
    # database went away, the process died) and was not acknowledged: this retry applies it.
    pending = inbox.Pending(event=event, payload=receipt.payload)
    client = TikTokClient.for_shop(receipt.shop, **WEBHOOK_FETCH_OPTIONS)
    if connection.in_atomic_block:
        # Inside a caller's transaction no other thread can see the stored row: apply it here.
        applied = inbox.webhooks_apply([pending], client=client)[event.pk]
        stored.answer = _outcome(event.pk, applied.status, duplicate=receipt.duplicate)
        return stored
    try:
        stored.pending = inbox.pending_read(pending, client=client)
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:  # noqa: BLE001 - kept on the event for replay
        inbox.webhook_fail(event=event, error=error)
        stored.answer = _outcome(event.pk, Status.FAILED, duplicate=receipt.duplicate)
    finally:
        connection.close()  # back to the pool: the delivery may now wait for its batch
    return stored


async def _applied(pending: inbox.Pending) -> str:
    """Hand a stored event to this process's applier; return its status, or "queued" after the wait."""
    submitted = runtime.applier().submit(pending)
    try:
        result = await asyncio.wait_for(
            asyncio.shield(asyncio.wrap_future(submitted)), settings.CREATORFLOW["INBOX_ANSWER_WITHIN_SECONDS"]
        )
    except TimeoutError:
        if submitted.cancel():
            # Nobody waits for it now; the applier still applies it, after an outage included.
            return QUEUED
        result = submitted.result()  # resolved as the wait ended (raises its database error)
    return _status(result)


def _status(result) -> str:
    if result is None or result.status == Status.RECEIVED:
        # Claimed by another server's applier, which will apply it: not ours to wait for.
        return QUEUED
    return result.status


def _too_large(limit: int) -> JsonResponse:
    return JsonResponse({"error": inbox.WebhookTooLarge.code, "detail": f"Body is larger than {limit:,} bytes."}, status=413)


def _unavailable(error: Exception) -> JsonResponse:
    # TikTok retries a delivery that was not acknowledged; a 5xx it can retry beats a lost order.
    logger.error("webhook database unavailable: %s", type(error).__name__)
    response = JsonResponse({"error": "unavailable", "detail": "Database unavailable; retry later."}, status=503)
    response["Retry-After"] = "5"
    return response


@csrf_exempt  # Deliveries are authenticated by their HMAC signature, not by a session.
@require_POST
async def tiktok_webhook(request: HttpRequest) -> JsonResponse:
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
    started = time.perf_counter()
    stored, outcome, waited = _Stored(), "error", 0.0
    try:
        stored = await sync_to_async(_store)(body, request.headers.get("Authorization"))
        if stored.pending is not None:
            waiting = time.perf_counter()
            event = stored.pending.event
            stored.answer = _outcome(event.pk, await _applied(stored.pending), duplicate=stored.duplicate)
            waited = time.perf_counter() - waiting
        outcome = stored.answer.get("status") or f"rejected_{stored.status}"
        return JsonResponse(stored.answer, status=stored.status)
    except (OperationalError, InterfaceError) as error:
        return _unavailable(error)
    finally:
        logger.info(
            "webhook shop=%s type=%s outcome=%s ms=%.1f queued_ms=%.1f",
            stored.shop_id,
            stored.event_type,
            outcome,
            (time.perf_counter() - started) * 1000,
            waited * 1000,
        )
