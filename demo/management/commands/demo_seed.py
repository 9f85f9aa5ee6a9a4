"""Seed a demo creator to look around with."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from demo.seed import demo_seed


class Command(BaseCommand):
    help = "Create a demo creator with warehouses, products, a shop connection and a day of orders."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when any creator exists already.")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="creatorflow-demo")

    def handle(self, *args, **options):
        if options["if_empty"] and get_user_model().objects.exists():
            self.stdout.write("Database already has creators; demo seed skipped.")
            return
        login = demo_seed(username=options["username"], password=options["password"])
        self.stdout.write(self.style.SUCCESS("Demo creator ready."))
        self.stdout.write(f"  Log in at http://127.0.0.1:8000/ as {login.username} / {login.password}")
        self.stdout.write(f"  Shop id {login.shop_id}, webhook app key {login.app_key}, app secret {login.app_secret}")
        self.stdout.write(
            f"  Watch a LIVE sale: python manage.py simulate_flash_sale --url http://127.0.0.1:8000/webhooks/tiktok/ "
            f"--shop-id {login.shop_id} --orders 300 --rate 10"
        )
