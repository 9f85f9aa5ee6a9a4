"""What make run prints (demo_seed's hints) runs exactly as printed, and prints no secret."""

import shlex
import subprocess

from tests.cli import PROJECT, free_port, manage, wait_until_answering  # noqa: F401 - manage is a fixture


def test_the_flash_sale_command_make_run_prints_runs_as_printed(manage):
    port = free_port()
    seeded = manage("demo_seed", "--if-empty", "--server-url", f"http://127.0.0.1:{port}", check=True)
    assert "demo-app-secret" not in seeded.stdout
    hint = next(line for line in seeded.stdout.splitlines() if "simulate_flash_sale" in line)
    argv = shlex.split(hint.split(": ", 1)[1])
    assert argv[:2] == [".venv/bin/python", "manage.py"] or (PROJECT / argv[0]).exists()

    server = manage.start("runserver", "--noreload", f"127.0.0.1:{port}")
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/healthz", server)
        # As printed, but a short sale: 300 orders at 10/s would take half a minute.
        argv[argv.index("--orders") + 1], argv[argv.index("--rate") + 1] = "5", "50"
        sale = subprocess.run(argv, cwd=PROJECT, env=manage.env, capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.communicate(timeout=20)

    assert sale.returncode == 0, sale.stderr
    assert sale.stdout.startswith("sent 5, 2xx 5, errors 0")
