"""Build or upgrade a database schema with the Alembic migrations (tests, benchmarks)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from exchange.config import ROOT


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the project's migrations on ``engine`` — the only way the schema is built."""
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    with engine.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        connection.commit()
