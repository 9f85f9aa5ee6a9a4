from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"

    def ready(self) -> None:
        from creatorflow.changes import changes_listen

        from . import writeback

        changes_listen(writeback.stock_changed)
