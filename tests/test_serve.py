"""`make serve`, the production server, starts as the README says and answers with its workers."""

import asyncio
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.browser.servers import free_port

pytestmark = pytest.mark.timeout(180)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _post(url: str, body: bytes, headers: dict) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


async def _websocket_close_code(port: int, *, origin: str) -> int:
    async with connect(f"ws://127.0.0.1:{port}/ws/dashboard/", origin=origin, open_timeout=10) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), timeout=10)
    return closed.value.rcvd.code


def test_make_serve_runs_the_production_server_with_a_worker_per_core(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "creatorflow.settings",
        "DEBUG": "0",
        "SECRET_KEY": "serve-smoke-test-" + "k" * 40,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": "",  # the embedded default, in a scratch file
        "REDIS_URL": "",
        "SQLITE_PATH": str(tmp_path / "serve.sqlite3"),
    }
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(["make", "--no-print-directory", "serve", f"PORT={port}", "WORKERS=2"],
                              cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                status, body = _get(f"http://127.0.0.1:{port}/healthz")
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert server.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "make serve did not answer within 120 s"
                time.sleep(0.3)
        assert status == 200 and json.loads(body)["status"] == "ok"
        assert _get(f"http://127.0.0.1:{port}/accounts/login/")[0] == 200
        # Static files come from the same server in production (no collectstatic needed).
        assert _get(f"http://127.0.0.1:{port}/static/css/creatorflow.css")[0] == 200
        # The webhook answers through the full stack: an unknown shop is refused, and said so.
        status, body = _post(f"http://127.0.0.1:{port}/webhooks/tiktok/",
                             json.dumps({"type": "ORDER_STATUS_CHANGE", "shop_id": "nobody", "timestamp": 1,
                                         "data": {"order_id": "X", "status": "AWAITING_SHIPMENT"}}).encode(),
                             {"Content-Type": "application/json", "Authorization": "0" * 64})
        assert (status, json.loads(body)["error"]) == (404, "unknown_shop")
        # The dashboard's websocket through the production server's websocket protocol: a socket
        # without a session is accepted and then closed with 4401; one from another site is refused.
        assert asyncio.run(_websocket_close_code(port, origin=f"http://127.0.0.1:{port}")) == 4401
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(_websocket_close_code(port, origin="https://elsewhere.example"))
        assert refused.value.response.status_code == 403
        workers = subprocess.run(["pgrep", "-g", str(server.pid), "-f", "spawn_main"],
                                 capture_output=True, text=True).stdout.split()
        assert len(workers) == 2, workers
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
