"""Weighbridge figures the database must accept on every backend: net = gross - tare to the
kilogram, even where binary floating point (SQLite's arithmetic) makes 49.1 - 15.2 ≠ 33.9."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from exchange.contracts import deliveries, signing
from tests.support.builders import PASSWORD
from tests.support.contracts import make_deal


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


@pytest.mark.parametrize(
    ("gross", "tare", "net"),
    [("49.100", "15.200", "33.900"), ("40.300", "10.100", "30.200"), ("0.300", "0.100", "0.200")],
)
def test_net_weights_that_floats_cannot_subtract_exactly_are_stored(db, gross, tare, net):
    deal = make_deal(db, quantity="1000")
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    delivery = deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": dt.date.today(),
            "carrier": "顺达物流",
            "vehicle_plate": "鲁M1",
            "manifest_no": "MF-1",
            "gross_t": D(gross),
            "tare_t": D(tare),
        },
    )
    db.flush()
    db.expire_all()
    assert delivery.net_t == D(net)
