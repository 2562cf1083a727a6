"""Unit tests for the trading rules added with the services: positions, grid, seals, values."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.trading.rules import (
    AuctionTerms,
    BidView,
    RefusalCode,
    first_grid_price,
    minimum_next_price,
    position_changes,
    price_grid,
    provisional_winners,
    seal,
    validate_bid,
    value_fen,
)

T0 = datetime(2027, 3, 1, 8, 0, tzinfo=UTC)
TERMS = AuctionTerms(
    start_price=D("100.00"),
    reserve_price=D("500.00"),
    min_increment=D("5.00"),
    opens_at=T0,
    closes_at=T0 + timedelta(hours=1),
    hard_close_at=T0 + timedelta(hours=2),
    anti_snipe_minutes=5,
    lot_quantity=D(100),
    min_order=D(10),
)


def bid(i: int, price: str, quantity: str, company: int | None = None, minimum=None) -> BidView:
    return BidView(i, company or 100 + i, D(price), D(quantity), T0 + timedelta(seconds=i), minimum)


def test_provisional_winners_ignore_the_hidden_reserve():
    # Every bid is far below the 500 reserve, yet the positions shown are the free allocation.
    assert provisional_winners(TERMS, [bid(1, "120", "60"), bid(2, "110", "60")]) == {1, 2}


def test_a_bid_pushed_out_is_outbid_and_one_coming_back_is_winning_again():
    before = provisional_winners(TERMS, [bid(1, "120", "60"), bid(2, "110", "40")])
    after_bids = [bid(1, "120", "60"), bid(2, "110", "40"), bid(3, "115", "40")]
    after = provisional_winners(TERMS, after_bids)
    outbid, winning = position_changes(before, after, [1, 2], [b.id for b in after_bids])
    assert (outbid, winning) == ({2}, set())  # the new bid 3 is not "winning again"
    # 3 withdraws: 2 is back among the winners; 3 is no longer live, so it is not "outbid".
    back = provisional_winners(TERMS, [bid(1, "120", "60"), bid(2, "110", "40")])
    outbid, winning = position_changes(after, back, [1, 2, 3], [1, 2])
    assert (outbid, winning) == (set(), {2})


@pytest.mark.parametrize(
    ("at_least", "first"),
    [("50", "100.00"), ("100", "100.00"), ("100.01", "105.00"), ("112.50", "115.00")],
)
def test_first_grid_price_rounds_up_to_the_next_step(at_least, first):
    assert first_grid_price(TERMS, D(at_least)) == D(first)


def test_the_grid_for_a_disposal_counts_up_toward_zero():
    terms = replace(TERMS, start_price=D("-35.00"), min_increment=D("2.50"))
    assert price_grid(terms, D("-33")) == [D("-32.50"), D("-30.00"), D("-27.50")]


@given(
    bids=st.lists(
        st.tuples(st.integers(0, 20), st.integers(1, 12)).map(
            lambda t: (D(100 + 5 * t[0]), D(10 * t[1]))
        ),
        max_size=8,
    )
)
def test_the_minimum_next_price_is_always_on_the_grid(bids):
    views = [BidView(i + 1, i + 1, p, q, T0) for i, (p, q) in enumerate(bids)]
    minimum = minimum_next_price(TERMS, views)
    assert first_grid_price(TERMS, minimum) == minimum


@pytest.mark.parametrize(
    ("price", "quantity", "min_quantity", "code"),
    [
        ("125", "30", None, RefusalCode.QUANTITY_REDUCED),
        ("125", "40", "30", RefusalCode.MIN_QUANTITY_RAISED),
    ],
)
def test_an_auction_raise_may_not_shrink_the_bid_or_raise_its_minimum_fill(
    price, quantity, min_quantity, code
):
    mine = bid(1, "120", "40", company=50, minimum=D(20))
    refusals = validate_bid(
        TERMS,
        [mine],
        50,
        1,
        D(price),
        D(quantity),
        T0 + timedelta(minutes=1),
        replacing=mine,
        min_quantity=None if min_quantity is None else D(min_quantity),
    )
    assert {r.code for r in refusals} == {code}


def test_a_raise_may_lower_its_minimum_fill_and_grow():
    mine = bid(1, "120", "40", company=50, minimum=D(20))
    assert (
        validate_bid(
            TERMS, [mine], 50, 1, D("125"), D("60"), T0, replacing=mine, min_quantity=D(10)
        )
        == []
    )


def test_a_seal_binds_every_field_and_the_nonce():
    content = {"bid_id": 1, "price": "100.00", "quantity": "50.000"}
    commitment = seal("n1", content)
    assert seal("n1", dict(reversed(list(content.items())))) == commitment  # order-free
    assert seal("n2", content) != commitment
    assert seal("n1", {**content, "price": "100.01"}) != commitment


@pytest.mark.parametrize(
    ("price", "quantity", "fen"),
    [("-20.00", "300", -600000), ("123.45", "0.001", 12), ("0.01", "0.500", 1)],
)
def test_value_in_fen_is_signed_and_rounded_half_up(price, quantity, fen):
    assert value_fen(D(price), D(quantity)) == fen


def test_value_in_fen_refuses_floats():
    with pytest.raises(TypeError):
        value_fen(20.0, D(1))  # type: ignore[arg-type]
