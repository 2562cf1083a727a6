"""Build or upgrade a database schema with the Alembic migrations (tests, benchmarks)."""

from __future__ import annotations

from collections.abc import Callable

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from exchange.config import ROOT


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the project's migrations on ``engine`` — the only way the schema is built."""
    _run(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo the project's migrations on ``engine`` down to ``revision`` (migration tests)."""
    _run(engine, command.downgrade, revision)


def _run(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        step(config, revision)
        connection.commit()
