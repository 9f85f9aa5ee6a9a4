"""Record how a part of the system is doing; the dashboard shows the worst latest status."""

from django.contrib.auth import get_user_model

from .changes import SYSTEM, changes_mark
from .models import SystemHealth


def health_record(
    *, component: str, status: str, error_message: str = "", metrics: dict | None = None, creator_id: int | None = None
) -> SystemHealth:
    """Write a SystemHealth measurement and mark the dashboards it concerns as changed.

    A creator's record concerns that creator. A process-wide one (database, channel layer, a
    server's monitor) concerns every creator, but only when it changes that component's status
    (a component's first record changes it only when it is not nominal): the monitor reports
    every 30 s.
    """
    previous = None
    if creator_id is None:
        previous = (
            SystemHealth.objects.filter(component=component, creator__isnull=True)
            .order_by("-pk")
            .values_list("status", flat=True)
            .first()
        )
    record = SystemHealth.objects.create(
        component=component,
        status=status,
        error_message=error_message[:2000],
        metrics=metrics or {},
        creator_id=creator_id,
    )
    if creator_id is not None:
        changes_mark(creator_id, SYSTEM)
    elif (previous or SystemHealth.Status.NOMINAL) != record.status:
        # A component never heard of counted as nominal: a new server process's first report
        # changes no dashboard, and must not make every creator publish at once.
        for each_creator_id in get_user_model().objects.values_list("pk", flat=True):
            changes_mark(each_creator_id, SYSTEM)
    return record
