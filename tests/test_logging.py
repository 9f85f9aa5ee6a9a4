"""What the development server (make run) writes: one line per request."""

import socket
import time
import urllib.error
import urllib.request

from tests.cli import manage  # noqa: F401 - fixture


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_make_run_server_logs_each_request_once(manage):
    port = _free_port()
    server = manage.start("runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
                time.sleep(0.2)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=5)
        except urllib.error.HTTPError as error:
            assert error.code == 404
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)

    lines = output.splitlines()
    assert sum("GET /healthz 200" in line for line in lines) == 1, output
    assert sum("GET /no-such-page/ 404" in line for line in lines) == 1, output
