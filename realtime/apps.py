from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"
    verbose_name = "Realtime dashboard"

    def ready(self) -> None:
        from creatorflow.changes import changes_listen

        from . import publisher, signals

        changes_listen(publisher.changes_published)
        signals.connect()
