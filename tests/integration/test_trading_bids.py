"""Buy-now, bids, raises, withdrawals and sealed tenders through the services, on real databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from exchange.accounts.rules import Role
from exchange.audit.models import AuditEvent
from exchange.audit.services import verify
from exchange.errors import Conflict, Forbidden
from exchange.listings.rules import LotStatus
from exchange.trading import rules, services
from exchange.trading.models import Award, Bid, LotClosing, NoticeKind, TradeNotice
from exchange.trading.rules import BidStatus, RefusalCode
from exchange.trading.services import BidConflict, BidRefused
from tests.support.builders import actor_of, make_company
from tests.support.trading import T0, auction_lot, bidder, buy_now_lot, minutes


def events(db, lot, action=None):
    query = select(AuditEvent).where(AuditEvent.chain_key == f"lot:{lot.id}")
    if action:
        query = query.where(AuditEvent.action == action)
    return list(db.scalars(query.order_by(AuditEvent.chain_seq)))


def bid(db, actor, lot, price, quantity="50", at=T0 + minutes(10), **kw):
    return services.place_bid(
        db,
        actor,
        lot.id,
        D(price),
        D(quantity),
        kw.pop("end_use", "cement_iron_corrective"),
        now=at,
        **kw,
    ).bid


# --- buy now --------------------------------------------------------------------------------


def test_buy_now_decrements_remaining_and_awards_at_once(db):
    lot = buy_now_lot(db, price="-20.00")
    _company, _owner, actor = bidder(db)
    award = services.buy_now(db, actor, lot.id, D("300"), "road_base", now=T0)
    assert lot.remaining == D(700)
    assert (award.quantity, award.price) == (D(300), D("-20.00"))
    assert (award.source, award.bid_id) == ("buy_now", None)
    assert award.sign_by == T0 + dt.timedelta(hours=48)
    assert award.end_use == "road_base"
    [event] = events(db, lot, "trading:buy_now:purchased")
    assert '"remaining":["1000.000","700.000"]' in event.data


def test_buying_the_last_tonnes_marks_the_lot_awarded_and_then_it_is_sold_out(db):
    lot = buy_now_lot(db)
    _c, _o, actor = bidder(db)
    services.buy_now(db, actor, lot.id, D("1000"), "road_base", now=T0)
    assert lot.status is LotStatus.AWARDED and lot.remaining == 0
    record = db.scalar(select(LotClosing).where(LotClosing.lot_id == lot.id))
    assert record.allocated_quantity == D(1000)
    assert events(db, lot, "trading:lot:sold_out")
    with pytest.raises(BidConflict) as refused:
        services.buy_now(db, actor, lot.id, D("100"), "road_base", now=T0)
    assert refused.value.status == 409 and refused.value.codes == {RefusalCode.SOLD_OUT}


def test_buying_more_than_remains_is_422_unless_the_buyer_saw_more_left_then_409(db):
    lot = buy_now_lot(db, remaining="250")
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused) as invalid:
        services.buy_now(db, actor, lot.id, D("300"), "road_base", now=T0)
    assert invalid.value.status == 422
    assert invalid.value.errors["quantity"]
    with pytest.raises(BidConflict) as race:
        services.buy_now(db, actor, lot.id, D("300"), "road_base", seen_remaining=D("400"), now=T0)
    assert race.value.status == 409
    assert lot.remaining == D(250)


def test_a_tail_below_the_minimum_order_can_be_bought_whole(db):
    lot = buy_now_lot(db, remaining="40")
    _c, _o, actor = bidder(db)
    services.buy_now(db, actor, lot.id, D("40"), "road_base", now=T0)
    assert lot.status is LotStatus.AWARDED


def test_repeating_a_purchase_with_its_key_buys_once(db):
    lot = buy_now_lot(db)
    _c, _o, actor = bidder(db)
    first = services.buy_now(db, actor, lot.id, D("100"), "road_base", idempotency_key="k1", now=T0)
    again = services.buy_now(db, actor, lot.id, D("100"), "road_base", idempotency_key="k1", now=T0)
    assert first.id == again.id and lot.remaining == D(900)


def test_producer_cannot_buy_its_own_lot_and_the_attempt_is_audited(db):
    producer, owner = make_company(db, producer=True, buyer=True)
    lot = buy_now_lot(db, producer)
    with pytest.raises(BidRefused) as refused:
        services.buy_now(db, actor_of(owner, producer), lot.id, D("100"), "road_base", now=T0)
    assert refused.value.codes == {RefusalCode.OWN_LOT} and refused.value.keep
    assert '"code":"own_lot"' in events(db, lot, "trading:buy_now:refused")[0].data
    assert lot.remaining == D(1000)


def test_an_end_use_blocked_by_a_compliance_gate_is_refused_and_audited(db):
    lot = buy_now_lot(db, gated=("soil_amendment",))
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused) as refused:
        services.buy_now(db, actor, lot.id, D("100"), "soil_amendment", now=T0)
    assert refused.value.codes == {RefusalCode.END_USE_BLOCKED}
    assert refused.value.errors["end_use"]
    assert events(db, lot, "trading:buy_now:refused")


def test_a_lot_without_grading_or_assay_is_blocked_for_every_use(db):
    from tests.support.builders import make_lot

    lot = make_lot(db)
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused) as refused:
        services.buy_now(db, actor, lot.id, D("500"), "road_base", now=T0)
    assert refused.value.codes == {RefusalCode.END_USE_BLOCKED}


def test_a_lot_without_grading_rows_is_graded_from_its_assay(db):
    from tests.support.builders import make_lot

    # Leachate pH 13 is corrosive (GB 5085.1): the waste-law gate blocks every use.
    hazardous = make_lot(db, assay={"leach_pH": "13.0"})
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused):
        services.buy_now(db, actor, hazardous.id, D("500"), "road_base", now=T0)
    [event] = events(db, hazardous, "trading:buy_now:refused")
    assert "Blocked: " in event.data and "pH" in event.data


@pytest.mark.parametrize("kind", ["unverified", "viewer", "not_a_buyer", "admin"], ids=lambda k: k)
def test_only_members_of_verified_buyer_companies_with_a_trading_role_can_buy(db, kind):
    lot = buy_now_lot(db)
    if kind == "admin":
        from tests.support.builders import make_user

        actor = actor_of(make_user(db, admin=True))
    else:
        company, owner = make_company(
            db,
            verified=kind != "unverified",
            buyer=kind != "not_a_buyer",
            role=Role.VIEWER if kind == "viewer" else Role.OWNER,
        )
        actor = actor_of(owner, company, Role.VIEWER if kind == "viewer" else Role.OWNER)
    with pytest.raises(Forbidden):
        services.buy_now(db, actor, lot.id, D("100"), "road_base", now=T0)
    assert lot.remaining == D(1000)


def test_buy_now_on_an_auction_is_a_conflict(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    with pytest.raises(Conflict):
        services.buy_now(db, actor, lot.id, D("10"), "road_base", now=T0 + minutes(1))


# --- auction bids ---------------------------------------------------------------------------


def test_first_bid_at_the_start_price_is_accepted_and_audited(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    placed = bid(db, actor, lot, "100.00", "40", min_quantity=D("20"))
    assert placed.status is BidStatus.ACTIVE and placed.min_quantity == D(20)
    [event] = events(db, lot, "trading:bid:placed")
    assert f'"bid_id":{placed.id}' in event.data and '"price":"100.00"' in event.data
    assert event.actor_company_id == actor.company_id


@pytest.mark.parametrize(
    ("price", "quantity", "codes"),
    [
        ("95.00", "50", {RefusalCode.PRICE_BELOW_MINIMUM, RefusalCode.PRICE_OFF_GRID}),
        ("102.00", "50", {RefusalCode.PRICE_OFF_GRID}),
        ("100.00", "5", {RefusalCode.QUANTITY_BELOW_MINIMUM}),
        ("100.00", "101", {RefusalCode.QUANTITY_ABOVE_LOT}),
        ("100.00", "10.0005", {RefusalCode.QUANTITY_TOO_PRECISE}),
    ],
)
def test_invalid_bids_are_refused_with_field_reasons_and_nothing_is_stored(
    db, price, quantity, codes
):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused) as refused:
        bid(db, actor, lot, price, quantity)
    assert refused.value.status == 422
    assert refused.value.codes == codes
    assert set(refused.value.errors) <= {"price", "quantity", "min_quantity"}
    assert db.scalar(select(func.count()).select_from(Bid).where(Bid.lot_id == lot.id)) == 0


def test_once_subscribed_the_minimum_is_one_increment_above_the_marginal_price(db):
    lot = auction_lot(db)
    (_a, _o, a), (_b, _p, b), (_c, _q, c) = bidder(db), bidder(db), bidder(db)
    bid(db, a, lot, "120.00", "60")
    bid(db, b, lot, "110.00", "40")  # covered at 110
    with pytest.raises(BidRefused) as refused:
        bid(db, c, lot, "110.00", "40")
    assert refused.value.codes == {RefusalCode.PRICE_BELOW_MINIMUM}
    assert "115" in refused.value.errors["price"][0]
    assert bid(db, c, lot, "115.00", "40").status is BidStatus.ACTIVE


def test_bids_before_opening_are_422_and_after_the_close_409(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused) as early:
        bid(db, actor, lot, "100.00", at=T0 - minutes(1))
    assert early.value.codes == {RefusalCode.LOT_NOT_OPEN}
    with pytest.raises(BidConflict) as late:
        bid(db, actor, lot, "100.00", at=T0 + minutes(60))
    assert late.value.status == 409 and late.value.codes == {RefusalCode.LOT_CLOSED}


def test_an_accepted_bid_in_the_last_minutes_extends_the_close_and_is_audited(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    result = services.place_bid(
        db, actor, lot.id, D("100.00"), D("50"), "steel", now=T0 + minutes(57)
    )
    assert result.extended_to == T0 + minutes(62) == lot.closes_at
    assert events(db, lot, "trading:lot:extended")


def test_a_refused_bid_never_extends_the_close(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    with pytest.raises(BidRefused):
        bid(db, actor, lot, "90.00", at=T0 + minutes(58))
    assert lot.closes_at == T0 + minutes(60)


def test_extensions_stop_at_the_hard_close(db):
    lot = auction_lot(db, hard_close_at=T0 + minutes(63))
    (_a, _o, a), (_b, _p, b) = bidder(db), bidder(db)
    bid(db, a, lot, "100.00", "100", at=T0 + minutes(59))
    assert lot.closes_at == T0 + minutes(63)
    bid(db, b, lot, "105.00", "100", at=T0 + minutes(62))
    assert lot.closes_at == T0 + minutes(63)
    with pytest.raises(BidConflict):
        bid(db, a, lot, "110.00", "100", at=T0 + minutes(63))


def test_a_second_bid_raises_the_companys_live_bid(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    first = bid(db, actor, lot, "100.00", "50")
    second = bid(db, actor, lot, "105.00", "60", replaces_bid_id=first.id)
    assert first.status is BidStatus.SUPERSEDED and first.superseded_by.id == second.id
    assert second.supersedes_id == first.id
    assert events(db, lot, "trading:bid:raised")


@pytest.mark.parametrize(
    ("price", "quantity", "min_quantity", "code"),
    [
        ("100.00", "50", None, RefusalCode.PRICE_NOT_RAISED),
        ("105.00", "40", None, RefusalCode.QUANTITY_REDUCED),
        ("105.00", "50", "30", RefusalCode.MIN_QUANTITY_RAISED),
    ],
)
def test_a_raise_cannot_back_out_of_any_part_of_the_bid(db, price, quantity, min_quantity, code):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    first = bid(db, actor, lot, "100.00", "50", min_quantity=D("20"))
    with pytest.raises(BidRefused) as refused:
        bid(db, actor, lot, price, quantity, min_quantity=D(min_quantity) if min_quantity else None)
    assert code in refused.value.codes
    assert first.status is BidStatus.ACTIVE


def test_raising_a_bid_that_is_no_longer_live_is_a_conflict(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    first = bid(db, actor, lot, "100.00", "50")
    bid(db, actor, lot, "105.00", "50", replaces_bid_id=first.id)
    with pytest.raises(BidConflict) as stale:
        bid(db, actor, lot, "110.00", "50", replaces_bid_id=first.id)
    assert stale.value.codes == {RefusalCode.BID_NOT_LIVE}


def test_a_bid_made_stale_by_a_newer_bid_is_a_409_lost_race_not_a_422(db):
    lot = auction_lot(db)
    (_a, _o, a), (_b, _p, b), (_c, _q, c) = bidder(db), bidder(db), bidder(db)
    first = bid(db, a, lot, "100.00", "60")
    seen = first.id  # c's page showed the lot at this version: the minimum was 100
    bid(db, b, lot, "100.00", "40")  # now covered: the minimum is 105
    with pytest.raises(BidConflict) as race:
        bid(db, c, lot, "100.00", "40", seen_version=seen)
    assert race.value.codes == {RefusalCode.LOST_RACE} and "105" in race.value.message
    latest = db.scalar(select(func.max(Bid.id)).where(Bid.lot_id == lot.id))
    with pytest.raises(BidRefused):
        bid(db, c, lot, "100.00", "40", seen_version=latest)


def test_repeating_a_bid_with_its_key_bids_once(db):
    lot = auction_lot(db)
    _c, _o, actor = bidder(db)
    first = services.place_bid(
        db, actor, lot.id, D("100"), D("50"), "steel", idempotency_key="x", now=T0 + minutes(5)
    )
    again = services.place_bid(
        db, actor, lot.id, D("100"), D("50"), "steel", idempotency_key="x", now=T0 + minutes(6)
    )
    assert again.replayed and again.bid.id == first.bid.id
    assert db.scalar(select(func.count()).select_from(Bid).where(Bid.lot_id == lot.id)) == 1


def test_the_producer_cannot_bid_on_its_own_lot(db):
    producer, owner = make_company(db, producer=True, buyer=True)
    lot = auction_lot(db, producer)
    with pytest.raises(BidRefused) as refused:
        bid(db, actor_of(owner, producer), lot, "100.00")
    assert refused.value.codes == {RefusalCode.OWN_LOT}
    assert events(db, lot, "trading:bid:refused")


def test_outbid_and_winning_again_are_noticed_to_the_bidders_concerned(db):
    lot = auction_lot(db)
    (ca, _o, a), (cb, _p, b) = bidder(db), bidder(db)
    first = bid(db, a, lot, "100.00", "100")
    second = bid(db, b, lot, "105.00", "100")
    notices = list(db.scalars(select(TradeNotice).where(TradeNotice.lot_id == lot.id)))
    assert [(n.company_id, n.kind, n.bid_id) for n in notices] == [
        (ca.id, NoticeKind.OUTBID, first.id)
    ]
    # a withdraws nothing (it is outbid), b cannot withdraw (winning); a raises and wins back.
    bid(db, a, lot, "110.00", "100", replaces_bid_id=first.id)
    kinds = [
        (n.company_id, n.kind) for n in db.scalars(select(TradeNotice).order_by(TradeNotice.id))
    ]
    assert kinds[-1] == (cb.id, NoticeKind.OUTBID)
    assert second.status is BidStatus.ACTIVE


def test_withdrawal_is_refused_while_winning_and_allowed_once_outbid(db):
    lot = auction_lot(db)
    (_a, _o, a), (_b, _p, b) = bidder(db), bidder(db)
    first = bid(db, a, lot, "100.00", "100")
    with pytest.raises(BidRefused) as winning:
        services.withdraw_bid(db, a, first.id, now=T0 + minutes(11))
    assert winning.value.codes == {RefusalCode.BID_WINNING}
    bid(db, b, lot, "105.00", "100")
    withdrawn = services.withdraw_bid(db, a, first.id, now=T0 + minutes(12))
    assert withdrawn.status is BidStatus.WITHDRAWN
    assert events(db, lot, "trading:bid:withdrawn")
    with pytest.raises(BidConflict):
        services.withdraw_bid(db, a, first.id, now=T0 + minutes(13))


def test_another_company_cannot_withdraw_my_bid(db):
    from exchange.errors import NotFound

    lot = auction_lot(db)
    (_a, _o, a), (_b, _p, b) = bidder(db), bidder(db)
    mine = bid(db, a, lot, "100.00", "50")
    with pytest.raises(NotFound):
        services.withdraw_bid(db, b, mine.id, now=T0 + minutes(11))


# --- sealed tenders -------------------------------------------------------------------------


def test_a_tender_bid_is_sealed_in_the_audit_chain(db):
    lot = auction_lot(db, mode="tender", increment=None)
    _c, _o, actor = bidder(db)
    placed = bid(db, actor, lot, "123.45", "50")
    [event] = events(db, lot, "trading:bid:sealed")
    assert "123.45" not in event.data and '"commitment":' in event.data
    assert event.actor_company_id is None and event.actor_user_id is None
    commitment = rules.seal(placed.seal_nonce, services.sealed_content(placed))
    assert commitment in event.data


def test_a_tender_bid_can_be_revised_down_and_withdrawn_even_if_it_would_win(db):
    lot = auction_lot(db, mode="tender", increment=None)
    _c, _o, actor = bidder(db)
    first = bid(db, actor, lot, "150.00", "100")
    second = bid(db, actor, lot, "120.00", "100")
    assert first.status is BidStatus.SUPERSEDED and second.supersedes_id == first.id
    services.withdraw_bid(db, actor, second.id, now=T0 + minutes(20))
    assert second.status is BidStatus.WITHDRAWN


def test_tenders_are_never_extended_by_late_bids(db):
    lot = auction_lot(db, mode="tender", increment=None)
    _c, _o, actor = bidder(db)
    bid(db, actor, lot, "100.00", at=T0 + minutes(59))
    assert lot.closes_at == T0 + minutes(60)


def test_the_database_refuses_two_live_bids_of_one_company_on_one_lot(db):
    lot = auction_lot(db, mode="tender", increment=None)
    company, _o, actor = bidder(db)
    bid(db, actor, lot, "100.00")
    nested = db.begin_nested()
    db.add(
        Bid(
            lot_id=lot.id,
            company_id=company.id,
            price=D("101"),
            quantity=D("20"),
            end_use="steel",
            status=BidStatus.ACTIVE,
            placed_at=T0,
            filled_quantity=D(0),
        )
    )
    with pytest.raises(IntegrityError):
        db.flush()
    nested.rollback()


def test_the_trading_trail_verifies(db):
    lot = auction_lot(db)
    (_a, _o, a), (_b, _p, b) = bidder(db), bidder(db)
    bid(db, a, lot, "100.00", "100")
    bid(db, b, lot, "105.00", "100", at=T0 + minutes(58))
    assert verify(db, chain_key=f"lot:{lot.id}").ok
    assert db.scalar(select(func.count()).select_from(Award)) is not None
