"""Real daphne server processes for the browser and multi-process tests, on the test database."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

STARTUP_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 15


def free_port() -> int:
    """Ask the kernel for a free port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_database_environment() -> dict[str, str]:
    """Environment that points a server process at the database this test run set up."""
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        name = str(database["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            raise RuntimeError("server processes need the SQLite test database on disk (see tests/browser/conftest.py)")
        return {"SQLITE_PATH": name, "DATABASE_URL": ""}
    credentials = quote(database["USER"] or "", safe="")
    if database.get("PASSWORD"):
        credentials += ":" + quote(database["PASSWORD"], safe="")
    host = database["HOST"] or "127.0.0.1"
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return {"DATABASE_URL": f"postgres://{credentials}@{host}{port}/{database['NAME']}"}


class DaphneServer:
    """One ``daphne creatorflow.asgi:application`` process that can be stopped and started again."""

    def __init__(self, *, port: int | None = None, extra_env: dict[str, str] | None = None, name: str = "daphne"):
        self.port = port or free_port()
        self.name = name
        self.env = {
            **os.environ,
            # The test run's own settings (no background timers, the same password hasher).
            "DJANGO_SETTINGS_MODULE": os.environ.get("DJANGO_SETTINGS_MODULE", "creatorflow.settings"),
            "DEBUG": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            **test_database_environment(),
            **(extra_env or {}),
        }
        self.log_path = Path(tempfile.mkdtemp(prefix="creatorflow-daphne-")) / f"{name}.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "DaphneServer":
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "creatorflow.asgi:application"],
            cwd=settings.BASE_DIR,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)  # polling the port while the process boots
        self.stop()
        raise RuntimeError(f"{self.name} did not answer /healthz within {STARTUP_DEADLINE_SECONDS}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=STOP_DEADLINE_SECONDS)

    def memory_rss_kib(self) -> int | None:
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except (OSError, AttributeError):
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "(no log)"
