"""Carbon arithmetic per delivery on hand-checked examples; factors carry their sources."""

from __future__ import annotations

from decimal import Decimal

from exchange.reporting import carbon
from tests.unit.test_reporting_rules import delivery

D = Decimal


def test_cement_credit_is_non_carbonate_cao_times_0_785():
    # 100 dry t, CaO 40 %, LOI 10 %: non-carbonate CaO = 40 − 10 × 56.08/44.01 = 27.2575 %
    # → 27.2575 t CaO × 0.785 = 21.397 t CO2
    fact = delivery(end_use="cement_iron_corrective", cao_pct=D("40"), loi_pct=D("10"))
    result = carbon.delivery_carbon(fact, D("100"), D(1))
    assert result.credit is carbon.CreditKind.CALCINATION
    assert result.avoided_t == D("21.397")
    assert "0.785" in result.method


def test_cement_without_loi_claims_nothing():
    fact = delivery(end_use="cement_iron_corrective", cao_pct=D("40"), loi_pct=None)
    result = carbon.delivery_carbon(fact, D("100"), D(1))
    assert result.avoided_t == 0
    assert "no credit" in result.method


def test_carbonate_bound_cao_earns_no_credit():
    assert carbon.non_carbonate_cao_pct(D("5"), D("12")) == 0


def test_steel_credit_is_ore_displaced_times_its_embodied_co2():
    # 100 dry t at TFe 31 %: 31 t Fe ÷ 0.62 = 50 t ore × 0.0119 = 0.595 t CO2e
    fact = delivery(end_use="steel", tfe_pct=D("31"))
    assert carbon.delivery_carbon(fact, D("100"), D(1)).avoided_t == D("0.595")


def test_steel_credit_falls_back_to_fe2o3():
    # Fe2O3 50 % → Fe 34.97 %; 100 t → 56.40 t ore × 0.0119 = 0.671 t
    fact = delivery(end_use="steel", fe2o3_pct=D("50"))
    assert carbon.delivery_carbon(fact, D("100"), D(1)).avoided_t == D("0.671")


def test_uses_without_a_sourced_factor_earn_zero_but_pay_transport():
    # 30 t carried 200 km: 6000 t·km × 0.000106 = 0.636 t
    fact = delivery(end_use="road_base", dispatched_t=D("30"), distance_km=D("200"))
    result = carbon.delivery_carbon(fact, D("30"), D(1))
    assert (result.avoided_t, result.transport_t, result.net_t) == (D(0), D("0.636"), D("-0.636"))
    assert "No CO2 credit" in result.method


def test_carbonation_is_an_option_off_by_default():
    fact = delivery(end_use="road_base")
    off = carbon.delivery_carbon(fact, D("100"), D(1))
    on = carbon.delivery_carbon(fact, D("100"), D(1), include_carbonation=True)
    assert off.avoided_t == 0
    assert on.avoided_t == D("4.600")


def test_unknown_distance_counts_no_transport_and_says_so():
    result = carbon.delivery_carbon(delivery(distance_km=None), D("30"), D(1))
    assert result.transport_t == 0
    assert "Distance unknown" in result.method


def test_every_factor_has_a_source_and_assumptions_are_marked():
    assert all(f.source for f in carbon.FACTORS)
    assert carbon.CALCINATION.assumption is False
    assert carbon.ROAD_FREIGHT.assumption and carbon.ORE_EMBODIED.assumption
    assert carbon.CARBONATION.assumption
