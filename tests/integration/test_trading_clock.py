"""The trading clock comes from the app's config, so tests move time instead of sleeping."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from exchange.actor import SYSTEM
from exchange.listings.rules import LotStatus
from exchange.trading import closing, services
from exchange.trading.services import BidConflict
from tests.support.trading import T0, ManualClock, auction_lot, bidder, minutes


@pytest.fixture()
def clock(app):
    manual = ManualClock(T0 + minutes(59))
    app.config["TRADING_CLOCK"] = manual
    yield manual
    app.config.pop("TRADING_CLOCK")


def test_bids_and_the_close_follow_the_configured_clock(app, db, clock):
    lot = auction_lot(db, quantity="100", anti_snipe=5)  # closes at T0+60, hard stop T0+90
    _c, _o, buyer = bidder(db)
    with app.test_request_context():
        result = services.place_bid(db, buyer, lot.id, D("100"), D("100"), "steel")
        assert result.bid.placed_at == T0 + minutes(59)
        assert result.extended_to == T0 + minutes(64)  # the last minutes: extended
        assert closing.close_lot(db, SYSTEM, lot.id) is None  # not due at the clock's now
        clock.advance(minutes(10))
        with pytest.raises(BidConflict):
            services.place_bid(db, buyer, lot.id, D("110"), D("100"), "steel")
        assert closing.close_lot(db, SYSTEM, lot.id) is not None
    assert lot.status is LotStatus.AWARDED
