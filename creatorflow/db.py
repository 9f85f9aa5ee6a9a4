"""Small database helpers shared by the apps."""

from collections.abc import Sequence
from contextlib import nullcontext
from functools import cache
from typing import TypeVar

from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction

M = TypeVar("M", bound=models.Model)


def _database():
    """The default database's wrapper itself.

    The order path's helpers prepare every value with it: through the ``connection`` proxy, each of
    the field methods' many lookups of ``connection.ops`` would find the wrapper again.
    """
    return connections[DEFAULT_DB_ALIAS]


def upsert_increment(model: type[models.Model], *, keys: dict, increments: dict) -> None:
    """Add ``increments`` to the row identified by ``keys``, creating it when missing."""
    upsert_increments(
        model, key_fields=tuple(keys), increment_fields=tuple(increments), rows=[(tuple(keys.values()), tuple(increments.values()))]
    )


def upsert_increments(
    model: type[models.Model],
    *,
    key_fields: Sequence[str],
    increment_fields: Sequence[str],
    rows: Sequence[tuple[Sequence, Sequence]],
) -> None:
    """Add each row's increments to the row with its keys, creating the ones that are missing.

    One ``INSERT ... ON CONFLICT DO UPDATE`` statement for all the rows (PostgreSQL and SQLite
    speak the same dialect here), so concurrent writers never race between a read and a write.
    Keys must be distinct; rows go in the order given, so writers that sort their keys the same
    way take the rows' locks in the same order.
    """
    if not rows:
        return
    connection = _database()
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in (*key_fields, *increment_fields)]
    table = quote(meta.db_table)
    columns = ", ".join(quote(field.column) for field in fields)
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    values = [
        field.get_db_prep_value(value, connection)
        for keys, increments in rows
        for field, value in zip(fields, (*keys, *increments), strict=True)
    ]
    assignments = ", ".join(
        f"{quote(field.column)} = {table}.{quote(field.column)} + EXCLUDED.{quote(field.column)}"
        for field in fields[len(key_fields):]
    )
    conflict = ", ".join(quote(field.column) for field in fields[: len(key_fields)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {placeholders} ON CONFLICT ({conflict}) DO UPDATE SET {assignments}",
            values,
        )


def rows_update(objs: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write ``fields`` of ``objs`` (rows of one model) in one ``UPDATE ... FROM (VALUES ...)``.

    What Django's ``bulk_update`` does, without its CASE expression per row and field, whose
    compilation costs more than the writes themselves on the order path. The rows should be
    locked already (the services lock in primary-key order); elsewhere than PostgreSQL this is
    ``bulk_update``.
    """
    if not objs:
        return
    model = type(objs[0])
    connection = _database()
    if connection.vendor != "postgresql":
        model._default_manager.bulk_update(objs, fields)
        return
    columns, row, (before, after) = _rows_update_parts(model, tuple(fields), connection.alias)
    values = [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in objs for field in columns]
    with connection.cursor() as cursor:
        cursor.execute(before + ", ".join([row] * len(objs)) + after, values)


@cache
def _rows_update_parts(model: type[models.Model], fields: tuple[str, ...], alias: str) -> tuple[list, str, tuple[str, str]]:
    """The columns ``rows_update`` writes, the typed placeholders of one row, and its statement before and after the rows."""
    connection = connections[alias]
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    row = "(" + ", ".join(f"%s::{field.db_type(connection)}" for field in columns) + ")"
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    names = ", ".join(quote(field.column) for field in columns)
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns[1:])
    return columns, row, (f"UPDATE {table} SET {assignments} FROM (VALUES ", f") AS v ({names}) WHERE {table}.{pk} = v.{pk}")


def create_or_fetch(model: type[M], *, values: dict, fetch: dict) -> tuple[M, bool]:
    """Insert a row, or fetch the one a concurrent writer created first; return (row, created).

    Insert first, for rows that are nearly always new (an inbox delivery, an alert): one
    statement in the common case. A unique index decides between simultaneous writers; the
    loser fetches the winner's row with ``fetch``. Inside a transaction the insert runs in a
    savepoint, so losing does not break the caller's transaction. Where the row usually exists
    already, Django's ``get_or_create`` (read first, the same race handling) is the better fit.
    """
    try:
        with transaction.atomic() if connection.in_atomic_block else nullcontext():
            return model._default_manager.create(**values), True
    except IntegrityError:
        existing = model._default_manager.filter(**fetch).first()
        if existing is None:
            raise
        return existing, False



def insert_missing(model: type[M], rows: Sequence[M], *, unique_fields: Sequence[str]) -> list[M]:
    """Insert ``rows``, passing over any whose unique key another writer holds; return the inserted ones.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` statement. The inserted rows get their
    primary keys and stay locked by this transaction; a row whose key is taken (committed, or
    being inserted by a concurrent transaction, which this statement waits for) is left out, for
    the caller to read and lock instead. Rows are inserted in the order given: writers that sort
    them the same way cannot deadlock on each other's new keys.
    """
    if not rows:
        return []
    connection = _database()
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key and not field.generated]
    keys = [meta.get_field(name) for name in unique_fields]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(rows))
    values = [
        field.get_db_prep_save(field.pre_save(row, add=True), connection) for row in rows for field in fields
    ]
    returning = ", ".join(quote(field.column) for field in (meta.pk, *keys))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in fields)}) "
        f"VALUES {placeholders} ON CONFLICT ({', '.join(quote(key.column) for key in keys)}) DO NOTHING "
        f"RETURNING {returning}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        inserted = {tuple(row[1:]): row[0] for row in cursor.fetchall()}
    done = []
    for row in rows:
        key = tuple(key_field.get_db_prep_value(getattr(row, key_field.attname), connection) for key_field in keys)
        if key in inserted:
            row.pk = inserted[key]
            row._state.adding, row._state.db = False, connection.alias
            done.append(row)
    return done
