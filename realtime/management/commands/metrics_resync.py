"""Recompute every dashboard metric from source rows and report what had drifted."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from orders.management.progress import Progress
from realtime.services import metrics_resync


class Command(BaseCommand):
    help = "Recompute metrics (and their rollups) from orders, stock and alerts; report any drift fixed."

    def add_arguments(self, parser):
        parser.add_argument("--creator", metavar="USERNAME", help="Only this creator.")

    def handle(self, *args, **options):
        creators = get_user_model().objects.order_by("pk")
        if options["creator"]:
            creators = creators.filter(username=options["creator"])
            if not creators.exists():
                raise CommandError(f"No creator named {options['creator']!r}.")
        creators = list(creators.values_list("pk", "username"))
        reports = []
        with Progress(self.stderr, total=len(creators), unit="creator", description="metrics") as progress:
            for done, (creator_id, username) in enumerate(creators, start=1):
                reports.append((username, metrics_resync(creator_id=creator_id)))
                progress.update(done)
        drifted = 0
        for username, drifts in reports:
            if not drifts:
                self.stdout.write(f"{username}: all metrics matched")
                continue
            drifted += 1
            for drift in drifts:
                self.stdout.write(f"{username}: {drift.metric} was {drift.stored!r}, fixed to {drift.actual!r}")
        self.stdout.write(
            self.style.SUCCESS(f"Resynced {len(reports)} creator(s); {drifted} had drift, now fixed.")
        )
