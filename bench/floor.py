"""The floor the ingest benchmark compares with: a bare Django view doing a webhook's minimum.

It checks the same HMAC signature, then runs three SQL statements, each committed: store the
body in an inbox table, upsert the order, move the stock of its first line. No validation, no
ledger, no rollups, no alerts, no dashboards: what the framework and the database cost alone,
served by the same server and process count as CreatorFlow in the same run.
"""

import hashlib
import hmac
import json

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

APP_KEY, APP_SECRET = b"bench-app-key", b"bench-app-secret"

FLOOR_TABLES = """
CREATE TABLE IF NOT EXISTS bench_floor_inbox (id bigserial PRIMARY KEY, body text NOT NULL,
                                              received_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_floor_order (external_id text PRIMARY KEY, total numeric(14, 2) NOT NULL);
CREATE TABLE IF NOT EXISTS bench_floor_stock (sku text PRIMARY KEY, reserved bigint NOT NULL DEFAULT 0);
INSERT INTO bench_floor_stock (sku) SELECT 'HOT-' || n FROM generate_series(0, 4) AS n ON CONFLICT DO NOTHING;
"""


@csrf_exempt
def floor_webhook(request: HttpRequest) -> JsonResponse:
    body = request.body
    expected = hmac.new(APP_SECRET, APP_KEY + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("Authorization", "")):
        return JsonResponse({"error": "invalid_signature"}, status=401)
    data = json.loads(body)["data"]
    line = data["items"][0]
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_floor_inbox (body) VALUES (%s)", [body.decode()])
        cursor.execute(
            "INSERT INTO bench_floor_order (external_id, total) VALUES (%s, %s) "
            "ON CONFLICT (external_id) DO UPDATE SET total = EXCLUDED.total",
            [data["order_id"], data["total_amount"]],
        )
        cursor.execute("UPDATE bench_floor_stock SET reserved = reserved + %s WHERE sku = %s", [line["quantity"], line["product_id"]])
    return JsonResponse({"status": "processed"})
