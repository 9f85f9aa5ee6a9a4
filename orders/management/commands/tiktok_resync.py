"""Pull a shop's products, stock and orders from the TikTok Shop API."""

from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from orders.management.progress import Progress
from orders.models import ShopConnection
from orders.resync import ResyncError, tiktok_resync


def _since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise CommandError(f"--since must be a date or time like 2026-11-01 or 2026-11-01T08:00, got {value!r}.") from error
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Reconcile a shop's products, stock and orders with the TikTok Shop API (safe to repeat)."

    def add_arguments(self, parser):
        parser.add_argument("--shop-id", required=True)
        parser.add_argument("--since", help="Only what TikTok updated since this date/time (UTC unless given).")

    def handle(self, *args, **options):
        shop = ShopConnection.objects.filter(shop_id=options["shop_id"]).select_related("creator").first()
        if shop is None:
            raise CommandError(f"No shop {options['shop_id']!r}; connect it first with shop_connect.")
        since = _since(options["since"]) if options["since"] else None
        try:
            with Progress(self.stderr, unit="row", description="resync") as progress:
                operation = tiktok_resync(shop=shop, since=since, progress=progress.update)
        except ResyncError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            self.style.SUCCESS(
                f"Resynced shop {shop.shop_id}: {operation.processed_count} of {operation.entity_count or 0} "
                f"products and orders reconciled, {operation.error_count} error(s)."
            )
        )
        if operation.error_count:
            raise CommandError(
                f"{operation.error_count} of {operation.processed_count + operation.error_count} products and orders "
                f"failed to reconcile; last error: {operation.last_error}"
            )
