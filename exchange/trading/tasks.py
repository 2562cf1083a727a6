"""Trading's periodic work, run by ``exchange.jobs`` (in-process thread, or the worker command).

Each batch is its own transaction. Running these in several processes at once is safe: the
closing claims lots with SKIP LOCKED and re-checks each lot under its row lock, and notices are
claimed the same way.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask

from exchange.actor import SYSTEM
from exchange.db import session_scope
from exchange.trading import clock
from exchange.trading.closing import close_due_lots, expire_reserve_decisions
from exchange.trading.notices import email_notices
from exchange.trading.settings import TradingSettings

#: Never loop forever in one tick, even if lots keep falling due.
MAX_BATCHES = 1000


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector for one batch.

    A closing batch allocates a few hundred thousand short-lived objects (rows, bid views,
    fills, notices); each few hundred allocations the collector would run, and now and then
    walk the whole heap of the app, which cost about a fifth of the closing's CPU time. The
    batch's garbage is reference-counted away anyway; what is left is collected once the
    batch is over.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def close_due(app: Flask) -> int:
    """Close every lot due now and expire lapsed reserve decisions; returns lots closed."""
    settings = TradingSettings.current()
    now = clock.now()
    total = 0
    for _ in range(MAX_BATCHES):
        with _collector_paused(), session_scope(app) as session:
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
