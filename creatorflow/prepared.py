"""Reads and updates whose SQL is composed once: the ORM writes a query's SQL the first time, later calls only bind values.

Composing a small query costs the ORM several times the CPU that PostgreSQL spends answering it
(about 1 ms against 0.2 ms for one of the metrics reads), and a dashboard push is sixteen such
reads. A ``Prepared`` read is an ordinary queryset-building function; the first call of each
shape builds it from placeholder values, compiles it, and keeps the SQL with the position of
every value in it. Later calls of that shape put their values in those positions and run the SQL
through the same connection wrapper (so statement counts, logging and converters are as before).

The shape of a call is the length of each list argument, rounded up to a power of two (a list is
padded with its last element: for ``__in`` a repeated id changes nothing), and the values of
arguments that are neither ids, instants nor lists of keys (a status, a limit), which are part of
the SQL. A string is a value to bind only inside a list (TikTok ids to look up); on its own it is a
constant of the query. The
building function must only place its arguments into filters: an argument it computes with
(``now - window``), tests, or loops over in a way that changes the query's form is not found in the
compiled parameters, and that shape then simply runs through the ORM every time.

An update is composed the same way: its building function returns the queryset to update and the
changes, as ``QuerySet.update`` takes them (``F()`` expressions included), and ``update`` returns
the number of rows changed. The applier's few writes to one row per batch (the inbox rows turned
processed, the shop's stream counted) cost more to compose through the ORM than to run.
"""

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.db import DEFAULT_DB_ALIAS, connections, models, transaction
from django.db.models.sql import UpdateQuery
from django.db.models.query import QuerySet, get_related_populators, prefetch_related_objects
from django.db.transaction import TransactionManagementError

# Placeholder ids count up from here. They must lie inside every integer field's range, even a small
# or positive one: Django drops or short-cuts a comparison with a value its field cannot hold, and a
# dropped placeholder makes its shape uncacheable. A constant of a query's form is never near them.
_SENTINEL_INT = 31_000
_SENTINEL_INSTANT = datetime(1901, 1, 1, tzinfo=UTC)  # placeholders are this plus k microseconds
_SENTINEL_KEY = "~prepared-key-{}~"
_UNCACHEABLE = object()


def _bucket(length: int) -> int:
    size = 1
    while size < length:
        size *= 2
    return size


def _is_slot_value(value: object) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or isinstance(value, datetime)


def _is_slot_list(value: object) -> bool:
    if not isinstance(value, (list, tuple, set, frozenset)) or not value:
        return False
    return all(map(_is_slot_value, value)) or all(isinstance(item, str) for item in value)


class _Compiled:
    """One shape's SQL, where each of its parameters comes from, and how to read its rows."""

    def __init__(self, sql: str, params: list, slots: list, *, compiler, names: list[str], prefetches: tuple) -> None:
        self.sql, self.params, self.slots = sql, params, slots  # slots: per parameter, (argument, index) or None
        self.names, self.prefetches = names, prefetches
        self.for_update = bool(compiler.query.select_for_update)
        fields = [column[0] for column in compiler.select[: compiler.col_count]]
        self.converters = compiler.get_converters(fields)
        # What Django's ModelIterable takes from its compiler to build instances, kept from this one.
        self.select, self.klass_info, self.annotation_col_map = compiler.select, compiler.klass_info, compiler.annotation_col_map


class _CompiledUpdate:
    """An update's SQL and where each of its parameters comes from."""

    def __init__(self, sql: str, params: list, slots: list) -> None:
        self.sql, self.params, self.slots = sql, params, slots


