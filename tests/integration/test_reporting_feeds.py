"""From real deliveries and bids (the contracts and trading services) to the statistics, the
carbon figures, the ledger and the anomaly flags, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from exchange.reporting import carbon, exports, feeds, flags, rules, statistics
from exchange.reporting.anomalies import Rule
from exchange.reporting.models import UtilizationMonthly
from exchange.trading import services as trading
from tests.support.builders import PASSWORD, actor_of, make_user
from tests.support.contracts import make_deal
from tests.support.trading import T0, auction_lot, bidder, minutes

TODAY = dt.date.today()
MONTH = rules.month_start(TODAY)


@pytest.fixture(autouse=True)
def _request(app):
    with app.test_request_context():
        yield


def _delivered(db, deal, gross="49.000", tare="15.000", received_gross=None, **receipt):
    from exchange.contracts import deliveries, signing

    if not deal.contract.signatures:
        signing.sign_contract(db, deal.seller_actor, deal.contract.id, PASSWORD)
        signing.sign_contract(db, deal.buyer_actor, deal.contract.id, PASSWORD)
    n = len(deal.contract.deliveries) + 1
    delivery = deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": TODAY,
            "carrier": "滨州顺达物流",
            "vehicle_plate": "鲁M12345",
            "manifest_no": f"MF-{n:03d}",
            "gross_t": D(gross),
            "tare_t": D(tare),
        },
    )
    return deliveries.record_receipt(
        db,
        deal.buyer_actor,
        deal.contract.id,
        delivery.id,
        {
            "received_on": TODAY,
            "received_gross_t": D(received_gross or gross),
            "received_tare_t": D(tare),
            **receipt,
        },
    )


def _far_apart(deal) -> None:  # type: ignore[no-untyped-def]
    """Buyer's site about 1° of latitude (≈111 km) north of the producer's."""
    seller_site, buyer_site = deal.seller.sites[0], deal.buyer.sites[0]
    buyer_site.latitude = seller_site.latitude + 1
    buyer_site.longitude = seller_site.longitude


def test_a_received_delivery_becomes_a_fact_with_its_contract_lot_and_route(db):
    deal = make_deal(db)
    _far_apart(deal)
    delivery = _delivered(db, deal, end_use="cement_iron_corrective")
    # A load still on the road is not a delivery to end use yet.
    from exchange.contracts import deliveries

    deliveries.record_dispatch(
        db,
        deal.seller_actor,
        deal.contract.id,
        {
            "dispatched_on": TODAY,
            "carrier": "c",
            "vehicle_plate": "p",
            "manifest_no": "MF-ROAD",
            "gross_t": D("40"),
            "tare_t": D("15"),
        },
    )
    facts = list(feeds.delivered_facts(db, TODAY, company_id=deal.seller.id))
    assert [f.delivery_id for f in facts] == [delivery.id]
    fact = facts[0]
    contract = deal.contract
    assert (fact.contract_id, fact.seller_id, fact.buyer_id) == (
        contract.id,
        deal.seller.id,
        deal.buyer.id,
    )
    assert fact.origin_site_id == contract.lot.site_id
    assert fact.origin_province == contract.origin_province
    assert fact.destination_province == contract.destination_province
    assert (fact.basis, fact.moisture_pct) == ("wet", D("28.00"))
    assert fact.dispatched_t == fact.received_t == D("34.000")
    assert fact.accepted_t == delivery.accepted_t
    assert fact.end_use == "cement_iron_corrective"
    assert fact.received_on == TODAY
    # The assay the lot was sold on (tests/support/contracts.ASSAY).
    assert (fact.cao_pct, fact.fe2o3_pct, fact.loi_pct, fact.tfe_pct) == (
        D("3.0"),
        D("45.0"),
        None,
        None,
    )
    # 1° of latitude ≈ 111.2 km great-circle, × 1.3 by road.
    assert fact.distance_km is not None
    assert D("144") < fact.distance_km < D("145")
    # Other companies see nothing of it; an unrelated period neither.
    assert list(feeds.delivered_facts(db, TODAY, company_id=deal.seller.id + 10_000)) == []
    assert list(feeds.delivered_facts(db, TODAY + dt.timedelta(days=1))) == []


def test_statistics_carbon_and_ledger_add_up_to_the_real_deliveries(db):
    deal = make_deal(db, quantity="200")
    _far_apart(deal)
    first = _delivered(db, deal, end_use="cement_iron_corrective")
    second = _delivered(db, deal, gross="45.000", end_use="road_base")
    statistics.refresh(db, full=True, today=TODAY)

    def stored(end_use: str):  # type: ignore[no-untyped-def]
        return db.execute(
            select(
                func.sum(UtilizationMonthly.delivered_t),
                func.sum(UtilizationMonthly.deliveries),
                func.sum(UtilizationMonthly.transport_co2_t),
            ).where(
                UtilizationMonthly.producer_id == deal.seller.id,
                UtilizationMonthly.month == MONTH,
                UtilizationMonthly.end_use == end_use,
            )
        ).one()

    # Wet accepted tonnes × (1 − 28 % moisture) × red-mud factor 1.
    for delivery, end_use in ((first, "cement_iron_corrective"), (second, "road_base")):
        delivered, count, transport = stored(end_use)
        assert count == 1
        assert D(delivered) == (delivery.accepted_t * D("0.72")).quantize(D("0.001"))
        fact = next(f for f in feeds.delivered_facts(db, TODAY) if f.delivery_id == delivery.id)
        expected = carbon.transport_emissions(fact.dispatched_t, fact.distance_km)
        assert D(transport) == expected.quantize(D("0.001"))
        assert D(transport) > 0

    period = statistics.Period(MONTH, MONTH)
    total = statistics.national_total(db, period, producer_id=deal.seller.id)
    assert total.deliveries == 2
    assert total.delivered_t == ((first.accepted_t + second.accepted_t) * D("0.72")).quantize(
        D("0.001")
    )
    # The producer's ledger shows the loads going out, the buyer's the same loads coming in.
    out = [e for e in exports.ledger(db, deal.seller.id, period) if e.direction == "delivered"]
    came = [e for e in exports.ledger(db, deal.buyer.id, period) if e.direction == "received"]
    assert sorted(e.quantity_t for e in out) == sorted([first.accepted_t, second.accepted_t])
    assert [e.reference for e in out] == [e.reference for e in came]
    assert {e.end_use for e in out} == {"cement_iron_corrective", "road_base"}
    assert {e.destination_province for e in out} == {deal.contract.destination_province}


def test_a_delivery_received_light_raises_a_weight_flag_and_a_true_one_does_not(db):
    deal = make_deal(db, quantity="200")
    light = _delivered(db, deal, received_gross="48.000")  # 33 t of 34 t: −2.9 %
    exact = _delivered(db, deal)
    found = [f for f in flags.findings(db) if f.rule is Rule.WEIGHT_DISCREPANCY]
    ids = {f.data["delivery_id"] for f in found}
    assert light.id in ids
    assert exact.id not in ids
    finding = next(f for f in found if f.data["delivery_id"] == light.id)
    assert finding.company_ids == (deal.seller.id, deal.buyer.id)
    assert "dispatched 34 t, received 33 t" in finding.evidence


def _outbid_and_withdraw(db, actor, strong, lot, at):  # type: ignore[no-untyped-def]
    placed = trading.place_bid(
        db, actor, lot.id, D("100.00"), D("10"), "cement_iron_corrective", now=at
    ).bid
    trading.place_bid(
        db, strong, lot.id, D("120.00"), D("100"), "cement_iron_corrective", now=at + minutes(1)
    )
    return trading.withdraw_bid(db, actor, placed.id, now=at + minutes(2))


def test_real_bids_feed_the_withdrawal_and_related_bidding_rules(db):
    (shill, _o, actor), (_strong, _p, strong) = bidder(db), bidder(db)
    lots = [auction_lot(db) for _ in range(3)]
    for i, lot in enumerate(lots):
        _outbid_and_withdraw(db, actor, strong, lot, T0 + minutes(10 + 5 * i))
    facts = feeds.bid_facts(db, T0)
    mine = [b for b in facts if b.company_id == shill.id]
    assert [b.status for b in mine] == ["withdrawn"] * 3
    assert {b.producer_id for b in mine} == {lot.producer_id for lot in lots}
    now = T0 + minutes(60)
    withdrawals = [f for f in flags.findings(db, now) if f.rule is Rule.BID_WITHDRAWALS]
    assert [f.company_ids for f in withdrawals] == [(shill.id,)]
    assert sorted(withdrawals[0].data["bid_ids"]) == sorted(b.bid_id for b in mine)

    # Declared affiliation between the first lot's producer and the shill: its bid is flagged.
    from exchange.reporting import oversight

    producer = lots[0].producer
    shill.sites[0].latitude = producer.sites[0].latitude + 3  # no shared site
    db.flush()

    def related():  # type: ignore[no-untyped-def]
        return [
            f
            for f in flags.findings(db, now)
            if f.rule is Rule.RELATED_BIDDING and shill.id in f.company_ids
        ]

    assert related() == []
    admin = make_user(db, admin=True)
    oversight.declare_affiliation(
        db, actor_of(admin), producer.uscc, shill.uscc, "common_owner", "registry"
    )
    found = related()
    assert len(found) == 1
    assert set(found[0].company_ids) == {producer.id, shill.id}
    assert str(mine[0].bid_id) in found[0].evidence


def test_the_producer_sees_where_its_red_mud_went(db):
    from exchange.reporting import offtake

    deal = make_deal(db, quantity="200")
    first = _delivered(db, deal, end_use="cement_iron_corrective")
    second = _delivered(db, deal, gross="45.000", end_use="road_base")
    period = statistics.Period(MONTH, MONTH)
    linkage = offtake.company_offtake(db, deal.seller_actor, period)
    dry = [(d.accepted_t * D("0.72")).quantize(D("0.001")) for d in (first, second)]
    assert linkage.deliveries == 2 and linkage.unconverted == 0
    assert linkage.delivered_t == sum(dry)
    sector = deal.buyer.sector.value
    assert [(s.key, s.red_mud_t, s.deliveries) for s in linkage.by_sector] == [
        (sector, sum(dry), 2)
    ]
    assert [s.key for s in linkage.by_province] == [deal.contract.destination_province]
    assert {(s.key, s.red_mud_t) for s in linkage.by_end_use} == {
        ("cement_iron_corrective", dry[0]),
        ("road_base", dry[1]),
    }
    # The signed 200 t wet contract: 144 t of dry red mud contracted.
    assert linkage.contracted_t == D("144.000")
    # The buyer's own view has no outgoing red mud.
    bought = offtake.company_offtake(db, deal.buyer_actor, period)
    assert bought.deliveries == 0 and bought.by_sector == []
