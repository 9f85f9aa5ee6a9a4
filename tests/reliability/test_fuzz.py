"""Property-based fuzz of POST /webhooks/tiktok/: never a 5xx, never a traceback, never a partial write.

Every example is one delivery through Django's full request stack. A delivery the webhook refuses
(4xx) must leave every CreatorFlow table exactly as it was; one it accepts (2xx) must be stored
in the inbox and leave stock equal to its ledger. Signed and unsigned bodies are mixed, so the
parser is attacked both before and after signature verification.
"""

import json
import string

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from orders.models import WebhookEvent
from tests.fake_tiktok import FakeTikTokShop

from .conftest import (
    WEBHOOK_URL,
    database_snapshot,
    encode,
    figure,
    fuzz_settings,
    inventory_document,
    order_document,
    signed,
    stock_ledger_mismatches,
    tiktok_document,
)

pytestmark = pytest.mark.django_db

REFUSALS = {400, 401, 404, 413}
SECRET_A, SECRET_B = "fuzz-secret-of-shop-a-7f3e", "fuzz-secret-of-shop-b-91c2"
FORBIDDEN_IN_ANSWERS = ("Traceback", 'File "', SECRET_A, SECRET_B, "django.db", "psycopg", "sqlite3")

# --- strategies ------------------------------------------------------------------------------

huge_numbers = st.sampled_from([2**63, -(2**63) - 1, 10**30, 1e308, -1e308, 1e-320, 4_102_444_800, 999_999_999])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | huge_numbers
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=80)
    | st.sampled_from(["", " ", "ORDER_STATUS_CHANGE", "INVENTORY_UPDATE", "CANCEL", "COMPLETED", "shop-a", "P-1",
                      "\u0000", "\ud7ff\ue000", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "x" * 300, "1e999", "-0", "NaN"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
content_types = st.sampled_from([
    "application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=fuzz", "application/octet-stream", "application/json; charset=latin-1", "",
])
signature_kinds = st.sampled_from(["valid", "valid", "valid", "missing", "empty", "random", "other-shop", "upper"])


def valid_documents(shop):
    """A valid delivery of each kind the webhook accepts, with random but sane contents."""
    ids = st.text(alphabet=string.ascii_letters + string.digits + "-", min_size=1, max_size=20)
    order = st.builds(
        lambda order_id, status, items: order_document(shop, order_id=f"F-{order_id}", status=status, items=items),
        ids,
        st.sampled_from(["UNPAID", "AWAITING_SHIPMENT", "IN_TRANSIT", "COMPLETED", "CANCELLED", "CANCEL"]),
        st.lists(st.tuples(st.sampled_from(["P-1", "P-2", "P-NEW"]), st.integers(1, 40)), min_size=1, max_size=3),
    )
    inventory = st.builds(
        lambda product_id, quantity: inventory_document(shop, product_id=product_id, quantity=quantity),
        st.sampled_from(["P-1", "P-2", "P-3"]),
        st.integers(0, 500),
    )
    notice = st.builds(
        lambda note, order_id: tiktok_document(shop, notification_id=f"N-{note}", order_id=f"T-{order_id}"),
        ids,
        ids,
    )
    return st.one_of(order, inventory, notice)


@st.composite
def mutated(draw, documents):
    """A valid document with up to three fields replaced, removed, retyped or added, anywhere."""
    document = json.loads(json.dumps(draw(documents)))
    for _ in range(draw(st.integers(0, 3))):
        # Walk down to a random container, then change one of its entries.
        container = document
        while True:
            children = [key for key, value in _entries(container) if isinstance(value, dict | list) and value]
            if not children or draw(st.booleans()):
                break
            container = container[draw(st.sampled_from(children))]
        keys = [key for key, _ in _entries(container)]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "wrap"]))
        if action == "add" or not keys:
            if isinstance(container, dict):
                container[draw(st.text(max_size=12))] = draw(json_values)
            else:
                container.append(draw(json_values))
            continue
        key = draw(st.sampled_from(keys))
        if action == "replace":
            container[key] = draw(json_values)
        elif action == "delete":
            del container[key]
        else:
            container[key] = [container[key]]
    return document


def _entries(container):
    return list(container.items()) if isinstance(container, dict) else list(enumerate(container))


