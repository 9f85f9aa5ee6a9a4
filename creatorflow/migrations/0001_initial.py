"""System health moves here from the realtime app: same table (renamed there), same rows."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def _content_type_follows(apps, schema_editor, *, source: str, target: str) -> None:
    ContentType = apps.get_model("contenttypes", "ContentType")
    if not ContentType.objects.filter(app_label=target, model="systemhealth").exists():
        ContentType.objects.filter(app_label=source, model="systemhealth").update(app_label=target)


def forwards(apps, schema_editor):
    _content_type_follows(apps, schema_editor, source="realtime", target="creatorflow")


def backwards(apps, schema_editor):
    _content_type_follows(apps, schema_editor, source="creatorflow", target="realtime")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("realtime", "0002_move_rollups_and_health"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SystemHealth",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("component", models.CharField(max_length=64)),
                        (
                            "status",
                            models.CharField(
                                choices=[("nominal", "Nominal"), ("warning", "Warning"), ("critical", "Critical")],
                                max_length=16,
                            ),
                        ),
                        ("metrics", models.JSONField(blank=True, default=dict)),
                        ("error_message", models.TextField(blank=True)),
                        ("measured_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                        (
                            "creator",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="health_records",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "verbose_name_plural": "system health",
                        "ordering": ["-measured_at", "-pk"],
                        "indexes": [
                            models.Index(fields=["component", "-measured_at"], name="realtime_sy_compone_316a5c_idx")
                        ],
                    },
                ),
            ],
        ),
        # The index was named after its old table; give it a name of its own.
        migrations.RenameIndex(
            model_name="systemhealth", new_name="health_component_latest", old_name="realtime_sy_compone_316a5c_idx"
        ),
        migrations.RunPython(forwards, backwards),
    ]
