"""What the development server (make run) writes: one line per request."""

import urllib.error
import urllib.request

from tests.cli import free_port, manage, wait_until_answering  # noqa: F401 - manage is a fixture


def test_make_run_server_logs_each_request_once(manage):
    port = free_port()
    server = manage.start("runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/healthz", server)
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
