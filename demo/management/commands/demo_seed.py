"""Seed a demo creator to look around with."""

import os
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.seed import demo_seed


class Command(BaseCommand):
    help = "Create a demo creator with warehouses, products, a shop connection and a day of orders."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any creator exists already.")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="creatorflow-demo")
        parser.add_argument(
            "--server-url", default="http://127.0.0.1:8000", help="Where the server listens, for the hints printed."
        )

    def handle(self, *args, **options):
        if options["if_empty"] and get_user_model().objects.exists():
            self.stdout.write("Database already has creators; demo seed skipped.")
            return
        login = demo_seed(username=options["username"], password=options["password"])
        server = options["server_url"].rstrip("/")
        # The interpreter running this command (.venv/bin/python under make run), so the hint runs as printed.
        python = os.path.relpath(sys.executable) if not os.path.relpath(sys.executable).startswith("..") else sys.executable
        self.stdout.write(self.style.SUCCESS("Demo creator ready."))
        self.stdout.write(f"  Log in at {server}/ as {login.username} / {login.password}")
        self.stdout.write(f"  Shop id {login.shop_id} (its webhook app secret stays in the database and the admin)")
        self.stdout.write(
            f"  Watch a LIVE sale, in a second terminal: {python} manage.py simulate_flash_sale "
            f"--url {server}/webhooks/tiktok/ --shop-id {login.shop_id} --orders 300 --rate 10"
        )
