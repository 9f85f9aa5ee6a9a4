"""Derived data only: a new creator starts with every dashboard metric stored, at zero.

Everything else that changes a dashboard is marked by the service that changes it
(``creatorflow.changes``); this is the one change no service of CreatorFlow makes.
"""

from django.contrib.auth import get_user_model
from django.db.models.signals import post_save

from creatorflow.changes import TOPICS, changes_mark


def _creator_saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        changes_mark(instance.pk, *TOPICS)


def connect() -> None:
    post_save.connect(_creator_saved, sender=get_user_model(), dispatch_uid="realtime.Creator.save")
