"""The catalogue version, and a small in-process cache of rendered catalogue fragments.

Every committed change to what the public catalogue shows (a lot, its assay values, end uses
or certificates, a site) bumps the one-row ``catalogue_version`` table right after the commit,
in its own short transaction (no lock is held during the writer's own transaction). A cached
fragment is keyed by that version together with everything else it depends on, so a page
requested after a change's commit has returned never reuses a fragment rendered before it.

The cache is per process (each web worker has its own), bounded in size and in age: the age
bounds what a failed bump could leave behind.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, Update, select, update
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.dml import Delete

from exchange.accounts.models import Site
from exchange.db import Base
from exchange.listings.models import (
    Assay,
    AssayValue,
    CatalogueVersion,
    Certificate,
    Lot,
    LotEndUse,
)

#: Mapped classes whose rows the catalogue shows or filters on.
WATCHED: tuple[type[Base], ...] = (Lot, Assay, AssayValue, LotEndUse, Certificate, Site)
WATCHED_TABLES = frozenset(cls.__tablename__ for cls in WATCHED)
_FLAG = "catalogue_changed"


_VERSION = select(CatalogueVersion.version).where(CatalogueVersion.id == 1)


def current_version(session: Session) -> int:
    """The committed catalogue version (0 before any change is counted).

    Read on every catalogue page: for a signed-in user it came with the user (registered
    below); otherwise through the session's connection, as a plain row needs none of the ORM's
    statement handling."""
    from exchange.security import loaded_with_user

    version = loaded_with_user("catalogue_version")
    if version is None:
        version = session.connection().execute(_VERSION).scalar()
    return int(version or 0)


def _version_with_user() -> None:
    from exchange.security import read_with_user

    read_with_user("catalogue_version", lambda _user_id: _VERSION.scalar_subquery())


def _bump(connection: Connection) -> None:
    table = cast(Table, CatalogueVersion.__table__)
    result = connection.execute(
        update(table).where(table.c.id == 1).values(version=table.c.version + 1)
    )
    if result.rowcount == 0:
        connection.execute(table.insert().values(id=1, version=1))


_BUMP_ENGINES: dict[str, Engine] = {}
_BUMP_LOCK = threading.Lock()


def _bump_engine(bind: Engine) -> Engine:
    """A small pool of its own, to the same database, for the bump.

    The bump runs while the committing session still holds its pooled connection; taking a
    second one from the same pool would deadlock once every pooled connection belongs to a
    session waiting for another (many threads committing lot changes at once). A bump holds
    its own connection only for one UPDATE and never waits on the main pool, so its pool can
    be small. (A fresh connection per bump, as before, cost a server process's start on every
    lot change: several milliseconds.) An in-memory SQLite database exists only on its own
    engine's connection, so that engine bumps it.
    """
    if bind.url.get_backend_name() == "sqlite" and bind.url.database in (None, "", ":memory:"):
        return bind
    url = bind.url.render_as_string(hide_password=False)
    with _BUMP_LOCK:
        engine = _BUMP_ENGINES.get(url)
        if engine is None:
            from exchange.db import make_engine

            engine = _BUMP_ENGINES[url] = make_engine(
                url, pool_size=1, max_overflow=4, pool_timeout=30
            )
        return engine


def _forget_bump_engines() -> None:
    """In a forked child: leave the parent's bump connections to the parent (SQLAlchemy's
    recipe for pools across ``fork``); the child opens its own on its first bump."""
    for engine in _BUMP_ENGINES.values():
        engine.dispose(close=False)
    _BUMP_ENGINES.clear()


os.register_at_fork(after_in_child=_forget_bump_engines)


def bump(session: Session) -> None:
    """Count one committed change (called after the commit; see the module docstring)."""
    bind = session.get_bind()
    if isinstance(bind, Engine):
        with _bump_engine(bind).begin() as connection:
            _bump(connection)
    else:  # a connection whose transaction the caller owns (tests run inside one)
        _bump(bind)


def _touches_catalogue(session: Session) -> bool:
    return any(isinstance(obj, WATCHED) for obj in (*session.new, *session.dirty, *session.deleted))


def _after_flush(session: Session, _context: object) -> None:
    if not _touches_catalogue(session):
        return
    if isinstance(session.get_bind(), Engine):
        session.info[_FLAG] = True  # counted once committed
    else:
        # A session joined to a transaction it does not own (tests): other sessions on that
        # connection see the change as soon as it is flushed, so it counts now.
        _bump(session.connection())


def _do_orm_execute(state: ORMExecuteState) -> None:
    statement = state.statement
    if isinstance(statement, Update | Delete) and getattr(statement.table, "name", None) in (
        WATCHED_TABLES
    ):
        state.session.info[_FLAG] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        try:
            bump(session)
        except Exception:  # noqa: BLE001 - the change is committed; the cache's age bounds this
            import logging

            logging.getLogger(__name__).exception("catalogue version bump failed")


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


def install() -> None:
    """Listen on every session (idempotent)."""
    from sqlalchemy import event

    for name, listener in (
        ("after_flush", _after_flush),
        ("do_orm_execute", _do_orm_execute),
        ("after_commit", _after_commit),
        ("after_rollback", _after_rollback),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


_CACHES: list[FragmentCache] = []


def clear_caches() -> None:
    """Empty every fragment cache (tests: each starts from a rolled-back catalogue version)."""
    for cache in _CACHES:
        cache.clear()


class FragmentCache:
    """A thread-safe LRU of rendered fragments, each kept at most ``ttl`` seconds."""

    def __init__(self, size: int = 256, ttl: float = 60.0) -> None:
        self.size, self.ttl = size, ttl
        self._items: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0
        _CACHES.append(self)

    def get(self, key: Hashable) -> Any | None:
        now = time.monotonic()
        with self._lock:
            item = self._items.get(key)
            if item is None or item[0] < now:
                if item is not None:
                    del self._items[key]
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item[1]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


install()
_version_with_user()
