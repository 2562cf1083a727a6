"""The trading clock: what "now" is for bids, purchases, closing and the lot panel.

Real UTC time, unless the app's ``TRADING_CLOCK`` config names a callable returning an aware
datetime: tests set one to drive closings and extensions without sleeping or racing the wall
clock. Services still accept an explicit ``now`` that wins over both.
"""

from __future__ import annotations

import datetime as dt

from flask import current_app, has_app_context

from exchange.db import utcnow


def now() -> dt.datetime:
    """The current time for trading (the configured clock inside an app context)."""
    if has_app_context():
        clock = current_app.config.get("TRADING_CLOCK")
        if clock is not None:
            value: dt.datetime = clock()
            return value
    return utcnow()
