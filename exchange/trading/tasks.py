"""Trading's periodic work, run by ``exchange.jobs`` (in-process thread, or the worker command).

Each batch is its own transaction. Running these in several processes at once is safe: the
closing claims lots with SKIP LOCKED and re-checks each lot under its row lock, and notices are
claimed the same way.
"""

from __future__ import annotations

from flask import Flask

from exchange.actor import SYSTEM
from exchange.db import session_scope
from exchange.jobs import collector_paused
from exchange.trading import clock
from exchange.trading.closing import close_due_lots, expire_reserve_decisions
from exchange.trading.notices import email_notices
from exchange.trading.settings import TradingSettings

#: Never loop forever in one tick, even if lots keep falling due.
MAX_BATCHES = 1000


def close_due(app: Flask) -> int:
    """Close every lot due now and expire lapsed reserve decisions; returns lots closed."""
    settings = TradingSettings.current()
    now = clock.now()
    total = 0
    for _ in range(MAX_BATCHES):
        with collector_paused(), session_scope(app) as session:
            closed = close_due_lots(session, SYSTEM, now=now, settings=settings)
        total += closed
        if closed < settings.close_batch:
            break
    with session_scope(app) as session:
        expire_reserve_decisions(session, SYSTEM, now=now, settings=settings)
    return total


def email_trade_notices(app: Flask) -> int:
    """E-mail the trade notices not sent yet; returns how many notices it handled."""
    handled = 0
    for _ in range(MAX_BATCHES):
        with session_scope(app) as session:
            batch = email_notices(session)
        handled += batch
        if batch == 0:
            break
    return handled
