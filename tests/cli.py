"""Run manage.py as an operator would: a separate process on its own SQLite file, exit code and output."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent


class Manage:
    """``manage(*args)`` runs one command in a fresh process and returns the CompletedProcess."""

    def __init__(self, database: Path):
        self.env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(SQLITE_PATH=str(database), LOG_LEVEL="DEBUG", PYTHONUNBUFFERED="1")
        self("migrate", "--noinput", "-v", "0", check=True)

    def __call__(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess:
        finished = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and finished.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} exited {finished.returncode}: {finished.stderr}")
        return finished

    def start(self, *args: str) -> subprocess.Popen:
        """Start a long-running command (a server); its stdout and stderr come out merged, as text."""
        return subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=PROJECT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )


def free_port() -> int:
    """Return a local TCP port nothing listens on (for a server to start on, or to find nobody)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_answering(url: str, server: subprocess.Popen, *, within: float = 30) -> None:
    """Poll ``url`` until the started ``server`` answers it; fail if it exits or takes too long."""
    deadline = time.monotonic() + within
    while True:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except (urllib.error.URLError, ConnectionError):
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            time.sleep(0.2)


@pytest.fixture
def manage(tmp_path) -> Manage:
    """A migrated SQLite database of its own, and a way to run commands on it in a subprocess."""
    return Manage(tmp_path / "cli.sqlite3")
