"""Small database helpers shared by the apps."""

from django.db import connection, models


def upsert_increment(model: type[models.Model], *, keys: dict, increments: dict) -> None:
    """Add ``increments`` to the row identified by ``keys``, creating it when missing.

    One ``INSERT ... ON CONFLICT DO UPDATE`` statement (PostgreSQL and SQLite speak the same
    dialect here), so concurrent writers never race between a read and a write.
    """
    meta = model._meta
    quote = connection.ops.quote_name
    fields = {name: meta.get_field(name) for name in [*keys, *increments]}
    columns = [fields[name].column for name in fields]
    values = [fields[name].get_db_prep_value(value, connection) for name, value in {**keys, **increments}.items()]
    table = quote(meta.db_table)
    assignments = ", ".join(
        f"{quote(fields[name].column)} = {table}.{quote(fields[name].column)} + EXCLUDED.{quote(fields[name].column)}"
        for name in increments
    )
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))}) "
        f"ON CONFLICT ({', '.join(quote(fields[name].column) for name in keys)}) DO UPDATE SET {assignments}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