@st.composite
def text_mutations(draw, documents):
    """Serialised valid deliveries broken at the byte level: truncated, spliced, nested, re-encoded."""
    raw = encode(draw(documents))
    action = draw(st.sampled_from(["truncate", "insert", "flip", "nest", "digits", "encoding", "bom", "duplicate-key"]))
    if action == "truncate":
        return raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
    if action == "insert":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if action == "flip":
        at = draw(st.integers(0, len(raw) - 1))
        return raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
    if action == "nest":
        # Deep nesting in the payload: the JSON parser's recursion limit must not become a 500.
        depth = draw(st.sampled_from([50, 1_000, 20_000]))
        bracket = draw(st.sampled_from(["[", '{"a":']))
        closing = "]" if bracket == "[" else "}"
        nested = (bracket * depth + "1" + closing * depth).encode()
        return raw.replace(b'"data": {', b'"deep": ' + nested + b', "data": {', 1) if draw(st.booleans()) else nested
    if action == "digits":
        return raw.replace(b'"timestamp": ', b'"timestamp": ' + b"9" * draw(st.sampled_from([20, 400, 5_000])), 1)
    if action == "encoding":
        return json.dumps(json.loads(raw)).encode(draw(st.sampled_from(["utf-16", "utf-32", "latin-1"])))
    if action == "bom":
        return b"\xef\xbb\xbf" + raw
    return raw[:-1] + b', "shop_id": "shop-b"}'


# --- the harness ---------------------------------------------------------------------------------


@pytest.fixture
def fake_tiktok():
    """TikTok's order-detail API on 127.0.0.1, for deliveries in TikTok's shape that get processed."""
    with FakeTikTokShop(app_key="key-a", app_secret=SECRET_A) as fake:
        yield fake


@pytest.fixture
def shops(make_creator, make_shop, make_product, fake_tiktok):
    creator_a, creator_b = make_creator("fuzz-a"), make_creator("fuzz-b")
    shop_a = make_shop(
        creator_a, shop_id="shop-a", app_key="key-a", app_secret=SECRET_A, access_token=fake_tiktok.access_token,
        shop_cipher=fake_tiktok.shop_cipher, api_base_url=fake_tiktok.base_url,
    )
    shop_b = make_shop(creator_b, shop_id="shop-b", app_key="key-b", app_secret=SECRET_B)
    make_product(creator_a, stock=200, reorder_point=20, external_id="P-1")
    make_product(creator_a, stock=5, reorder_point=2, external_id="P-2")
    return shop_a, shop_b


class Deliverer:
    """Posts one delivery and checks the answer and the database against the invariants."""

    def __init__(self, shop, other_shop):
        self.shop, self.other_shop = shop, other_shop
        self.client = Client(raise_request_exception=False)
        self.statuses: dict[int, int] = {}
        self.examples = 0

    def signature(self, kind: str, body: bytes) -> str | None:
        return {
            "valid": lambda: signed(self.shop, body),
            "missing": lambda: None,
            "empty": lambda: "",
            "random": lambda: "0123456789abcdef" * 4,
            "other-shop": lambda: signed(self.other_shop, body),
            "upper": lambda: signed(self.shop, body).upper(),
        }[kind]()

    def deliver(self, body: bytes, *, signature: str | None, content_type: str = "application/json"):
        self.examples += 1
        before = database_snapshot()
        headers = {} if signature is None else {"HTTP_AUTHORIZATION": signature}
        response = self.client.generic("POST", WEBHOOK_URL, data=body, content_type=content_type, **headers)
        status = response.status_code
        self.statuses[status] = self.statuses.get(status, 0) + 1
        text = response.content.decode("utf-8", "replace")
        assert status < 500, f"{status} for body {body[:300]!r}: {text[:500]}"
        assert not any(marker in text for marker in FORBIDDEN_IN_ANSWERS), text[:500]
        answer = response.json()  # every answer is JSON, refusals included
        if status in REFUSALS:
            assert answer["error"] and answer["detail"]
            assert database_snapshot() == before, f"a refused delivery ({status}) changed the database"
        else:
            assert status == 200, f"unexpected {status}: {text[:300]}"
            assert WebhookEvent.objects.filter(pk=answer["event_id"]).exists()
            # Accepted only when signed by the shop the body names (a duplicated key names the last one).
            assert signature is not None
            assert signature.strip() in {signed(self.shop, body), signed(self.other_shop, body)}
            assert not stock_ledger_mismatches()
        return status


# --- the properties ----------------------------------------------------------------------------------


def test_fuzz_arbitrary_bytes_are_refused_without_a_trace(shops):
    """Random bytes, signed or not, in any content type: always refused, nothing written."""
    deliverer = Deliverer(*shops)

    @fuzz_settings()
    @given(body=st.binary(max_size=2_000), kind=signature_kinds, content_type=content_types)
    def check(body, kind, content_type):
        status = deliverer.deliver(body, signature=deliverer.signature(kind, body), content_type=content_type)
        assert status in REFUSALS

    check()
    figure("fuzz arbitrary bytes are refused without a trace", examples=deliverer.examples, deliveries=sum(deliverer.statuses.values()),
           statuses=dict(sorted(deliverer.statuses.items())), server_errors=0)
    assert sum(deliverer.statuses.values()) >= fuzz_settings().max_examples * 0.9


