"""Reads shared within one unit of work: a lookup asked for several times is read once.

One publish asks for the creator's time zone, running LIVE and currency from several places
(the metrics, the plan of what to push, each fragment). Inside ``reads_shared()`` the selectors
that go through ``shared_read`` answer each key from the first read; outside one, every call
reads. A scope is meant to be short: what it remembers is as old as the scope.

A publish of several creators at once reads each kind for all of them in one statement
(``shared_reads_fill``); each creator's selectors then find their answer in the scope.
"""

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_scope: ContextVar[dict | None] = ContextVar("creatorflow_shared_reads", default=None)


@contextmanager
def reads_shared() -> Iterator[None]:
    """Share the reads made through ``shared_read`` until the block ends (inside a scope: that scope's)."""
    if _scope.get() is not None:
        yield
        return
    token = _scope.set({})
    try:
        yield
    finally:
        _scope.reset(token)


def shared_read(key: Hashable, read: Callable[[], T]) -> T:
    """Return ``read()``, or what it returned for ``key`` earlier in the current scope."""
    scope = _scope.get()
    if scope is None:
        return read()
    if key not in scope:
        scope[key] = read()
    return scope[key]


def _key(kind: str, key: Hashable) -> tuple:
    return (kind, *key) if isinstance(key, tuple) else (kind, key)


def shared_reads_fill(kind: str, keys: Iterable[Hashable], read_many: Callable[[list], Mapping[Hashable, object]]) -> None:
    """Read ``(kind, key)`` for each of ``keys`` not read yet in the current scope, with one call of ``read_many``.

    ``read_many(missing)`` returns key → value; a tuple key stands for its parts (``(creator_id,
    hours)`` fills ``(kind, creator_id, hours)``). Outside a scope there is nothing to fill.
    """
    scope = _scope.get()
    if scope is None:
        return
    missing = [key for key in keys if _key(kind, key) not in scope]
    if missing:
        scope.update((_key(kind, key), value) for key, value in read_many(missing).items())
