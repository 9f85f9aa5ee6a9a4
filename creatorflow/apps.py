from django.apps import AppConfig


class CreatorflowConfig(AppConfig):
    """The project's own low layer: change marks, database helpers and system health."""

    name = "creatorflow"
    verbose_name = "CreatorFlow"
