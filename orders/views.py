"""HTTP entry points of the orders app: the TikTok webhook.

The view reads the raw body within the size limit and hands it to this process's applier
(``orders.runtime``), which verifies and stores it with every other delivery waiting, in one
committed INSERT, then applies them together. It answers once the event's effects are
committed, so a sender that reads the API next sees them; an event not applied within
``INBOX_ANSWER_WITHIN_SECONDS`` of the request's start, or whose batch met a database outage, is
answered ``queued`` and still applied. 200 for every stored delivery (processed, duplicate, ignored,
failed and kept for replay, queued), 4xx for a refused one, 503 when the database is away before the
delivery is stored, so TikTok retries. One log line per delivery, never with the secret or the signature.
"""

import asyncio
import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
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
    applying: Future | None = None  # the applier's future, when the batch that stored it applies it


def _outcome(event_id: int, status: str, *, duplicate: bool) -> dict:
    outcome = "duplicate" if duplicate and status != Status.FAILED else status
    answer = {"status": outcome, "event_id": event_id}
    if outcome == Status.FAILED:
        answer["detail"] = "Stored; processing failed and can be replayed."
    elif outcome == QUEUED:
        answer["detail"] = "Stored; it will be applied shortly."
    return answer


def _stored(received: inbox.Receipt | Exception) -> _Stored:
    """What the inbox made of a delivery: the answer it gets now, or the stored event to apply."""
    if isinstance(received, inbox.WebhookRejected):
        return _Stored(
            shop_id=received.shop.shop_id if received.shop else "-",
            status=received.status,
            answer={"error": received.code, "detail": received.message},
        )
    if isinstance(received, Exception):
        raise received
    event = received.event
    stored = _Stored(shop_id=received.shop.shop_id, event_type=event.event_type, duplicate=received.duplicate)
    stored.pending = inbox.receipt_pending(received)
    if stored.pending is None:
        stored.answer = {"status": "duplicate" if received.duplicate else Status.IGNORED, "event_id": event.pk}
    return stored


def _store(body: bytes, signature: str | None) -> _Stored:
    """Verify and store a delivery on this thread, then read what it says (see ``_read``)."""
    try:
        stored = _stored(inbox.webhook_receive(body=body, signature=signature))
    except inbox.WebhookRejected as rejection:
        return _stored(rejection)
    if stored.pending is not None and connection.in_atomic_block:
        # Inside a caller's transaction no other thread can see the stored row: apply it here.
        event = stored.pending.event
        applied = inbox.webhooks_apply([stored.pending], client=_client(event.shop))[event.pk]
        stored.answer, stored.pending = _outcome(event.pk, applied.status, duplicate=stored.duplicate), None
        return stored
    return _read(stored)


def _read(stored: _Stored) -> _Stored:
    """Read what a stored delivery says, fetching TikTok's order detail, before it waits for its batch.

    A failure is kept on the event for replay and answered ``failed``.
    """
    if stored.pending is None:
        return stored
    event = stored.pending.event
    try:
        stored.pending = inbox.pending_read(stored.pending, client=_client(event.shop))
    except (OperationalError, InterfaceError):
        raise
    except Exception as error:  # noqa: BLE001 - kept on the event for replay
        inbox.webhook_fail(event=event, error=error)
        stored.answer, stored.pending = _outcome(event.pk, Status.FAILED, duplicate=stored.duplicate), None
    finally:
        connection.close()  # back to the pool: the delivery may now wait for its batch
    return stored


def _client(shop) -> TikTokClient:
    return TikTokClient.for_shop(shop, **WEBHOOK_FETCH_OPTIONS)


async def _received(body: bytes, signature: str | None, *, until: float) -> _Stored:
    """Hand a delivery to this process's applier, which stores it with the others waiting and applies it.

    Only an event that needs TikTok's order detail comes back here to be fetched (on a thread)
    and handed back to the applier as a stored event. Should the applier be held up past the
    answer's deadline (a long batch, a lock wait), the delivery is stored on a thread instead,
    so that its sender still hears in time; storing it twice is harmless (a duplicate).
    """
    job = runtime.applier().receive(body, signature)
    try:
        received = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(job.stored)), _left(until))
    except TimeoutError:
        return await sync_to_async(_store)(body, signature)
    stored = _stored(received)
    if job.pending is not None:  # the batch that stored it applies it
        stored.applying = job.applied
    elif stored.pending is not None:  # left to this request: fetch TikTok's order detail first
        return await sync_to_async(_read)(stored)
    return stored


def _left(until: float) -> float:
    return max(until - asyncio.get_running_loop().time(), 0)


async def _applied(submitted: Future, *, until: float) -> str:
    """Wait for the applier to apply a stored event; return its status, or "queued" at the deadline."""
    try:
        result = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(submitted)), _left(until))
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
        signature = request.headers.get("Authorization")
        until = asyncio.get_running_loop().time() + settings.CREATORFLOW["INBOX_ANSWER_WITHIN_SECONDS"]
        if isinstance(request, ASGIRequest):
            stored = await _received(body, signature, until=until)
        else:
            # Served without ASGI (the test client), the request may hold a transaction open
            # that the applier's connection cannot see into: store on the request's thread.
            stored = await sync_to_async(_store)(body, signature)
        if stored.pending is not None:
            waiting = time.perf_counter()
            event = stored.pending.event
            applying = stored.applying or runtime.applier().submit(stored.pending)
            stored.answer = _outcome(event.pk, await _applied(applying, until=until), duplicate=stored.duplicate)
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
