"""A server process leaves what loading the application allocated out of full garbage collections."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import gc, json
import creatorflow.asgi as asgi
after_load = set(map(id, gc.get_objects()))
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "router_collected": id(asgi.router) in after_load,
    "handler_collected": id(asgi.deliveries_asgi_app) in after_load,
    "young_after_load": len(after_load),
}))
"""


def test_loading_the_asgi_application_freezes_what_it_allocated():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "creatorflow.settings", "DEBUG": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    # The router, the webhooks' handler and the rest of the loaded application are frozen: a full
    # collection no longer goes through them. Without the freeze they are among its objects.
    assert probe["router_collected"] is False
    assert probe["handler_collected"] is False
    assert probe["frozen"] > 50_000, probe
    assert probe["young_after_load"] < probe["frozen"] // 10, probe
