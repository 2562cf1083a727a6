"""Shared fixtures: databases built by the real migrations, one savepoint per test.

Every test that asks for ``db`` or ``client`` runs once on SQLite and, when
``TEST_DATABASE_URL`` names a PostgreSQL database, once more on PostgreSQL.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

import exchange.accounts.services as account_services
from exchange import create_app
from exchange.db import make_engine, make_sessionmaker, normalize_url
from exchange.listings import freshness
from exchange.schema import upgrade

# Argon2 at production cost takes ~0.1 s per hash or check; tests use a cheap profile so the
# suite stays fast. Production parameters are argon2-cffi's defaults (RFC 9106 low-memory).
account_services._hasher = account_services.PasswordHasher(
    time_cost=1, memory_cost=1024, parallelism=1
)
account_services._DUMMY_HASH = account_services._hasher.hash("not-a-real-password")

#: Fixtures shared by one context's tests across unit/integration/functional/e2e.
pytest_plugins = ["tests.support.payments"]

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
# Property tests check rules, not speed: on a busy 2-core machine one example can take longer
# than Hypothesis's default 200 ms deadline, which would fail a correct rule. Speed is what
# `make bench` shows.
settings.register_profile("exchange", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("exchange")

PG_URL = os.environ.get("TEST_DATABASE_URL", "")


def pytest_sessionstart(session: pytest.Session) -> None:
    """CI makes the browser tests mandatory: refuse to start without the browser (here, before
    any worker process starts, so the message is plain)."""
    chromium = shutil.which("chromium") or os.path.exists("/usr/bin/chromium")
    if os.environ.get("E2E_REQUIRED") and not chromium:
        raise pytest.UsageError("E2E_REQUIRED is set but Debian's chromium is not installed")


BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="TEST_DATABASE_URL is not set; PostgreSQL run skipped"
        ),
    ),
]


def migrate(engine: Engine) -> None:
    """Build the schema with the project's Alembic migrations (never create_all)."""
    upgrade(engine)


def _pg_admin_url() -> str:
    return re.sub(r"/[^/]*$", "/postgres", normalize_url(PG_URL))


def create_database(backend: str, tmp_dir: Path, name: str) -> str:
    """A new empty database with the migrations applied; returns its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_dir / (name + '.sqlite3')}"
    else:
        admin = make_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = re.sub(r"/[^/]*$", f"/{name}", normalize_url(PG_URL))
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    return url


def drop_database(backend: str, name: str) -> None:
    if backend == "postgresql":
        admin = make_engine(_pg_admin_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


TEST_CONFIG = {
    "TESTING": True,
    "RATELIMIT_ENABLED": False,
    "SECRET_KEY": "test-secret",
    "SHOW_OUTBOX": True,
    "RUN_JOBS_IN_PROCESS": False,
    "SMTP_HOST": "",
    "PUBLIC_URL": "http://exchange.test",
    # Tests read English unless they ask for Chinese (Accept-Language: zh-CN or a saved
    # preference); the exchange itself defaults to Chinese.
    "BABEL_DEFAULT_LOCALE": "en",
}


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(name, url) of a migrated database for the whole session, per backend."""
    name = f"rmx_test_{uuid.uuid4().hex[:8]}"
    url = create_database(request.param, tmp_path_factory.mktemp("db"), name)
    yield request.param, url
    drop_database(request.param, name)


@pytest.fixture(scope="session")
def app(backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    _name, url = backend
    uploads = str(tmp_path_factory.mktemp("uploads"))
    application = create_app({**TEST_CONFIG, "DATABASE_URL": url, "UPLOAD_DIR": uploads})
    yield application
    application.extensions["exchange.engine"].dispose()


@pytest.fixture()
def db(app: Flask) -> Iterator[Session]:
    """A session inside a transaction rolled back after the test; commits become savepoints."""
    engine: Engine = app.extensions["exchange.engine"]
    connection = engine.connect()
    outer = connection.begin()
    factory = make_sessionmaker(app, connection, join_transaction_mode="create_savepoint")
    original = app.extensions["exchange.sessionmaker"]
    app.extensions["exchange.sessionmaker"] = factory
    session = factory()
    freshness.clear_caches()  # the catalogue version restarts with the rolled-back database
    try:
        yield session
    finally:
        session.close()
        app.extensions["exchange.sessionmaker"] = original
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture()
def client(app: Flask, db: Session) -> FlaskClient:
    return app.test_client()


@pytest.fixture()
def backend_name(backend) -> str:
    return backend[0]
