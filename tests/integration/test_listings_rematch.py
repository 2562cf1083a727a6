"""Lot changes that can change buyers' matches queue the lot's match recomputation for after
the commit; changes to lots nobody can match queue nothing, and a rollback drops the job."""

from __future__ import annotations

from decimal import Decimal

import pytest

import exchange.jobs
from exchange.db import commit
from exchange.listings import assays, services
from tests.support.builders import actor_of, make_company
from tests.support.lots import GOOD_ASSAY, LAB, listed_lot, lot_terms


@pytest.fixture()
def recomputed(monkeypatch):
    calls: list[tuple[int | None, int | None]] = []
    monkeypatch.setattr(
        exchange.jobs,
        "recompute_matches",
        lambda _app, lot_id=None, demand_id=None: calls.append((lot_id, demand_id)),
    )
    return calls


@pytest.fixture()
def producer(app, db):
    company, owner = make_company(db, producer=True, buyer=False)
    with app.test_request_context():
        yield company, owner, actor_of(owner, company)


def test_publishing_queues_the_lots_matches_after_the_commit(db, producer, recomputed):
    company, owner, _actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    assert recomputed == []  # nothing before the commit
    commit(db)
    assert recomputed == [(lot.id, None)]


def test_draft_work_queues_nothing(db, producer, recomputed):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, assay=GOOD_ASSAY)
    services.update_lot(db, actor, lot.id, lot_terms(company.sites[0].id, title_en="Renamed"))
    commit(db)
    assert recomputed == []


@pytest.mark.parametrize(
    "change",
    [
        lambda db, actor, lot, site: services.update_lot(
            db, actor, lot.id, lot_terms(site, price=Decimal("9.00"))
        ),
        lambda db, actor, lot, site: assays.record_assay(
            db, actor, lot.id, LAB, {**GOOD_ASSAY, "Fe2O3": Decimal("46")}
        ),
        lambda db, actor, lot, site: services.reduce_quantity(db, actor, lot.id, "400"),
        lambda db, actor, lot, site: services.withdraw_lot(db, actor, lot.id),
    ],
    ids=["terms", "assay", "quantity", "withdrawn"],
)
def test_changes_to_a_published_lot_queue_its_matches(db, producer, recomputed, change):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    commit(db)
    recomputed.clear()
    change(db, actor, lot, company.sites[0].id)
    commit(db)
    assert recomputed == [(lot.id, None)]


def test_a_rolled_back_change_queues_nothing(db, producer, recomputed):
    company, owner, actor = producer
    lot = listed_lot(db, company, owner, publish=True)
    commit(db)
    recomputed.clear()
    services.withdraw_lot(db, actor, lot.id)
    db.rollback()
    assert recomputed == []


def test_a_buy_now_purchase_queues_the_lots_matches(app, db, recomputed):
    """Less tonnage left can end a match (a demand's minimum lot size): trading queues it."""
    from exchange.trading import services as trading
    from tests.support.trading import bidder, buy_now_lot

    with app.test_request_context():
        lot = buy_now_lot(db, quantity="1000", min_order="100")
        _company, _owner, buyer = bidder(db)
        commit(db)
        recomputed.clear()
        trading.buy_now(db, buyer, lot.id, Decimal("300"), "cement_iron_corrective")
        assert recomputed == []
        commit(db)
    assert recomputed == [(lot.id, None)]
