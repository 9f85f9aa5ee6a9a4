"""Release unpaid reservations past their expiry. Idempotent; safe to run every minute."""

from django.core.management.base import BaseCommand

from orders.services import reservations_expire


class Command(BaseCommand):
    help = "Release expired reservations of unpaid orders and flag those orders (safe to run concurrently)."

    def handle(self, *args, **options):
        released = reservations_expire()
        self.stdout.write(f"Released {released} expired reservation(s).")
