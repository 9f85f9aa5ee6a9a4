"""Move the order rollups to the orders app and system health to the creatorflow app.

The tables are renamed, never copied: every row stays where it is. The receiving apps take the
models into their state in their own migrations (orders 0002, creatorflow 0001).
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("realtime", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.AlterModelTable(name="orderstatsbucket", table="orders_orderstatsbucket"),
                migrations.AlterModelTable(name="ordertotals", table="orders_ordertotals"),
                migrations.AlterModelTable(name="systemhealth", table="creatorflow_systemhealth"),
            ],
            state_operations=[
                migrations.DeleteModel(name="OrderStatsBucket"),
                migrations.DeleteModel(name="OrderTotals"),
                migrations.DeleteModel(name="SystemHealth"),
            ],
        ),
    ]