def test_fuzz_arbitrary_json_documents(shops):
    """Any JSON value, often naming the real shop and correctly signed: refused or stored, never half."""
    deliverer = Deliverer(*shops)
    envelope_fields = st.fixed_dictionaries(
        {"shop_id": st.sampled_from(["shop-a", "shop-a", "shop-b", "no-such-shop"]) | json_scalars},
        optional={
            "type": st.sampled_from(["ORDER_STATUS_CHANGE", "INVENTORY_UPDATE", 1, 2, "SOMETHING"]) | json_values,
            "timestamp": st.integers(1_600_000_000, 1_900_000_000) | json_scalars,
            "tts_notification_id": json_scalars,
            "data": json_values,
        },
    )

    @fuzz_settings()
    @given(document=json_values | envelope_fields, kind=signature_kinds)
    def check(document, kind):
        body = json.dumps(document).encode()
        deliverer.deliver(body, signature=deliverer.signature(kind, body))

    check()
    figure("fuzz arbitrary json documents", examples=deliverer.examples, deliveries=sum(deliverer.statuses.values()),
           statuses=dict(sorted(deliverer.statuses.items())), server_errors=0)
    assert deliverer.statuses.get(400) and deliverer.statuses.get(401)


def test_fuzz_mutated_valid_deliveries(shops):
    """Valid deliveries of every shape with fields replaced, removed, retyped or added, then signed."""
    deliverer = Deliverer(*shops)
    documents = valid_documents(deliverer.shop)

    @fuzz_settings()
    @given(document=mutated(documents), kind=signature_kinds)
    def check(document, kind):
        body = json.dumps(document).encode()
        deliverer.deliver(body, signature=deliverer.signature(kind, body))

    check()
    figure("fuzz mutated valid deliveries", examples=deliverer.examples, deliveries=sum(deliverer.statuses.values()),
           statuses=dict(sorted(deliverer.statuses.items())), server_errors=0)
    assert deliverer.statuses.get(400) and deliverer.statuses.get(200), deliverer.statuses


def test_fuzz_broken_serialisations(shops):
    """Truncated, spliced, deeply nested, huge-number and re-encoded bodies: refused, nothing written."""
    deliverer = Deliverer(*shops)
    documents = valid_documents(deliverer.shop)

    @fuzz_settings()
    @given(body=text_mutations(documents), kind=signature_kinds, content_type=content_types)
    def check(body, kind, content_type):
        deliverer.deliver(body, signature=deliverer.signature(kind, body), content_type=content_type)

    check()
    figure("fuzz broken serialisations", examples=deliverer.examples, deliveries=sum(deliverer.statuses.values()),
           statuses=dict(sorted(deliverer.statuses.items())), server_errors=0)
    assert deliverer.statuses.get(400), deliverer.statuses


def test_fuzz_valid_deliveries_in_any_order_keep_stock_equal_to_its_ledger(shops):
    """Well-formed, signed deliveries in random mixes: every one is accepted and stock stays conserved."""
    deliverer = Deliverer(*shops)
    batches: list[int] = []
    documents = valid_documents(deliverer.shop)

    # A third of the examples, each a batch of deliveries.
    @fuzz_settings(max_examples=fuzz_settings().max_examples // 3)
    @given(batch=st.lists(documents, min_size=1, max_size=4))
    def check(batch):
        batches.append(len(batch))
        for document in batch:
            body = encode(document)
            assert deliverer.deliver(body, signature=signed(deliverer.shop, body)) == 200

    check()
    figure("fuzz valid deliveries in any order keep stock equal to its ledger", examples=len(batches), deliveries=sum(deliverer.statuses.values()),
           statuses=dict(sorted(deliverer.statuses.items())), server_errors=0)
    assert deliverer.statuses.get(200), deliverer.statuses


NUL_PLACES = {
    "shop_id": lambda document: document.update(shop_id="shop-a\u0000"),
    "type": lambda document: document.update(type="ORDER\u0000"),
    "order_id": lambda document: document["data"].update(order_id="F-\u0000"),
    "status": lambda document: document["data"].update(status="UNPAID\u0000"),
    "product_id": lambda document: document["data"]["items"][0].update(product_id="P-1\u0000"),
    "currency": lambda document: document["data"].update(currency="U\u0000D"),
}


@pytest.mark.parametrize("place", NUL_PLACES)
def test_nul_characters_anywhere_are_never_a_server_error(shops, place):
    """PostgreSQL text cannot hold NUL; an escaped \\u0000 in any field must still get a 4xx or a 200."""
    deliverer = Deliverer(*shops)
    document = order_document(deliverer.shop, order_id="F-NUL", items=[("P-1", 1)])
    NUL_PLACES[place](document)
    body = encode(document)

    status = deliverer.deliver(body, signature=signed(deliverer.shop, body))

    assert status in REFUSALS | {200}
