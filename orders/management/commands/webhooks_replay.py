"""Process stored webhook deliveries again; each event is applied at most once."""

from django.core.management.base import BaseCommand, CommandError

from orders.management.progress import Progress
from orders.models import WebhookEvent
from orders.inbox import webhooks_replay


class Command(BaseCommand):
    help = "Process stored webhook events again (all not yet applied, only failed ones, or one by id)."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="Only events whose processing failed.")
        parser.add_argument("--id", type=int, action="append", dest="ids", help="This event (repeatable).")

    def handle(self, *args, failed: bool, ids: list[int] | None, **options):
        if ids:
            missing = set(ids) - set(WebhookEvent.objects.filter(pk__in=ids).values_list("pk", flat=True))
            if missing:
                raise CommandError(f"No webhook event with id {', '.join(map(str, sorted(missing)))}.")
        with Progress(self.stderr, unit="event", description="replay") as progress:
            report = webhooks_replay(event_ids=ids, failed_only=failed, progress=progress.update)
        for event_id in report.failed:
            error = WebhookEvent.objects.values_list("error", flat=True).get(pk=event_id)
            self.stderr.write(f"event {event_id} failed again: {error}")
        self.stdout.write(
            f"{len(report.processed)} processed, {len(report.failed)} failed, "
            f"{len(report.skipped)} skipped (already processed or ignored)."
        )
        if report.failed:
            raise CommandError(f"{len(report.failed)} event(s) still fail; see the errors above.")
