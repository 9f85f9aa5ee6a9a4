"""Create or update a creator and their TikTok shop connection."""

from argparse import BooleanOptionalAction

from django.core.management.base import BaseCommand, CommandError

from orders.events import OrderError
from orders.shops import shop_connect


class Command(BaseCommand):
    help = "Create or update a creator and their shop connection (the keys that sign its webhooks)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--shop-id", required=True)
        parser.add_argument("--app-key", required=True)
        parser.add_argument("--app-secret", required=True)
        parser.add_argument("--password", help="Set the creator's login password.")
        parser.add_argument("--timezone", help="The creator's time zone, e.g. Europe/Berlin (for 'today').")
        parser.add_argument("--api-base-url", help="TikTok Shop API base URL used by tiktok_resync.")
        parser.add_argument("--access-token", help="TikTok Shop API access token used by tiktok_resync.")
        parser.add_argument(
            "--stock-write-back", action=BooleanOptionalAction, default=None,
            help="Set each product's available stock on TikTok after it changes (off unless given).",
        )
        parser.add_argument("--currency", help="The shop's currency (ISO 4217, e.g. USD), shown when an order carries none.")
        parser.add_argument(
            "--no-login", action="store_true", help="Create a new creator without a password (no login until one is set)."
        )

    def handle(self, *args, **options):
        try:
            shop, created = shop_connect(
                username=options["username"],
                shop_id=options["shop_id"],
                app_key=options["app_key"],
                app_secret=options["app_secret"],
                password=options["password"],
                timezone_name=options["timezone"],
                api_base_url=options["api_base_url"],
                access_token=options["access_token"],
                stock_write_back=options["stock_write_back"],
                currency=options["currency"],
                no_login=options["no_login"],
            )
        except OrderError as error:
            raise CommandError(str(error)) from error
        verb = "Connected" if created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} shop {shop.shop_id} for creator {shop.creator.username}."))
        self.stdout.write("Webhook URL: POST /webhooks/tiktok/ (signed with this shop's app secret).")
        if not shop.creator.has_usable_password():
            self.stdout.write(
                f"Creator {shop.creator.username} cannot log in yet; set a password with: "
                f".venv/bin/python manage.py changepassword {shop.creator.username}"
            )
