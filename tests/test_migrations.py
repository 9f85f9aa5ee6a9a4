from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from creatorflow.models import SystemHealth
from orders.models import OrderStatsBucket, OrderTotals


@pytest.mark.django_db
def test_models_and_migrations_agree():
    # Exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


# The schema before the order rollups moved to orders and system health to creatorflow.
BEFORE_THE_MOVE = [("realtime", "0001_initial"), ("orders", "0001_initial"), ("inventory", "0002_initial")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_rows_of_the_old_layout_survive_the_move_to_the_new_apps():
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    old = _migrate(BEFORE_THE_MOVE)
    try:
        creator = old.get_model("accounts", "Creator").objects.create(username="before-the-move", timezone="UTC")
        start = datetime(2026, 11, 1, 9, 45, tzinfo=UTC)
        old.get_model("realtime", "OrderStatsBucket").objects.create(
            creator_id=creator.pk, start=start, placed_count=7, shipped_count=3, processing_seconds=5400
        )
        old.get_model("realtime", "OrderTotals").objects.create(
            creator_id=creator.pk, orders_count=7, completed_revenue=Decimal("123.45")
        )
        health = old.get_model("realtime", "SystemHealth")
        health.objects.create(component="database", status="warning", metrics={"lag_ms": 40})
        health.objects.create(component="tiktok_webhook", status="critical", creator_id=creator.pk, error_message="boom")
    finally:
        _migrate(latest)

    bucket = OrderStatsBucket.objects.get(creator_id=creator.pk)
    assert (bucket.start, bucket.placed_count, bucket.shipped_count, bucket.processing_seconds) == (start, 7, 3, 5400)
    totals = OrderTotals.objects.get(creator_id=creator.pk)
    assert (totals.orders_count, totals.completed_revenue) == (7, Decimal("123.45"))
    records = {record.component: record for record in SystemHealth.objects.all()}
    assert (records["database"].status, records["database"].metrics) == ("warning", {"lag_ms": 40})
    assert (records["tiktok_webhook"].creator_id, records["tiktok_webhook"].error_message) == (creator.pk, "boom")
    # The moved tables keep working: new rows get fresh ids after the old ones.
    newer = SystemHealth.objects.create(component="database", status="nominal")
    assert newer.pk > max(record.pk for record in records.values())