class Prepared:
    """A read built by ``build(**arguments) -> QuerySet``, compiled once per shape.

    ``values(**arguments)`` runs a ``.values(...)`` queryset and returns its rows as dicts;
    ``objects(**arguments)`` runs a queryset of model instances and returns them as Django's
    ``ModelIterable`` builds them (``select_related`` objects attached, annotations as attributes,
    ``prefetch_related`` done afterwards through the ORM). Arguments are keyword-only: ids (ints),
    instants (aware datetimes), lists of either, and constants of the query's form. ``update(**arguments)``
    runs the update of a builder that returns (queryset, changes).
    """

    def __init__(self, build: Callable[..., QuerySet]) -> None:
        self.build = build
        self.__doc__ = build.__doc__
        self._compiled: dict[tuple, _Compiled | object] = {}

    def values(self, **arguments) -> list[dict]:
        connection = connections[DEFAULT_DB_ALIAS]  # looked up once: each lookup goes through a thread-local
        compiled, filled = self._prepare(arguments, kind="values", connection=connection)
        if compiled is None:
            return list(self.build(**arguments))
        return [dict(zip(compiled.names, row, strict=False)) for row in self._rows(compiled, filled, connection)]

    def objects(self, **arguments) -> list[models.Model]:
        connection = connections[DEFAULT_DB_ALIAS]
        compiled, filled = self._prepare(arguments, kind="objects", connection=connection)
        if compiled is None:
            return list(self.build(**arguments))
        rows = self._rows(compiled, filled, connection)
        klass_info, select = compiled.klass_info, compiled.select
        model = klass_info["model"]
        start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        attnames = [column[0].target.attname for column in select[start:end]]
        populators = get_related_populators(klass_info, select, "default")
        found = []
        for row in rows:
            instance = model.from_db("default", attnames, row[start:end])
            for populator in populators:
                populator.populate(row, instance)
            for name, position in compiled.annotation_col_map.items():
                setattr(instance, name, row[position])
            found.append(instance)
        if compiled.prefetches and found:
            prefetch_related_objects(found, *compiled.prefetches)
        return found

    def update(self, **arguments) -> int:
        """Run the update that ``build(**arguments)`` returns as (queryset, changes); return the rows changed."""
        connection = connections[DEFAULT_DB_ALIAS]
        compiled, filled = self._prepare(arguments, kind="update", connection=connection)
        if compiled is None:
            queryset, changes = self.build(**arguments)
            return queryset.update(**changes)
        with transaction.mark_for_rollback_on_error(using=DEFAULT_DB_ALIAS), connection.cursor() as cursor:
            cursor.execute(compiled.sql, filled)
            return cursor.rowcount

    def _rows(self, compiled: _Compiled, filled: list, connection) -> list:
        if compiled.for_update and connection.get_autocommit():  # the ORM's own guard, kept
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, filled)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = [self._convert(row, compiled.converters, connection) for row in rows]
        return rows

    # --- compiling -----------------------------------------------------------------------------

    def _prepare(self, arguments: dict, *, kind: str, connection) -> tuple[_Compiled | _CompiledUpdate | None, list | None]:
        shape: list = [kind, connection.vendor]
        for name in sorted(arguments):
            value = arguments[name]
            if isinstance(value, (list, tuple, set, frozenset)):
                value = list(value)
                if not value:
                    return None, None  # an empty IN: the ORM knows no row can match
                if _is_slot_list(value):
                    shape.append((name, "list", _bucket(len(value))))
                    continue
                shape.append((name, "constant", tuple(value)))
            elif _is_slot_value(value):
                shape.append((name, "one"))
            else:
                shape.append((name, "constant", value))
        key = tuple(shape)
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(arguments, kind=kind)
        if compiled is _UNCACHEABLE:
            return None, None
        return compiled, self._fill(compiled, arguments, connection)

    def _compile(self, arguments: dict, *, kind: str) -> _Compiled | _CompiledUpdate | object:
        connection = connections[DEFAULT_DB_ALIAS]
        adapt = connection.ops.adapt_datetimefield_value
        counter = itertools.count(1)
        where: dict = {}  # adapted placeholder → (argument, index or None)
        placeholders = {}
        for name, value in arguments.items():
            if _is_slot_list(value):
                value = list(value)
                placeholders[name] = [self._placeholder(item, next(counter)) for item in value + [value[-1]] * (_bucket(len(value)) - len(value))]
                for index, placeholder in enumerate(placeholders[name]):
                    where[adapt(placeholder) if isinstance(placeholder, datetime) else placeholder] = (name, index)
            elif _is_slot_value(value):
                placeholders[name] = self._placeholder(value, next(counter))
                where[adapt(placeholders[name]) if isinstance(placeholders[name], datetime) else placeholders[name]] = (name, None)
            else:
                placeholders[name] = value
        if kind == "update":
            return self._compile_update(self.build(**placeholders), where)
        queryset = self.build(**placeholders)
        compiler = queryset.query.get_compiler(using=queryset.db)
        text, params = compiler.as_sql()
        slots = self._slots(params, where)
        if slots is None:
            return _UNCACHEABLE
        query = queryset.query
        if kind == "objects":
            if queryset._fields is not None or queryset._known_related_objects:
                raise ValueError("Prepared.objects needs a queryset of model instances, not .values() or a related manager's")
            return _Compiled(text, list(params), slots, compiler=compiler, names=[], prefetches=tuple(queryset._prefetch_related_lookups))
        if queryset._fields is None:
            raise ValueError("Prepared.values needs a .values(...) queryset")
        names = [*query.extra_select, *query.values_select, *query.annotation_select]
        return _Compiled(text, list(params), slots, compiler=compiler, names=names, prefetches=())

    def _compile_update(self, built: tuple[QuerySet, dict], where: dict) -> _CompiledUpdate | object:
        queryset, changes = built
        # What QuerySet.update composes, for an update of one table by a plain filter.
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(changes)
        query.clear_select_clause()
        query.get_initial_alias()
        if query.related_updates or query.order_by or query.is_sliced or query.count_active_tables() != 1:
            return _UNCACHEABLE  # a parent model's fields, or a filter through a join: Django rewrites the update
        text, params = query.get_compiler(using=queryset.db).as_sql()
        slots = self._slots(params, where)
        if slots is None:
            return _UNCACHEABLE
        return _CompiledUpdate(text, list(params), slots)

    @staticmethod
    def _slots(params, where: dict) -> list | None:
        """Per parameter, the argument (and index in it) it comes from; None when a placeholder was lost."""
        slots = [where.get(param) if isinstance(param, (int, str, datetime)) and not isinstance(param, bool) else None for param in params]
        if {slot for slot in slots if slot is not None} != set(where.values()):
            return None  # a placeholder was computed with, or dropped: not a pure placement
        return slots

    @staticmethod
    def _placeholder(value: object, number: int) -> object:
        if isinstance(value, datetime):
            return _SENTINEL_INSTANT + timedelta(microseconds=number)
        if isinstance(value, str):
            return _SENTINEL_KEY.format(number)
        return _SENTINEL_INT + number

    @staticmethod
    def _fill(compiled: _Compiled | _CompiledUpdate, arguments: dict, connection) -> list:
        adapt = connection.ops.adapt_datetimefield_value
        filled = list(compiled.params)
        lists = {name: list(value) for name, value in arguments.items() if isinstance(value, (list, tuple, set, frozenset))}
        for position, slot in enumerate(compiled.slots):
            if slot is None:
                continue
            name, index = slot
            if index is None:
                value = arguments[name]
            else:
                items = lists[name]
                value = items[min(index, len(items) - 1)]  # past the end: the padding repeats the last
            filled[position] = adapt(value) if isinstance(value, datetime) else value
        return filled

    @staticmethod
    def _convert(row: tuple, converters: dict, connection) -> list:
        row = list(row)
        for position, (functions, expression) in converters.items():
            value = row[position]
            for function in functions:
                value = function(value, expression, connection)
            row[position] = value
        return row


def prepared(build: Callable[..., QuerySet]) -> Prepared:
    """Decorate a queryset-building function as a ``Prepared`` read."""
    return Prepared(build)
