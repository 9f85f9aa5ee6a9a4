"""Take the order rollups over from the realtime app: same tables (renamed there), same rows."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _content_types_follow(apps, schema_editor, *, source: str, target: str, models_: tuple[str, ...]) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    for model in models_:
        if not ContentType.objects.filter(app_label=target, model=model).exists():
            ContentType.objects.filter(app_label=source, model=model).update(app_label=target)


def forwards(apps, schema_editor):
    _content_types_follow(apps, schema_editor, source="realtime", target="orders", models_=("orderstatsbucket", "ordertotals"))


def backwards(apps, schema_editor):
    _content_types_follow(apps, schema_editor, source="orders", target="realtime", models_=("orderstatsbucket", "ordertotals"))


class Migration(migrations.Migration):

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("orders", "0001_initial"),
        ("realtime", "0002_move_rollups_and_health"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="OrderTotals",
                    fields=[
                        (
                            "creator",
                            models.OneToOneField(
                                on_delete=django.db.models.deletion.CASCADE,
                                primary_key=True,
                                related_name="order_totals",
                                serialize=False,
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        ("orders_count", models.BigIntegerField(default=0)),
                        ("completed_revenue", models.DecimalField(decimal_places=2, default=0, max_digits=16)),
                    ],
                ),
                migrations.CreateModel(
                    name="OrderStatsBucket",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("start", models.DateTimeField()),
                        ("placed_count", models.IntegerField(default=0)),
                        ("shipped_count", models.IntegerField(default=0)),
                        ("processing_seconds", models.BigIntegerField(default=0, help_text="Σ placement → first shipment.")),
                        (
                            "creator",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE, related_name="+", to=settings.AUTH_USER_MODEL
                            ),
                        ),
                    ],
                    options={
                        "constraints": [models.UniqueConstraint(fields=("creator", "start"), name="order_bucket_unique")],
                    },
                ),
            ],
        ),
        migrations.RunPython(forwards, backwards),
    ]
