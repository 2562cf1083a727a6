"""Unit tests for the pure trading rules: bids, anti-sniping, allocation, ladder, buy-now."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.trading.rules import (
    AuctionTerms,
    BidStatus,
    BidView,
    RefusalCode,
    SaleMode,
    allocate,
    award_ladder_next,
    bid_outcome,
    bid_superseded_by,
    can_withdraw,
    check_price_on_grid,
    effective_min,
    extended_close,
    is_open,
    marginal_price,
    minimum_next_price,
    rank_bids,
    refusal,
    remaining_after,
    tender_visible_to,
    validate_bid,
    validate_buy_now,
)

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
PRODUCER = 1


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def make_terms(**changes: object) -> AuctionTerms:
    base = AuctionTerms(
        start_price=D("100.00"),
        reserve_price=None,
        min_increment=D("5.00"),
        opens_at=T0,
        closes_at=T0 + minutes(60),
        hard_close_at=T0 + minutes(90),
        anti_snipe_minutes=5,
        lot_quantity=D(100),
        min_order=D(10),
    )
    return replace(base, **changes)


def bid(
    id: int, price: str, qty: str, *, company: int | None = None, at: float = 0, min_q=None
) -> BidView:
    return BidView(
        id=id,
        company_id=100 + id if company is None else company,
        price=D(price),
        quantity=D(qty),
        placed_at=T0 + minutes(at),
        min_quantity=None if min_q is None else D(min_q),
    )


def codes(refusals) -> set[RefusalCode]:
    return {r.code for r in refusals}


def check(terms, live, price, qty, *, now=None, **kw):
    return validate_bid(terms, live, 50, PRODUCER, D(price), D(qty), now or T0 + minutes(30), **kw)


# --- terms ------------------------------------------------------------------------------


def test_terms_refuse_float_prices():
    with pytest.raises(TypeError):
        make_terms(start_price=100.0)


def test_terms_refuse_naive_times():
    with pytest.raises(ValueError):
        make_terms(opens_at=datetime(2027, 3, 1))


def test_terms_refuse_a_hard_stop_before_the_close():
    with pytest.raises(ValueError):
        make_terms(hard_close_at=T0 + minutes(30))


def test_terms_refuse_a_min_order_above_the_lot():
    with pytest.raises(ValueError):
        make_terms(min_order=D(101))


def test_bid_view_refuses_float_quantity():
    with pytest.raises(TypeError):
        BidView(1, 2, D(1), 5.0, T0)


# --- minimum next price and the grid --------------------------------------------------------


def test_minimum_next_price_is_start_price_while_undersubscribed():
    live = [bid(1, "150", "60"), bid(2, "120", "39")]
    assert marginal_price(D(100), live) is None
    assert minimum_next_price(make_terms(), live) == D("100.00")


def test_minimum_next_price_is_marginal_price_plus_increment_once_subscribed():
    live = [bid(1, "150", "60"), bid(2, "120", "40"), bid(3, "130", "30")]
    # Ranked 150 (60 t), 130 (30 t), 120 (40 t): the lot is covered at the 120 bid.
    assert marginal_price(D(100), live) == D(120)
    assert minimum_next_price(make_terms(), live) == D("125.00")


def test_negative_minimum_next_price_rises_toward_zero():
    terms = make_terms(start_price=D("-80.00"), min_increment=D("2.50"))
    live = [bid(1, "-60", "100")]
    assert minimum_next_price(terms, live) == D("-57.50")


@pytest.mark.parametrize(
    ("price", "on_grid"),
    [("100", True), ("105", True), ("250.00", True), ("102.5", False), ("95", False)],
)
def test_price_on_grid_means_start_plus_whole_increments(price, on_grid):
    assert check_price_on_grid(make_terms(), D(price)) is on_grid


def test_grid_works_for_negative_disposal_prices():
    terms = make_terms(start_price=D("-50.00"), min_increment=D("2.50"))
    assert check_price_on_grid(terms, D("-47.50"))
    assert check_price_on_grid(terms, D("0"))
    assert not check_price_on_grid(terms, D("-48.00"))
    assert not check_price_on_grid(terms, D("-52.50"))


# --- validate_bid ---------------------------------------------------------------------------


def test_valid_bid_has_no_refusals():
    assert check(make_terms(), [], "100", "10") == []


def test_bid_before_opening_is_refused_as_not_open():
    (only,) = check(make_terms(), [], "100", "10", now=T0 - minutes(1))
    assert only.code is RefusalCode.LOT_NOT_OPEN
    assert only.params["opens_at"] == T0.isoformat()


def test_bid_at_the_close_is_refused_as_closed():
    (only,) = check(make_terms(), [], "100", "10", now=T0 + minutes(60))
    assert only.code is RefusalCode.LOT_CLOSED


def test_bid_after_scheduled_close_is_accepted_while_extended():
    terms = make_terms()
    now = T0 + minutes(62)
    assert check(terms, [], "100", "10", now=now, current_close=T0 + minutes(64)) == []
    assert is_open(terms, now, T0 + minutes(64))
    assert not is_open(terms, now)


def test_producer_bidding_on_own_lot_is_refused():
    refusals = validate_bid(make_terms(), [], PRODUCER, PRODUCER, D(100), D(10), T0 + minutes(1))
    assert codes(refusals) == {RefusalCode.OWN_LOT}


def test_bid_below_minimum_next_price_is_refused_with_the_minimum():
    live = [bid(1, "120", "100")]
    (only,) = check(make_terms(), live, "120", "10")
    assert only.code is RefusalCode.PRICE_BELOW_MINIMUM
    assert only.params == {"minimum": "125.00"}
    assert only.field_name == "price"
    assert "125.00" in only.message


def test_bid_below_increment_is_refused():
    live = [bid(1, "120", "100")]
    refusals = check(make_terms(), live, "122.50", "10")
    assert codes(refusals) == {RefusalCode.PRICE_BELOW_MINIMUM, RefusalCode.PRICE_OFF_GRID}


def test_off_grid_bid_above_the_minimum_is_refused():
    assert codes(check(make_terms(), [], "101", "10")) == {RefusalCode.PRICE_OFF_GRID}


def test_quantity_below_min_order_is_refused():
    assert codes(check(make_terms(), [], "100", "9.999")) == {RefusalCode.QUANTITY_BELOW_MINIMUM}


def test_quantity_above_the_lot_is_refused():
    assert codes(check(make_terms(), [], "100", "100.001")) == {RefusalCode.QUANTITY_ABOVE_LOT}


def test_quantity_finer_than_a_kilogram_is_refused():
    assert codes(check(make_terms(), [], "100", "10.0005")) == {RefusalCode.QUANTITY_TOO_PRECISE}
    assert check(make_terms(), [], "100", "10.5000") == []


def test_price_and_quantity_problems_are_reported_together():
    refusals = check(make_terms(), [], "99", "5")
    assert codes(refusals) == {
        RefusalCode.PRICE_BELOW_MINIMUM,
        RefusalCode.PRICE_OFF_GRID,
        RefusalCode.QUANTITY_BELOW_MINIMUM,
    }


def test_min_quantity_outside_min_order_and_quantity_is_refused():
    assert codes(check(make_terms(), [], "100", "50", min_quantity=D(5))) == {
        RefusalCode.MIN_QUANTITY_OUT_OF_RANGE
    }
    assert codes(check(make_terms(), [], "100", "50", min_quantity=D(51))) == {
        RefusalCode.MIN_QUANTITY_OUT_OF_RANGE
    }
    assert check(make_terms(), [], "100", "50", min_quantity=D(50)) == []


def test_revised_auction_bid_must_raise_by_an_increment():
    mine = bid(1, "120", "40", company=50)
    live = [mine, bid(2, "150", "60")]
    refusals = check(make_terms(), live, "120", "40", replacing=mine)
    assert codes(refusals) == {RefusalCode.PRICE_NOT_RAISED}
    assert check(make_terms(), live, "125", "40", replacing=mine) == []


def test_revision_leaves_the_replaced_bid_out_of_the_minimum():
    mine = bid(1, "120", "40", company=50)
    live = [mine, bid(2, "150", "60")]
    # With the old bid counted the minimum would be 125; without it the lot is undersubscribed.
    assert minimum_next_price(make_terms(), live) == D(125)
    refusals = check(make_terms(), live, "125", "40", replacing=mine)
    assert refusals == []


def test_revising_another_companys_bid_is_a_programming_error():
    with pytest.raises(ValueError):
        check(make_terms(), [bid(1, "120", "40")], "125", "40", replacing=bid(1, "120", "40"))


def test_tender_minimum_is_start_price_whatever_the_hidden_bids():
    live = [bid(1, "500", "100")]
    assert check(make_terms(), live, "100", "10", mode=SaleMode.TENDER) == []


def test_tender_revision_may_lower_the_price():
    mine = bid(1, "150", "40", company=50)
    assert check(make_terms(), [mine], "100", "40", mode=SaleMode.TENDER, replacing=mine) == []


def test_second_tender_bid_must_name_the_bid_it_supersedes():
    with pytest.raises(ValueError):
        check(make_terms(), [bid(1, "150", "40", company=50)], "155", "40", mode=SaleMode.TENDER)


def test_buy_now_is_not_validated_as_a_bid():
    with pytest.raises(ValueError):
        check(make_terms(), [], "100", "10", mode=SaleMode.BUY_NOW)


def test_service_level_gates_have_codes_and_messages():
    for code in ("company_unverified", "end_use_blocked", "rate_limited", "lost_race"):
        assert RefusalCode(code).value == code
    blocked = refusal(RefusalCode.END_USE_BLOCKED, end_use="soil_amendment")
    assert blocked.message == "This lot is not permitted for the end use soil_amendment."
    assert blocked.params == {"end_use": "soil_amendment"}


def test_every_refusal_code_has_a_message():
    needs = {
        RefusalCode.LOT_NOT_OPEN: {"opens_at": T0},
        RefusalCode.LOT_CLOSED: {"closed_at": T0},
        RefusalCode.END_USE_BLOCKED: {"end_use": "x"},
        RefusalCode.PRICE_BELOW_MINIMUM: {"minimum": 1},
        RefusalCode.PRICE_OFF_GRID: {"start": 1, "increment": 1},
        RefusalCode.PRICE_NOT_RAISED: {"minimum": 1},
        RefusalCode.QUANTITY_BELOW_MINIMUM: {"minimum": 1},
        RefusalCode.QUANTITY_ABOVE_LOT: {"maximum": 1},
        RefusalCode.QUANTITY_ABOVE_REMAINING: {"maximum": 1},
        RefusalCode.MIN_QUANTITY_OUT_OF_RANGE: {"low": 1, "high": 2},
        RefusalCode.QUANTITY_REDUCED: {"minimum": 1},
        RefusalCode.MIN_QUANTITY_RAISED: {"maximum": 1},
    }
    for code in RefusalCode:
        assert refusal(code, **needs.get(code, {})).message


# --- anti-sniping ---------------------------------------------------------------------------


def test_bid_in_last_minutes_extends_close_to_n_minutes_after_the_bid():
    terms = make_terms()
    close = T0 + minutes(60)
    assert extended_close(terms, close, close - minutes(2)) == close + minutes(3)


def test_bid_before_the_anti_snipe_window_does_not_extend():
    close = T0 + minutes(60)
    assert extended_close(make_terms(), close, close - minutes(5.01)) == close


def test_bid_at_the_start_of_the_window_leaves_the_close_where_it_is():
    close = T0 + minutes(60)
    assert extended_close(make_terms(), close, close - minutes(5)) == close


def test_extensions_chain_from_the_extended_close():
    terms = make_terms()
    close = extended_close(terms, T0 + minutes(60), T0 + minutes(59))
    assert close == T0 + minutes(64)
    assert extended_close(terms, close, T0 + minutes(63)) == T0 + minutes(68)


def test_anti_snipe_never_passes_hard_stop():
    terms = make_terms(hard_close_at=T0 + minutes(62))
    assert extended_close(terms, T0 + minutes(60), T0 + minutes(59)) == T0 + minutes(62)


def test_zero_anti_snipe_minutes_never_extends():
    terms = make_terms(anti_snipe_minutes=0)
    assert extended_close(terms, T0 + minutes(60), T0 + minutes(59.9)) == T0 + minutes(60)


def test_a_bid_at_the_close_cannot_extend_it():
    with pytest.raises(ValueError):
        extended_close(make_terms(), T0 + minutes(60), T0 + minutes(60))


@given(
    close_offset=st.integers(1, 90 * 60),
    before=st.integers(1, 90 * 60),
    snipe=st.integers(0, 30),
)
def test_extended_close_stays_between_current_close_and_hard_stop(close_offset, before, snipe):
    terms = make_terms(anti_snipe_minutes=snipe)
    current = min(T0 + timedelta(seconds=close_offset), terms.hard_close_at)
    current = max(current, terms.closes_at)
    accepted = current - timedelta(seconds=before)
    new = extended_close(terms, current, accepted)
    assert current <= new <= terms.hard_close_at
    if snipe and accepted >= current - minutes(snipe):
        assert new == min(accepted + minutes(snipe), terms.hard_close_at)
    else:
        assert new == current


# --- allocation -----------------------------------------------------------------------------


def fills_of(allocation) -> dict[int, D]:
    return {f.bid_id: f.quantity for f in allocation.fills}


def test_allocation_fills_by_price_then_time_and_pays_each_its_bid():
    bids = [bid(1, "110", "40", at=2), bid(2, "120", "40", at=3), bid(3, "110", "40", at=1)]
    result = allocate(D(100), bids, min_order=D(10))
    assert [f.bid_id for f in result.fills] == [2, 3, 1]
    assert fills_of(result) == {2: D(40), 3: D(40), 1: D(20)}
    assert result.total_value == D(120 * 40 + 110 * 40 + 110 * 20)
    assert result.unallocated == 0


def test_equal_price_and_time_is_broken_by_bid_id():
    bids = [bid(7, "100", "80"), bid(3, "100", "80")]
    assert [b.id for b in rank_bids(bids)] == [3, 7]


def test_negative_prices_rank_higher_when_less_negative():
    bids = [bid(1, "-60", "50", at=0), bid(2, "-20", "50", at=5), bid(3, "-35", "50", at=1)]
    result = allocate(D(100), bids)
    assert fills_of(result) == {2: D(50), 3: D(50), 1: D(0)}
    # A disposal: the producer pays 20 x 50 + 35 x 50.
    assert result.total_value == D(-2750)


def test_marginal_bid_is_partly_filled_when_the_part_meets_its_minimum():
    bids = [bid(1, "130", "70"), bid(2, "120", "50", min_q="30")]
    assert fills_of(allocate(D(100), bids)) == {1: D(70), 2: D(30)}


def test_marginal_bid_below_its_minimum_gets_nothing_and_a_smaller_bid_takes_the_rest():
    bids = [bid(1, "130", "70"), bid(2, "120", "50", min_q="40"), bid(3, "110", "25")]
    result = allocate(D(100), bids, min_order=D(10))
    assert fills_of(result) == {1: D(70), 2: D(0), 3: D(25)}
    assert result.unallocated == D(5)
    assert [f.bid_id for f in result.winners] == [1, 3]


def test_bid_minimum_defaults_to_lot_min_order_then_to_the_whole_bid():
    b = bid(1, "100", "50")
    assert effective_min(b, D(10)) == D(10)
    assert effective_min(b, None) == D(50)
    assert effective_min(bid(2, "100", "50", min_q="20"), D(10)) == D(20)
    assert effective_min(bid(3, "100", "5"), D(10)) == D(5)
    assert fills_of(allocate(D(30), [b])) == {1: D(0)}
    assert fills_of(allocate(D(30), [b], min_order=D(10))) == {1: D(30)}


def test_bids_below_reserve_get_nothing_and_the_below_reserve_option_is_offered():
    bids = [bid(1, "130", "50"), bid(2, "90", "50")]
    result = allocate(D(100), bids, D("100.00"))
    assert fills_of(result) == {1: D(50), 2: D(0)}
    assert result.unallocated == D(50)
    assert result.reserve_met is False
    option = result.if_below_reserve_accepted
    assert option is not None
    assert fills_of(option) == {1: D(50), 2: D(50)}
    assert option.total_value == D(130 * 50 + 90 * 50)


def test_reserve_is_met_when_every_winner_is_at_or_above_it():
    bids = [bid(1, "130", "60"), bid(2, "100", "40"), bid(3, "90", "50")]
    result = allocate(D(100), bids, D(100))
    assert result.reserve_met is True
    assert result.if_below_reserve_accepted is None
    assert fills_of(result) == {1: D(60), 2: D(40), 3: D(0)}


def test_no_bids_leaves_the_lot_unallocated_without_failing_the_reserve():
    result = allocate(D(100), [], D(100))
    assert result.fills == ()
    assert result.unallocated == D(100)
    assert result.total_value == 0
    assert result.reserve_met is True


def test_allocation_refuses_duplicate_bid_ids():
    with pytest.raises(ValueError):
        allocate(D(100), [bid(1, "100", "10"), bid(1, "110", "10")])


def test_bid_outcome_names_won_partly_won_and_lost():
    b = bid(1, "100", "50")
    assert bid_outcome(b, D(50)) is BidStatus.WON
    assert bid_outcome(b, D(20)) is BidStatus.PARTIALLY_WON
    assert bid_outcome(b, D(0)) is BidStatus.LOST


# --- allocation properties ------------------------------------------------------------------

prices = st.integers(-40, 40).map(lambda k: D(k) * D("2.5"))
quarters = st.integers(1, 400).map(lambda k: D(k) / 4)


@st.composite
def bid_lists(draw, max_size: int = 12) -> list[BidView]:
    bids = []
    for i in range(draw(st.integers(0, max_size))):
        qty = draw(quarters)
        min_q = draw(st.none() | st.integers(1, int(qty * 4)).map(lambda k: D(k) / 4))
        placed = T0 + timedelta(seconds=draw(st.integers(0, 600)))
        bids.append(BidView(i + 1, draw(st.integers(2, 8)), draw(prices), qty, placed, min_q))
    return bids


min_orders = st.none() | st.integers(1, 40).map(lambda k: D(k) / 4)
reserves = st.none() | prices


@given(lot=quarters, bids=bid_lists(), min_order=min_orders, reserve=reserves)
def test_allocation_invariants(lot, bids, min_order, reserve):
    result = allocate(lot, bids, reserve, min_order=min_order)
    by_id = {b.id: b for b in bids}
    filled = sum((f.quantity for f in result.fills), D(0))
    # Never more than the lot, and the leftover is accounted for.
    assert filled <= lot
    assert result.unallocated == lot - filled
    # Every fill is nothing, the whole bid, or at least the bid's minimum.
    for f in result.fills:
        b = by_id[f.bid_id]
        assert f.quantity in (0, b.quantity) or effective_min(b, min_order) <= f.quantity
        assert f.quantity <= b.quantity
        assert f.price == b.price
        if reserve is not None and f.quantity:
            assert f.price >= reserve
    # Pay-your-bid: the value is the signed sum of price x filled.
    assert result.total_value == sum((f.price * f.quantity for f in result.fills), D(0))


@given(bids=bid_lists())
def test_ranking_is_price_descending_then_earliest_first(bids):
    ranked = rank_bids(bids)
    for a, b in itertools.pairwise(ranked):
        assert a.price > b.price or (a.price == b.price and a.placed_at <= b.placed_at)


@given(lot=quarters, bids=bid_lists(), min_order=min_orders)
def test_a_better_bid_is_never_filled_less_unless_its_own_minimum_stops_it(lot, bids, min_order):
    result = allocate(lot, bids, min_order=min_order)
    ranked = rank_bids(bids)
    for a, b in itertools.combinations(ranked, 2):
        got_a, got_b = result.filled(a.id), result.filled(b.id)
        if got_a < got_b and got_a < a.quantity:
            # a was refused a part it would take: what b got was smaller than a's minimum.
            assert got_a == 0
            assert got_b < effective_min(a, min_order)


@given(lot=quarters, bids=bid_lists(), min_order=min_orders)
def test_no_unfilled_bid_could_have_used_the_leftover_tonnage(lot, bids, min_order):
    result = allocate(lot, bids, min_order=min_order)
    for b in bids:
        if result.filled(b.id) == 0:
            assert result.unallocated < effective_min(b, min_order)


@given(lot=quarters, bids=bid_lists(), min_order=min_orders, data=st.data())
def test_allocation_does_not_depend_on_the_order_bids_are_given(lot, bids, min_order, data):
    shuffled = data.draw(st.permutations(bids))
    assert allocate(lot, shuffled, min_order=min_order) == allocate(lot, bids, min_order=min_order)


@given(lot=quarters, bids=bid_lists(), reserve=prices)
def test_below_reserve_option_is_the_allocation_without_reserve(lot, bids, reserve):
    result = allocate(lot, bids, reserve)
    if result.reserve_met:
        assert result == replace(allocate(lot, bids), reserve_met=True)
    else:
        assert result.if_below_reserve_accepted == allocate(lot, bids)
        assert any(f.price < reserve for f in allocate(lot, bids).winners)


@given(lot=quarters, bids=bid_lists(), new=bid_lists(max_size=3))
def test_minimum_next_price_never_falls_as_bids_arrive(lot, bids, new):
    terms = make_terms(start_price=D(-100), min_increment=D("2.5"), lot_quantity=lot, min_order=lot)
    extra = [replace(b, id=b.id + 1000) for b in new]
    assert minimum_next_price(terms, bids + extra) >= minimum_next_price(terms, bids)


# --- award ladder ---------------------------------------------------------------------------


LADDER_BIDS = [
    bid(1, "150", "60"),
    bid(2, "140", "40"),
    bid(3, "130", "50", min_q="45"),
    bid(4, "120", "30"),
    bid(5, "110", "60"),
]


def test_lapsed_award_passes_to_next_unawarded_bid_skipping_a_too_large_minimum():
    first = allocate(D(100), LADDER_BIDS, min_order=D(10))
    assert fills_of(first) == {1: D(60), 2: D(40), 3: D(0), 4: D(0), 5: D(0)}
    # Bid 2 does not sign: 40 t are freed; bid 3 wants at least 45, so 4 takes 30 and 5 the rest.
    new = award_ladder_next(first.winners, {2}, LADDER_BIDS, min_order=D(10))
    assert [(f.bid_id, f.quantity) for f in new] == [(4, D(30)), (5, D(10))]


def test_ladder_never_awards_a_bid_twice_across_lapses():
    first = allocate(D(100), LADDER_BIDS, min_order=D(10))
    step = award_ladder_next(first.winners, {2}, LADDER_BIDS, min_order=D(10))
    awards = first.winners + step
    again = award_ladder_next(awards, {4}, LADDER_BIDS, min_order=D(10))
    # 30 t freed: bid 2 lapsed and bid 5 already holds an award, bid 3 wants at least 45.
    assert again == ()
    wider = award_ladder_next(awards, {1, 4}, LADDER_BIDS, min_order=D(10))
    assert [(f.bid_id, f.quantity) for f in wider] == [(3, D(50))]


def test_ladder_does_not_top_up_a_partly_filled_winner():
    bids = [bid(1, "150", "60"), bid(2, "140", "60"), bid(3, "100", "20")]
    first = allocate(D(100), bids, min_order=D(10))
    assert fills_of(first) == {1: D(60), 2: D(40), 3: D(0)}
    new = award_ladder_next(first.winners, {1}, bids, min_order=D(10))
    assert [(f.bid_id, f.quantity) for f in new] == [(3, D(20))]


def test_ladder_respects_the_reserve_unless_the_producer_waived_it():
    bids = [bid(1, "150", "100"), bid(2, "90", "100")]
    first = allocate(D(100), bids, D(100))
    assert award_ladder_next(first.winners, {1}, bids, reserve_price=D(100)) == ()
    waived = award_ladder_next(first.winners, {1}, bids)
    assert [(f.bid_id, f.quantity) for f in waived] == [(2, D(100))]


def test_exhausted_ladder_returns_no_award():
    bids = [bid(1, "150", "100")]
    first = allocate(D(100), bids)
    assert award_ladder_next(first.winners, {1}, bids) == ()


def test_only_awarded_bids_can_lapse():
    first = allocate(D(100), LADDER_BIDS, min_order=D(10))
    with pytest.raises(ValueError):
        award_ladder_next(first.winners, {5}, LADDER_BIDS)


@given(lot=quarters, bids=bid_lists(), min_order=min_orders, data=st.data())
def test_ladder_never_hands_out_more_than_was_freed(lot, bids, min_order, data):
    first = allocate(lot, bids, min_order=min_order)
    winners = first.winners
    lapsed = data.draw(st.sets(st.sampled_from([w.bid_id for w in winners]))) if winners else set()
    new = award_ladder_next(winners, lapsed, bids, min_order=min_order)
    freed = sum((w.quantity for w in winners if w.bid_id in lapsed), D(0))
    assert sum((f.quantity for f in new), D(0)) <= freed
    assert not {f.bid_id for f in new} & {w.bid_id for w in winners}
    by_id = {b.id: b for b in bids}
    for f in new:
        b = by_id[f.bid_id]
        assert f.quantity == b.quantity or f.quantity >= effective_min(b, min_order)


# --- sealed tenders -------------------------------------------------------------------------


def test_revised_tender_bid_supersedes_the_earlier_one():
    mine = bid(1, "150", "40", company=50)
    assert bid_superseded_by([mine, bid(2, "160", "40")], 50) == mine


def test_first_tender_bid_supersedes_nothing():
    assert bid_superseded_by([bid(2, "160", "40")], 50) is None


def test_two_live_tender_bids_for_one_company_break_the_invariant():
    with pytest.raises(ValueError):
        bid_superseded_by([bid(1, "150", "40", company=50), bid(2, "150", "40", company=50)], 50)


@pytest.mark.parametrize(
    ("viewer", "closed", "owner_of_bid", "admin", "visible"),
    [
        (PRODUCER, False, 7, False, False),  # the producer waits for the close too
        (PRODUCER, True, 7, False, True),
        (8, False, 7, False, False),  # a rival bidder never sees another's bid
        (8, True, 7, False, False),
        (7, False, 7, False, True),  # a bidder always sees its own
        (None, False, 7, True, False),  # administrators wait for the close too
        (None, True, 7, True, True),
        (None, True, 7, False, False),  # anonymous
        (PRODUCER, True, None, False, True),  # all bids on the lot, after the close
    ],
)
def test_sealed_bids_are_visible_only_as_the_tender_rules_say(
    viewer, closed, owner_of_bid, admin, visible
):
    assert (
        tender_visible_to(
            viewer, PRODUCER, closed, bid_company_id=owner_of_bid, viewer_is_admin=admin
        )
        is visible
    )


# --- buy-now --------------------------------------------------------------------------------


def test_buy_now_between_min_order_and_remaining_is_accepted():
    assert validate_buy_now(D(100), D(10), D(10)) == []
    assert validate_buy_now(D(100), D(10), D(100)) == []


def test_buy_now_below_min_order_is_refused():
    assert codes(validate_buy_now(D(100), D(10), D("9.5"))) == {RefusalCode.QUANTITY_BELOW_MINIMUM}


def test_buy_now_above_remaining_is_refused():
    (only,) = validate_buy_now(D(40), D(10), D(41))
    assert only.code is RefusalCode.QUANTITY_ABOVE_REMAINING
    assert only.params == {"maximum": "40"}


def test_buy_now_on_a_sold_out_lot_is_refused():
    assert codes(validate_buy_now(D(0), D(10), D(10))) == {RefusalCode.SOLD_OUT}


def test_a_tail_below_min_order_can_be_bought_only_whole():
    assert validate_buy_now(D(6), D(10), D(6)) == []
    assert codes(validate_buy_now(D(6), D(10), D(5))) == {RefusalCode.QUANTITY_BELOW_MINIMUM}


def test_remaining_after_a_purchase_is_decremented():
    assert remaining_after(D("100.000"), D("37.250")) == D("62.750")


@pytest.mark.parametrize("quantity", ["0", "-1", "100.001"])
def test_remaining_after_never_oversells(quantity):
    with pytest.raises(ValueError):
        remaining_after(D(100), D(quantity))


# --- withdrawal -----------------------------------------------------------------------------


def test_winning_bid_cannot_be_withdrawn():
    winning = bid(1, "150", "60")
    live = [winning, bid(2, "140", "60")]
    allowed, why = can_withdraw(winning, live, make_terms())
    assert allowed is False
    assert why is not None and why.code is RefusalCode.BID_WINNING


def test_outbid_bid_can_be_withdrawn():
    outbid = bid(2, "120", "40")
    live = [bid(1, "150", "100"), outbid]
    assert can_withdraw(outbid, live, make_terms()) == (True, None)


def test_withdrawal_ignores_the_hidden_reserve():
    # Below the reserve, yet provisionally winning: refusing reveals nothing about the reserve.
    low = bid(1, "100", "50")
    allowed, _ = can_withdraw(low, [low], make_terms(reserve_price=D(500)))
    assert allowed is False


def test_tender_bid_can_be_withdrawn_before_the_close_even_if_it_would_win():
    mine = bid(1, "150", "60")
    assert can_withdraw(mine, [mine], make_terms(), mode=SaleMode.TENDER) == (True, None)


def test_withdrawal_after_the_close_is_refused():
    outbid = bid(2, "120", "40")
    live = [bid(1, "150", "100"), outbid]
    allowed, why = can_withdraw(outbid, live, make_terms(), now=T0 + minutes(61))
    assert allowed is False and why is not None and why.code is RefusalCode.LOT_CLOSED


def test_a_bid_that_is_not_live_cannot_be_withdrawn():
    allowed, why = can_withdraw(bid(9, "100", "10"), [bid(1, "150", "100")], make_terms())
    assert allowed is False and why is not None and why.code is RefusalCode.BID_NOT_LIVE
