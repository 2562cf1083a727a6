"""Distance, freight and transport CO2 (pure)."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.demand.freight import (
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON_BOUND,
    LON_BOUND_LAT_CAP,
    LON_BOUND_MAX_DEG,
    FreightSettings,
    TransportMode,
    cheapest_leg,
    great_circle_km,
    leg,
    settings_from_config,
)

D = Decimal
ROAD, RAIL, WATER = TransportMode.ROAD, TransportMode.RAIL, TransportMode.WATER

BEIJING = (D("39.9042"), D("116.4074"))
SHANGHAI = (D("31.2304"), D("121.4737"))
GUANGZHOU = (D("23.1291"), D("113.2644"))
ZIBO = (D("36.813"), D("118.055"))
BINZHOU = (D("37.383"), D("117.970"))


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        # Published great-circle (flight) distances, to within a few km.
        (BEIJING, SHANGHAI, 1067),
        (BEIJING, GUANGZHOU, 1888),
    ],
)
def test_great_circle_distance_matches_known_city_pairs(a, b, km):
    assert abs(great_circle_km(*a, *b) - km) <= 5


def test_great_circle_distance_is_rounded_to_a_tenth_and_zero_for_one_place():
    assert great_circle_km(*ZIBO, *ZIBO) == D("0.0")
    distance = great_circle_km(*ZIBO, *BINZHOU)
    assert distance == distance.quantize(D("0.1"))
    assert D(60) < distance < D(70)


def test_road_freight_is_route_distance_times_rate_plus_handling():
    settings = FreightSettings()
    result = leg(D("100"), ROAD, settings)
    # 100 km × 1.3 = 130 km; 130 × 0.459 = 59.67; + 15 handling
    assert result.route_km == D("130.0")
    assert result.freight == D("74.67")
    assert result.co2_kg == D("11.74")  # 130 × 0.0903


def test_defaults_are_the_sourced_rates_and_water_is_unpriced():
    settings = FreightSettings()
    assert settings.rates[ROAD] == D("0.459")
    assert settings.rates[RAIL] == D("0.1031")
    assert settings.rates[WATER] is None
    assert settings.road_factor == D("1.3")
    assert leg(D("100"), WATER, settings) is None
    assert settings.priced() == (ROAD, RAIL)


def test_cheapest_leg_picks_rail_when_accepted_and_lists_every_priced_mode():
    best, legs = cheapest_leg(D("300"), (ROAD, RAIL, WATER), FreightSettings())
    assert best.mode is RAIL
    assert [x.mode for x in legs] == [ROAD, RAIL]


def test_no_priced_mode_gives_no_leg():
    best, legs = cheapest_leg(D("300"), (WATER,), FreightSettings())
    assert best is None and legs == ()


def test_settings_from_config_reads_strings_and_keeps_defaults_for_empty_keys():
    settings = settings_from_config(
        {"MATCH_RATE_WATER": "0.03", "MATCH_ROAD_FACTOR": "1.25", "MATCH_HANDLING": ""}
    )
    assert settings.rates[WATER] == D("0.03")
    assert settings.road_factor == D("1.25")
    assert settings.handling == D("15")
    assert settings.rates[ROAD] == D("0.459")


distances = st.decimals(min_value=0, max_value=5000, places=1)


@given(distances, distances, st.sampled_from([ROAD, RAIL]))
def test_freight_never_falls_as_distance_grows(d1, d2, mode):
    settings = FreightSettings()
    near, far = sorted([d1, d2])
    assert leg(near, mode, settings).freight <= leg(far, mode, settings).freight
    assert leg(near, mode, settings).co2_kg <= leg(far, mode, settings).co2_kg


coordinates = st.tuples(
    st.decimals(min_value=-60, max_value=60, places=3),
    st.decimals(min_value=70, max_value=140, places=3),
)


@given(coordinates, coordinates)
def test_distance_is_symmetric(a, b):
    assert great_circle_km(*a, *b) == great_circle_km(*b, *a)


@given(coordinates, coordinates)
def test_sql_distance_lower_bounds_never_exceed_the_distance(a, b):
    """The prefilters rely on these bounds: a bound above the true distance would lose matches."""
    distance = great_circle_km(*a, *b) + D("0.05")  # undo the rounding to 0.1 km
    assert KM_PER_DEG_LAT * abs(a[0] - b[0]) <= distance
    dlon = abs(a[1] - b[1])
    if max(abs(a[0]), abs(b[0])) <= LON_BOUND_LAT_CAP and dlon <= LON_BOUND_MAX_DEG:
        assert KM_PER_DEG_LON_BOUND * dlon <= distance
