"""Signature attacks on POST /webhooks/tiktok/: every forgery is a 401 that stores nothing.

The contract: ``Authorization`` is the lowercase hex HMAC-SHA256 keyed with the shop's app
secret over the app key followed by the raw body bytes, compared in constant time.
"""

import base64
import hashlib
import hmac
import json

import pytest

from orders.models import Order, WebhookEvent

from .conftest import WEBHOOK_URL, database_snapshot, encode, order_document, signed

pytestmark = pytest.mark.django_db

SECRET_A, SECRET_B = "signature-secret-a-5d1", "signature-secret-b-e07"


@pytest.fixture
def shops(make_creator, make_shop, make_product):
    shop_a = make_shop(make_creator("sig-a"), shop_id="sig-shop-a", app_key="key-a", app_secret=SECRET_A)
    shop_b = make_shop(make_creator("sig-b"), shop_id="sig-shop-b", app_key="key-b", app_secret=SECRET_B)
    make_product(shop_a.creator, stock=10, external_id="P-1")
    return shop_a, shop_b


def _hmac(key: str, message: bytes, digest=hashlib.sha256) -> hmac.HMAC:
    return hmac.new(key.encode(), message, digest)


FORGERIES = {
    "wrong secret": lambda a, b, body: _hmac("not-the-secret", a.app_key.encode() + body).hexdigest(),
    "app key of another shop": lambda a, b, body: _hmac(a.app_secret, b.app_key.encode() + body).hexdigest(),
    "another shop's own valid signature": lambda a, b, body: signed(b, body),
    "over the re-serialised body": lambda a, b, body: signed(
        a, json.dumps(json.loads(body), separators=(",", ":"), sort_keys=True).encode()
    ),
    "uppercase hex": lambda a, b, body: signed(a, body).upper(),
    "empty header": lambda a, b, body: "",
    "blank header": lambda a, b, body: "   ",
    "prefixed with sha256=": lambda a, b, body: "sha256=" + signed(a, body),
    "base64 instead of hex": lambda a, b, body: base64.b64encode(
        _hmac(a.app_secret, a.app_key.encode() + body).digest()
    ).decode(),
    "truncated by one digit": lambda a, b, body: signed(a, body)[:-1],
    "one digit too many": lambda a, b, body: signed(a, body) + "0",
    "one digit changed": lambda a, b, body: signed(a, body)[:-1] + ("0" if signed(a, body)[-1] != "0" else "1"),
    "without the app key": lambda a, b, body: _hmac(a.app_secret, body).hexdigest(),
    "app key after the body": lambda a, b, body: _hmac(a.app_secret, body + a.app_key.encode()).hexdigest(),
    "key and message swapped": lambda a, b, body: hmac.new(
        a.app_key.encode() + body, a.app_secret.encode(), hashlib.sha256
    ).hexdigest(),
    "HMAC-SHA1": lambda a, b, body: _hmac(a.app_secret, a.app_key.encode() + body, hashlib.sha1).hexdigest(),
    "plain SHA-256, no key": lambda a, b, body: hashlib.sha256(a.app_key.encode() + body).hexdigest(),
    "the app secret itself": lambda a, b, body: a.app_secret,
    "zeros": lambda a, b, body: "0" * 64,
}


def _post(client, body: bytes, signature: str | None):
    headers = {} if signature is None else {"HTTP_AUTHORIZATION": signature}
    return client.generic("POST", WEBHOOK_URL, data=body, content_type="application/json", **headers)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_forged_signature_is_401_and_stores_nothing(client, shops, forgery):
    shop_a, shop_b = shops
    body = encode(order_document(shop_a, order_id="SIG-1", items=[("P-1", 2)]))
    before = database_snapshot()

    response = _post(client, body, FORGERIES[forgery](shop_a, shop_b, body))

    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_signature"
    assert database_snapshot() == before
    assert signed(shop_a, body) not in response.content.decode()
    # The genuine signature still works, so the refusal above was the signature's doing.
    assert _post(client, body, signed(shop_a, body)).json()["status"] == "processed"


def test_missing_header_is_401(client, shops):
    shop_a, _ = shops
    body = encode(order_document(shop_a, order_id="SIG-2", items=[("P-1", 1)]))

    response = _post(client, body, None)

    assert response.status_code == 401
    assert not WebhookEvent.objects.exists()


def test_a_body_moved_to_another_shop_keeps_its_old_signature_and_is_refused(client, shops):
    """A delivery genuinely signed for shop B, edited to name shop A: refused, since only B's key signed it."""
    shop_a, shop_b = shops
    original = encode(order_document(shop_b, order_id="SIG-3", items=[("P-1", 1)]))
    moved = original.replace(shop_b.shop_id.encode(), shop_a.shop_id.encode())

    response = _post(client, moved, signed(shop_b, original))

    assert response.status_code == 401
    assert not Order.objects.exists()


def test_a_signed_body_with_one_byte_changed_is_refused(client, shops):
    shop_a, _ = shops
    body = encode(order_document(shop_a, order_id="SIG-4", items=[("P-1", 1)]))
    signature = signed(shop_a, body)

    tampered = [_post(client, body.replace(b'"quantity": 1', b'"quantity": 9'), signature),
                _post(client, body + b" ", signature),
                _post(client, b" " + body, signature)]

    assert [response.status_code for response in tampered] == [401, 401, 401]
    assert not WebhookEvent.objects.exists()
