"""Weighbridge figures the database must accept on every backend: net = gross - tare to the
kilogram, even where binary floating point (SQLite's arithmetic) makes 49.1 - 15.2 ≠ 33.9."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from exchange.contracts import deliveries, signing
from exchange.errors import Conflict
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


def _dispatch(db, deal):
    return deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": dt.date.today(),
            "carrier": "顺达物流",
            "vehicle_plate": "鲁M1",
            "manifest_no": "MF-1",
            "gross_t": D("61.5"),
            "tare_t": D("15.2"),
        },
    )


def test_a_dry_lot_without_a_stated_moisture_takes_its_assays(db):
    """Dry tonnes are sold; the weighbridge weighs wet ones. Without the lot's moisture the
    contract takes the assay's (28 %), so a 46.3 t load counts 33.336 dry tonnes."""
    deal = make_deal(db, quantity="100", basis="dry", moisture_pct=None)
    assert deal.contract.moisture_pct == D("28.0")
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    assert _dispatch(db, deal).counted_t == D("33.336")


def test_a_dry_contract_with_no_moisture_anywhere_refuses_loads_clearly(db):
    deal = make_deal(db, quantity="100", basis="dry", moisture_pct=None)
    deal.contract.moisture_pct = None  # a contract drawn before the assay fallback existed
    db.flush()
    signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
    signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    with pytest.raises(Conflict, match="moisture"):
        _dispatch(db, deal)
