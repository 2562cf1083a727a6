"""Utilization arithmetic, target gaps, grouping and the price index, on hand-checked numbers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.reporting import rules
from exchange.reporting.facts import DeliveryFact, GenerationFact, TradeFact

D = Decimal


def delivery(**overrides: object) -> DeliveryFact:
    fields: dict[str, object] = {
        "delivery_id": 1,
        "contract_id": 10,
        "seller_id": 1,
        "buyer_id": 2,
        "origin_site_id": 100,
        "origin_province": "37",
        "material_code": "rm_bayer_filter_cake",
        "basis": "dry",
        "moisture_pct": None,
        "dispatched_t": D("30"),
        "received_t": D("30"),
        "accepted_t": D("30"),
        "end_use": "road_base",
        "received_on": dt.date(2026, 3, 15),
    }
    fields.update(overrides)
    return DeliveryFact(**fields)  # type: ignore[arg-type]


def factor(code: str) -> Decimal:
    return {"rm_bayer_filter_cake": D(1), "cementitious_additive": D("0.5"), "fly_ash": D(0)}[code]


def test_wet_tonnes_become_dry_with_the_moisture():
    assert rules.dry_tonnes(D("100"), "wet", D("28")) == D("72")
    assert rules.dry_tonnes(D("100"), "dry", None) == D("100")


def test_wet_tonnes_without_moisture_cannot_be_converted():
    assert rules.dry_tonnes(D("100"), "wet", None) is None


@pytest.mark.parametrize("moisture", [D("-1"), D("100"), D("120")])
def test_impossible_moisture_is_refused(moisture):
    with pytest.raises(ValueError):
        rules.dry_tonnes(D("10"), "wet", moisture)


def test_utilization_rate_and_gaps_on_a_hand_checked_example():
    # 1,000 t generated, 120 t delivered: 12 %, 3 points and 30 t short of 15 %,
    # 13 points and 130 t short of 25 %.
    assert rules.utilization_rate(D("1000"), D("120")) == D("0.1200")
    gaps = rules.target_gaps(D("1000"), D("120"))
    assert [(g.year, g.gap_points, g.tonnes_short, g.met) for g in gaps] == [
        (2027, D("3.00"), D("30.000"), False),
        (2030, D("13.00"), D("130.000"), False),
    ]


def test_met_target_has_no_gap():
    gaps = rules.target_gaps(D("1000"), D("260"))
    assert all(g.met and g.gap_points == 0 and g.tonnes_short == 0 for g in gaps)


def test_no_generation_means_no_rate():
    assert rules.utilization_rate(D(0), D("5")) is None


def test_aggregate_converts_products_and_wet_deliveries_to_dry_red_mud():
    facts = [
        GenerationFact(dt.date(2026, 3, 1), 1, 100, "37", D("1000")),
        # wet red mud at 20 % moisture: 50 t wet = 40 t dry red mud
        delivery(delivery_id=1, basis="wet", moisture_pct=D("20"), accepted_t=D("50")),
        # a product that is half red mud: 30 t dry = 15 t red mud
        delivery(delivery_id=2, material_code="cementitious_additive", accepted_t=D("30")),
        # fly ash counts zero
        delivery(delivery_id=3, material_code="fly_ash", accepted_t=D("99")),
        # wet without moisture: counted as unconverted, not in the tonnes
        delivery(delivery_id=4, basis="wet", moisture_pct=None, accepted_t=D("70")),
    ]
    rows = rules.aggregate(facts[:1], facts[1:], factor)
    total = rules.group(rows, ())[0]
    assert total.generated_t == D("1000.000")
    assert total.delivered_t == D("55.000")
    assert total.deliveries == 4
    assert total.unconverted == 1
    assert total.rate == D("0.0550")


def test_deliveries_count_in_the_month_received_and_the_producers_province():
    rows = rules.aggregate(
        [],
        [
            delivery(received_on=dt.date(2026, 4, 30), origin_province="14"),
            delivery(delivery_id=2, received_on=dt.date(2026, 5, 1), origin_province="14"),
        ],
        factor,
    )
    assert [(r.key.month, r.key.province) for r in rows] == [
        (dt.date(2026, 4, 1), "14"),
        (dt.date(2026, 5, 1), "14"),
    ]


def test_grouping_by_end_use_keeps_generation_apart():
    rows = rules.aggregate(
        [GenerationFact(dt.date(2026, 3, 1), 1, 100, "37", D("500"))],
        [delivery(end_use="steel"), delivery(delivery_id=2, end_use=None)],
        factor,
    )
    by_use = {t.group[0]: t for t in rules.group(rows, [rules.Dimension.END_USE])}
    assert by_use[rules.GENERATION_ROW].generated_t == D("500")
    assert by_use["steel"].delivered_t == D("30")
    assert by_use["unspecified"].delivered_t == D("30")


generation_facts = st.builds(
    GenerationFact,
    month=st.dates(dt.date(2025, 1, 1), dt.date(2026, 12, 31)),
    producer_id=st.integers(1, 3),
    site_id=st.integers(1, 5),
    province=st.sampled_from(["14", "37", "45"]),
    tonnes_dry=st.decimals(0, 300000, places=3, allow_nan=False, allow_infinity=False),
)


@given(st.lists(generation_facts, max_size=30))
def test_any_grouping_sums_to_the_grand_total(facts):
    rows = rules.aggregate(facts, [], factor)
    total = sum((f.tonnes_dry for f in facts), D(0))
    for dims in ([], [rules.Dimension.MONTH], [rules.Dimension.PROVINCE, rules.Dimension.SITE]):
        assert sum((g.generated_t for g in rules.group(rows, dims)), D(0)) == total


def trade(price: str, qty: str, day: dt.date, family: str = "red_mud", province: str = "37"):
    at = dt.datetime.combine(day, dt.time(4), tzinfo=dt.UTC)
    return TradeFact(1, 1, 1, 2, family, province, D(price), D(qty), at, day)


def test_price_index_weights_by_volume_and_keeps_the_sign():
    # Monday 2026-03-02 week: 100 t at -20, 300 t at 10 → (−2000 + 3000) / 400 = 2.50
    points = rules.weekly_price_index(
        [trade("-20", "100", dt.date(2026, 3, 2)), trade("10", "300", dt.date(2026, 3, 8))]
    )
    assert len(points) == 1
    point = points[0]
    assert point.week == dt.date(2026, 3, 2)
    assert point.volume_t == D("400")
    assert point.price == D("2.50")
    assert point.trades == 2


def test_price_index_separates_weeks_families_and_provinces():
    points = rules.weekly_price_index(
        [
            trade("-20", "100", dt.date(2026, 3, 8)),
            trade("-20", "100", dt.date(2026, 3, 9)),  # next Monday
            trade("50", "100", dt.date(2026, 3, 8), family="rm_product"),
            trade("-30", "100", dt.date(2026, 3, 8), province="14"),
        ]
    )
    assert len(points) == 4


def test_combining_provinces_is_volume_weighted_not_an_average_of_prices():
    points = rules.weekly_price_index(
        [
            trade("-20", "100", dt.date(2026, 3, 2), province="37"),
            trade("40", "900", dt.date(2026, 3, 2), province="14"),
        ]
    )
    national = rules.combine_price_points(points)
    assert [p.price for p in national] == [D("34.00")]  # (−2000 + 36000) / 1000


def test_months_between_and_weeks():
    assert rules.months_between(dt.date(2025, 11, 20), dt.date(2026, 2, 1)) == [
        dt.date(2025, 11, 1),
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]
    assert rules.week_start(dt.date(2026, 3, 8)) == dt.date(2026, 3, 2)


def test_chart_ticks_are_round_and_cover_the_data():
    from exchange.reporting.charts import fmt_number, nice_ticks

    assert nice_ticks(0, 27) == [0, 10, 20, 30]
    assert nice_ticks(0, 462000, 5)[-1] >= 462000
    assert nice_ticks(-25, 40)[0] <= -25
    assert [fmt_number(v) for v in (0, 12.5, 350_000, 1_200_000)] == ["0", "12.5", "350k", "1.2M"]
