"""CO2 avoided by putting red mud to use, minus the CO2 of carrying it: factors as data.

Pure: no Flask, no database. Every factor carries its source and whether it is an assumption;
every result carries the method text shown next to the figure. Tonnes of CO2 are ``Decimal``.

Per delivery:

    avoided   = credit of the end use (below), on the delivered material's dry tonnes
    transport = tonnes carried (weighbridge net, as weighed) × road km × road factor
    net       = avoided − transport (may be negative)

End uses without a sourced factor earn no credit (0), and the method says so.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exchange.reporting.facts import DeliveryFact

ZERO = Decimal(0)
HUNDRED = Decimal(100)
CO2_PLACES = Decimal("0.001")

#: Molar masses: CO2 44.01, CaO 56.08, Fe 55.845, Fe2O3 159.69 g/mol.
CAO_PER_CO2 = Decimal("56.08") / Decimal("44.01")
FE_IN_FE2O3 = Decimal(2) * Decimal("55.845") / Decimal("159.69")


@dataclass(frozen=True)
class Factor:
    code: str
    value: Decimal
    unit: str
    name_en: str
    name_zh: str
    source: str
    #: True where the platform chose the figure (no source for this use, or a source for
    #: another country or setting); such figures must be replaced when better data exist.
    assumption: bool
    note: str = ""


CALCINATION = Factor(
    "calcination_co2_per_cao",
    Decimal("0.785"),
    "t CO2 / t CaO",
    "CO2 released when limestone is calcined, per tonne of CaO",
    "石灰石煅烧每吨 CaO 释放的 CO2",
    "CaCO3 → CaO + CO2: 0.44 t CO2 per t CaCO3, i.e. 0.785 t per t CaO (Cement_EPA "
    "methodology, icebreakerone.org; stoichiometry 44.01/56.08)",
    assumption=False,
    note="Credit for non-carbonate CaO that red mud brings into cement raw meal in place of "
    "limestone. Non-carbonate CaO = CaO − LOI × 56.08/44.01, i.e. all loss on ignition is "
    "taken as carbonate CO2 (a lower bound on the credit); no LOI in the assay → no credit.",
)
ORE_EMBODIED = Factor(
    "iron_ore_embodied_co2",
    Decimal("0.0119"),
    "t CO2e / t iron ore",
    "Mining and processing emissions of iron ore",
    "铁矿石开采与加工的碳排放",
    "Norgate & Haque 2010, Journal of Cleaner Production 18:266–274 (Australian iron ore, "
    "about 12 kg CO2e per tonne)",
    assumption=True,
    note="Australian hematite ore applied to the ore that red mud displaces in Chinese mills "
    "(assumption). The energy to recover iron from red mud (e.g. magnetizing roasting) is "
    "not deducted: no sourced figure, so the steel credit is an upper bound.",
)
ORE_FE_GRADE = Factor(
    "iron_ore_fe_grade",
    Decimal("62"),
    "% Fe",
    "Iron grade of the ore displaced",
    "被替代铁矿石的品位",
    "Platform assumption: the 62 % Fe benchmark grade of traded iron ore fines",
    assumption=True,
)
CARBONATION = Factor(
    "carbonation_uptake",
    Decimal("0.046"),
    "t CO2 / t dry red mud",
    "CO2 fixed by red mud carbonation",
    "赤泥碳化固定的 CO2",
    "Red mud carbonation fixes 45–47 g CO2/kg (Frontiers in Climate 2026, "
    "doi 10.3389/fclim.2026.1732612); midpoint 46 g/kg",
    assumption=True,
    note="An option, not applied by default: it only happens where the red mud is deliberately "
    "carbonated, which deliveries do not record.",
)
ROAD_FREIGHT = Factor(
    "road_freight_co2",
    Decimal("0.000106"),
    "t CO2e / t·km",
    "Road freight by heavy articulated truck",
    "重型半挂货车公路运输",
    "Defra/DECC 2012 GHG conversion factors, Annex 7 Table 7e: articulated HGV > 33 t at the "
    "UK average load, 0.0847 kg CO2e/t·km (direct); raised by 25 % because Chinese trucks use "
    "10–25 % more fuel per t·km (Smart Freight Centre via China Daily 2014-11-21)",
    assumption=True,
    note="A UK factor adapted to China by the platform (assumption). Road km = great-circle "
    "distance × 1.3 (platform assumption, as in freight matching).",
)

FACTORS: tuple[Factor, ...] = (CALCINATION, ORE_EMBODIED, ORE_FE_GRADE, CARBONATION, ROAD_FREIGHT)


class CreditKind(enum.StrEnum):
    CALCINATION = "calcination"  #: CaO replacing limestone in cement raw meal
    ORE_DISPLACED = "ore_displaced"  #: iron units replacing iron ore
    NONE = "none"


#: Which credit an end use earns. Others are 0 until a sourced factor exists.
END_USE_CREDIT: Mapping[str, CreditKind] = MappingProxyType(
    {
        "cement_iron_corrective": CreditKind.CALCINATION,
        "steel": CreditKind.ORE_DISPLACED,
    }
)

METHOD_NONE = (
    "No CO2 credit: no sourced factor for this end use yet (counted as 0). Transport "
    "emissions are still subtracted."
)
METHOD_CALCINATION = (
    "Avoided = dry tonnes × non-carbonate CaO % × 0.785 t CO2 per t CaO (calcination of "
    "limestone avoided); non-carbonate CaO = CaO − LOI × 56.08/44.01."
)
METHOD_ORE = (
    "Avoided = dry tonnes × Fe % ÷ 62 % Fe ore grade × 0.0119 t CO2e per t ore (mining and "
    "processing of the displaced ore; assumption); Fe from TFe, else Fe2O3 × 0.6994. "
    "Iron recovery energy is not deducted."
)
METHOD_TRANSPORT = "Transport = weighbridge tonnes × road km × 0.000106 t CO2e/t·km (assumption)."


@dataclass(frozen=True)
class CarbonResult:
    avoided_t: Decimal
    transport_t: Decimal
    credit: CreditKind
    method: str

    @property
    def net_t(self) -> Decimal:
        return self.avoided_t - self.transport_t


def non_carbonate_cao_pct(cao_pct: Decimal | None, loi_pct: Decimal | None) -> Decimal | None:
    """CaO not bound as carbonate, taking all loss on ignition as CO2 (a lower bound)."""
    if cao_pct is None or loi_pct is None:
        return None
    return max(cao_pct - loi_pct * CAO_PER_CO2, ZERO)


def iron_pct(tfe_pct: Decimal | None, fe2o3_pct: Decimal | None) -> Decimal | None:
    """Iron content in %: TFe when measured, else Fe2O3 × 2·55.845/159.69."""
    if tfe_pct is not None:
        return tfe_pct
    if fe2o3_pct is not None:
        return fe2o3_pct * FE_IN_FE2O3
    return None


def calcination_credit(dry_t: Decimal, cao_pct: Decimal | None, loi_pct: Decimal | None) -> Decimal:
    cao = non_carbonate_cao_pct(cao_pct, loi_pct)
    if cao is None:
        return ZERO
    return dry_t * cao / HUNDRED * CALCINATION.value


def ore_credit(dry_t: Decimal, tfe_pct: Decimal | None, fe2o3_pct: Decimal | None) -> Decimal:
    fe = iron_pct(tfe_pct, fe2o3_pct)
    if fe is None:
        return ZERO
    ore_t = dry_t * fe / ORE_FE_GRADE.value
    return ore_t * ORE_EMBODIED.value


def transport_emissions(tonnes: Decimal, distance_km: Decimal | None) -> Decimal:
    """CO2e of carrying ``tonnes`` over ``distance_km`` by road (0 when the distance is unknown)."""
    if distance_km is None:
        return ZERO
    return tonnes * distance_km * ROAD_FREIGHT.value


def delivery_carbon(
    fact: DeliveryFact,
    material_dry_t: Decimal,
    red_mud_factor: Decimal,
    *,
    include_carbonation: bool = False,
) -> CarbonResult:
    """Avoided, transport and net CO2 of one delivery, with the method text."""
    credit = END_USE_CREDIT.get(fact.end_use or "", CreditKind.NONE)
    if credit is CreditKind.CALCINATION:
        avoided = calcination_credit(material_dry_t, fact.cao_pct, fact.loi_pct)
        method = METHOD_CALCINATION
        if fact.cao_pct is None or fact.loi_pct is None:
            method += " The assay lacks CaO or LOI, so no credit is claimed."
    elif credit is CreditKind.ORE_DISPLACED:
        avoided = ore_credit(material_dry_t, fact.tfe_pct, fact.fe2o3_pct)
        method = METHOD_ORE
        if fact.tfe_pct is None and fact.fe2o3_pct is None:
            method += " The assay lacks TFe and Fe2O3, so no credit is claimed."
    else:
        avoided = ZERO
        method = METHOD_NONE
    if include_carbonation:
        avoided += material_dry_t * red_mud_factor * CARBONATION.value
        method += " Plus carbonation 0.046 t CO2 per t red mud (option; assumption)."
    transport = transport_emissions(fact.dispatched_t, fact.distance_km)
    method += " " + METHOD_TRANSPORT
    if fact.distance_km is None:
        method += " Distance unknown: transport counted as 0."
    return CarbonResult(
        avoided.quantize(CO2_PLACES, ROUND_HALF_UP),
        transport.quantize(CO2_PLACES, ROUND_HALF_UP),
        credit,
        method,
    )
