"""Database plumbing: the declarative base, engines, and the one-commit-per-boundary session.

SQLite (the embedded default) needs care: the stdlib driver begins transactions late and ignores
``SELECT ... FOR UPDATE``, which silently loses concurrent read-modify-write updates. So the
driver's own transaction handling is switched off and every transaction starts with
``BEGIN IMMEDIATE``, which takes the database write lock up front.
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from flask import Flask, current_app, g, has_app_context
from sqlalchemy import (
    DateTime,
    Engine,
    Enum,
    MetaData,
    Numeric,
    Table,
    bindparam,
    create_engine,
    event,
    insert,
    update,
)
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import FromClause
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        Decimal: Numeric(14, 3),
    }


def enum_column(cls: type[enum.Enum], length: int = 24) -> Enum:
    """An enum stored by its value as a string (portable; no native ENUM type to migrate)."""
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


Tonnes = Numeric(14, 3)
PricePerTonne = Numeric(12, 2)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and ``BEGIN IMMEDIATE``; a pooled
    server database checks connections that sat idle before handing them out."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _harden_sqlite(engine)
        return engine
    if "pool_pre_ping" in kwargs or kwargs.get("poolclass") is NullPool:
        return create_engine(url, **kwargs)
    engine = create_engine(url, **kwargs)
    _ping_idle_connections(engine)
    return engine


#: A pooled connection left unused longer than this is checked before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_idle_connections(engine: Engine) -> None:
    """Check a pooled connection before use only when it sat idle in the pool for a while.

    ``pool_pre_ping`` costs a round trip on every checkout, i.e. on every request. Connections
    that went bad (database restart, idle timeout, network) are nearly always ones that waited
    in the pool; one in steady use is checked by its own statements, and a failure there
    invalidates the pool as usual. A failed ping here makes the pool drop the connection and
    hand out a fresh one (the pool retries a checkout that raises ``DisconnectionError``).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["rmx_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.pop("rmx_idle_since", None)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return  # a new connection, or one in steady use
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError("idle connection failed its ping") from exc


def normalize_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _harden_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_sqlite(session: Session) -> bool:
    bind = session.get_bind()
    return bind.dialect.name == "sqlite"


# --- bulk writes (jobs that write thousands of rows per transaction) ----------------------------


#: Below this many rows a plain (pipelined) INSERT is as quick as a COPY.
COPY_MIN_ROWS = 16


def bulk_insert(session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` (same keys in each) in the session's transaction; no ids come back.

    PostgreSQL: one ``COPY ... FROM STDIN``, which costs a fraction of a statement per row.
    Elsewhere: a plain executemany. Values go through the columns' own types first (enums,
    UTC datetimes) and columns left out get their Python-side defaults, as ``insert()`` does.
    """
    assert isinstance(table, Table)
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql" or len(rows) < COPY_MIN_ROWS:
        connection.execute(insert(table), list(rows))
        return
    from psycopg import sql

    dialect = connection.dialect
    given = list(rows[0].keys())
    defaults: dict[str, Any] = {}
    for column in table.columns:
        default = column.default
        if column.key in given or default is None:
            continue
        if default.is_scalar:
            defaults[column.key] = default.arg  # type: ignore[attr-defined]
        elif default.is_callable:
            defaults[column.key] = default.arg(None)  # type: ignore[attr-defined]
    names = given + list(defaults)
    columns = []
    for name in given:  # column by column: one type processor per column
        process = table.c[name].type.bind_processor(dialect)
        values = [row[name] for row in rows]
        columns.append(values if process is None else list(map(process, values)))
    for name, value in defaults.items():
        process = table.c[name].type.bind_processor(dialect)
        columns.append([value if process is None else process(value)] * len(rows))
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, names))
    )
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
        for row_values in zip(*columns, strict=True):
            copy.write_row(row_values)


def bulk_update(
    session: Session, table: FromClause, rows: Sequence[Mapping[str, Any]], key: str = "id"
) -> None:
    """Update rows found by ``key`` (same keys in each row), in the session's transaction.

    PostgreSQL: one ``UPDATE ... FROM unnest(<one array per column>)``. Elsewhere: an
    executemany of ``UPDATE ... WHERE key = ?``.
    """
    assert isinstance(table, Table)
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    names = [name for name in rows[0] if name != key]
    if dialect.name != "postgresql":
        by_key = (
            update(table)
            .where(table.c[key] == bindparam(f"v_{key}", type_=table.c[key].type))
            .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in names})
        )
        connection.execute(by_key, [{f"v_{k}": v for k, v in row.items()} for row in rows])
        return
    from psycopg import sql

    columns = [key, *names]
    arrays = []
    for name in columns:
        process = table.c[name].type.bind_processor(dialect)
        values = [row[name] for row in rows]
        arrays.append(values if process is None else [process(v) for v in values])
    unnest = sql.SQL(", ").join(
        sql.SQL("%s::{}[]").format(sql.SQL(table.c[name].type.compile(dialect=dialect)))
        for name in columns
    )
    # ``key = ANY(keys)`` as well as the join: without it the planner hashes the whole table.
    statement = sql.SQL(
        "UPDATE {t} SET {sets} FROM unnest({unnest}) AS v({cols}) "
        "WHERE {t}.{k} = v.{k} AND {t}.{k} = ANY(%s::{key_type}[])"
    ).format(
        t=sql.Identifier(table.name),
        sets=sql.SQL(", ").join(
            sql.SQL("{c} = v.{c}").format(c=sql.Identifier(name)) for name in names
        ),
        unnest=unnest,
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        k=sql.Identifier(key),
        key_type=sql.SQL(table.c[key].type.compile(dialect=dialect)),
    )
    driver = connection.connection.driver_connection
    with driver.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(statement, [*arrays, arrays[0]])


# --- one session per request / CLI command / job ------------------------------------------------


def init_app(app: Flask) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["exchange.engine"] = engine
    app.extensions["exchange.sessionmaker"] = make_sessionmaker(app, engine)
    app.teardown_appcontext(_close_session)


MAIL_SETTINGS = (
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "MAIL_FROM",
)


def make_sessionmaker(app: Flask, bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    """Sessions for ``bind`` that carry the settings side effects need in ``session.info``."""
    factory = sessionmaker(bind=bind, expire_on_commit=False, **kwargs)
    factory.kw["info"] = {
        "mail_settings": {k: app.config[k] for k in MAIL_SETTINGS},
        "session_factory": factory,
    }
    return factory


def get_session() -> Session:
    """The session of the current request, CLI command or job (created on first use)."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["exchange.sessionmaker"]()
    session: Session = g.db_session
    return session


def reads_only(session: Session) -> None:
    """Declare that the rest of this request only reads (a busy public page).

    On PostgreSQL the session's statements then run outside a transaction: that saves the BEGIN
    and the ROLLBACK, two of a cached page's three round trips. Each statement still reads a
    snapshot of its own, as READ COMMITTED gives every statement of a transaction. A request
    that writes or locks must not call this. SQLite keeps its immediate transactions (a single
    file needs them to serialise writers; there is no round trip to save). Called after the
    session's first statement it changes nothing.
    """
    bind = session.get_bind()
    # A session bound to a connection (a test's outer transaction) has its transaction already.
    if (
        session.in_transaction()
        or not isinstance(bind, Engine)
        or bind.dialect.name != "postgresql"
    ):
        return
    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db_session", None)
    if session is not None:
        session.rollback()
        session.close()


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run ``callback`` once the boundary commits (e-mail, live updates); dropped on rollback."""
    session.info.setdefault("after_commit", []).append(callback)


def commit(session: Session) -> None:
    """The boundary's single commit, then the side effects the services queued."""
    session.commit()
    callbacks: list[Callable[[], None]] = session.info.pop("after_commit", [])
    for callback in callbacks:
        try:
            callback()
        except Exception:  # a failed side effect must never undo a committed change
            if has_app_context():
                current_app.logger.exception("after-commit side effect failed")


@event.listens_for(Session, "after_rollback")
def _drop_side_effects(session: Session) -> None:
    session.info.pop("after_commit", None)


@contextmanager
def session_scope(app: Flask) -> Iterator[Session]:
    """A session for work outside a request (jobs, CLI) that commits once at the end."""
    session: Session = app.extensions["exchange.sessionmaker"]()
    try:
        yield session
        commit(session)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
