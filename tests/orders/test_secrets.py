"""No secret, access token, signature or signed URL in any output, log line, traceback or error.

Each failing path runs as an operator meets it (the command line, HTTP) and every text it leaves
behind — stdout, stderr, log records, the formatted exception chain, stored errors — is searched.
"""

import io
import re
import traceback

import pytest
from django.core.management import CommandError, call_command

from creatorflow.models import SystemHealth
from orders.models import SyncOperation, WebhookEvent
from orders.tiktok import TikTokClient, TikTokError
from tests.cli import manage  # noqa: F401 - fixture
from tests.fake_tiktok import FakeTikTokShop

from .conftest import signed, tiktok_body

pytestmark = pytest.mark.django_db

APP_SECRET = "app-secret-Zq81fXw"
ACCESS_TOKEN = "access-token-Kp27mVd"
SIGNATURE_LIKE = re.compile(r"[0-9a-f]{64}")


def assert_clean(*texts: str, secrets=(APP_SECRET, ACCESS_TOKEN)) -> None:
    """Fail when any text holds a secret, a signature-like hex digest or a signed query."""
    for text in texts:
        for secret in secrets:
            assert secret not in text
        assert not SIGNATURE_LIKE.search(text), text
        assert "sign=" not in text and "app_key=" not in text, text


@pytest.fixture
def secret_fake():
    with FakeTikTokShop(app_secret=APP_SECRET, access_token=ACCESS_TOKEN) as fake:
        yield fake


def _command(*args) -> tuple[str, str, str]:
    """Run a command that must fail; return its stdout, stderr and its whole exception chain."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue(), "".join(traceback.format_exception(failure.value))


def test_resync_against_an_unreachable_url_prints_no_secret(manage):
    manage("shop_connect", "maya", "--shop-id", "S1", "--app-key", "K1", "--app-secret", APP_SECRET,
           "--access-token", ACCESS_TOKEN, "--api-base-url", "http://127.0.0.1:1", "--password", "pw-12345",
           check=True)

    # --traceback prints the whole exception chain, as an operator debugging would ask for.
    finished = manage("tiktok_resync", "--shop-id", "S1", "--traceback")

    assert finished.returncode == 1
    assert "TikTok unreachable at http://127.0.0.1:1" in finished.stderr
    assert_clean(finished.stdout, finished.stderr)


def test_resync_with_a_refused_token_prints_and_logs_no_secret(make_shop, creator, secret_fake, every_log):
    shop = make_shop(creator, shop_id="S1", app_key=secret_fake.app_key, app_secret=APP_SECRET,
                     access_token="revoked-token-Hh55", shop_cipher=secret_fake.shop_cipher,
                     api_base_url=secret_fake.base_url)

    out, err, chain = _command("tiktok_resync", "--shop-id", shop.shop_id)

    assert "failed (credentials)" in chain
    operation = SyncOperation.objects.get(type="resync")
    assert operation.status == "failed"
    assert_clean(out, err, chain, operation.last_error, *every_log, secrets=(APP_SECRET, "revoked-token-Hh55"))
    assert secret_fake.requests, "the refusal came from the API, not from a check before it"


def test_resync_of_a_shop_with_a_malformed_url_stops_before_any_request(make_shop, creator, every_log):
    shop = make_shop(creator, shop_id="S1", app_secret=APP_SECRET, access_token=ACCESS_TOKEN,
                     api_base_url="not-a-url")

    out, err, chain = _command("tiktok_resync", "--shop-id", shop.shop_id)

    assert "API base URL must be an http:// or https:// URL" in chain
    assert not SyncOperation.objects.exists()
    assert_clean(out, err, chain, *every_log)


def test_a_crash_inside_the_tiktok_client_chains_nothing_that_holds_the_signed_url(secret_fake):
    client = TikTokClient(base_url=f"{secret_fake.base_url}/a b", app_key="K1", app_secret=APP_SECRET,
                          access_token=ACCESS_TOKEN, shop_cipher="c", backoff=0, sleep=lambda seconds: None)

    with pytest.raises(TikTokError) as failure:
        client.orders_get(order_ids=["O-1"])

    chain = "".join(traceback.format_exception(failure.value))
    assert "InvalidURL" in str(failure.value)
    assert failure.value.__cause__ is None and failure.value.__suppress_context__
    assert_clean(chain)


def test_a_crash_inside_the_tiktok_client_during_a_webhook_leaves_no_secret(make_shop, creator, client, every_log):
    # A row saved before base URLs were checked: the order-detail call breaks inside the HTTP stack.
    shop = make_shop(creator, shop_id="S1", app_secret=APP_SECRET, access_token=ACCESS_TOKEN,
                     api_base_url="http://127.0.0.1/a b")
    body = tiktok_body(shop, notification_id="n-1", order_id="O-1")

    response = client.post("/webhooks/tiktok/", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=signed(shop, body))

    event = WebhookEvent.objects.get()
    assert event.status == "failed" and "could not be made" in event.error
    stored = [event.error, *SystemHealth.objects.values_list("error_message", flat=True),
              *SyncOperation.objects.values_list("last_error", flat=True)]
    assert_clean(response.content.decode(), *stored, *every_log)


def test_a_webhook_with_a_wrong_signature_echoes_and_logs_neither_signature(shop, client, every_log):
    body = b'{"type": "ORDER_STATUS_CHANGE", "shop_id": "%s", "timestamp": 1, "data": {}}' % shop.shop_id.encode()
    presented = "ab" * 32

    response = client.post("/webhooks/tiktok/", data=body, content_type="application/json",
                           HTTP_AUTHORIZATION=presented)

    assert response.status_code == 401
    assert_clean(response.content.decode(), *every_log, secrets=(shop.app_secret, presented))
