"""Assay parameters and the quantities derived from them, as data.

An assay is a mapping from a parameter ``code`` to a ``Decimal`` in that parameter's unit. The
valid ranges are physical bounds for input validation, not quality limits (those live in
``standards``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType


class ParameterGroup(enum.StrEnum):
    OXIDE = "oxide"
    PHYSICAL = "physical"
    LEACHATE = "leachate"
    HEAVY_METAL = "heavy_metal"
    RADIONUCLIDE = "radionuclide"
    TRACE_METAL = "trace_metal"


class Unit(enum.StrEnum):
    PERCENT = "%"  #: mass per cent, dry basis unless the parameter says otherwise
    PH = "pH"
    MG_PER_KG = "mg/kg"  #: dry basis, as the element
    BQ_PER_KG = "Bq/kg"
    INDEX = ""  #: dimensionless (GB 6566 indices)


#: Physical bounds per unit: a value outside them is a typing or unit error, never a reading.
UNIT_RANGES: MappingProxyType[Unit, tuple[Decimal, Decimal]] = MappingProxyType(
    {
        Unit.PERCENT: (Decimal(0), Decimal(100)),
        Unit.PH: (Decimal(0), Decimal(14)),
        Unit.MG_PER_KG: (Decimal(0), Decimal(1_000_000)),
        # Far above any bauxite residue (Guizhou RM, among the most active, is a few hundred).
        Unit.BQ_PER_KG: (Decimal(0), Decimal(100_000)),
    }
)


@dataclass(frozen=True)
class AssayParameter:
    code: str
    group: ParameterGroup
    unit: Unit
    name_en: str
    name_zh: str

    @property
    def minimum(self) -> Decimal:
        return UNIT_RANGES[self.unit][0]

    @property
    def maximum(self) -> Decimal:
        return UNIT_RANGES[self.unit][1]


def _group(group: ParameterGroup, unit: Unit, *rows: tuple[str, str, str]) -> list[AssayParameter]:
    return [AssayParameter(code, group, unit, en, zh) for code, en, zh in rows]


_PARAMETERS = [
    *_group(
        ParameterGroup.OXIDE,
        Unit.PERCENT,
        # Labs report iron by XRF as Fe2O3 (all iron as ferric) and by titration as TFe; buyers
        # in steel speak TFe, in cement Fe2O3, so both are kept.
        ("Fe2O3", "Fe2O3", "三氧化二铁"),
        ("TFe", "Total iron (TFe)", "全铁"),
        ("Al2O3", "Al2O3", "氧化铝"),
        ("SiO2", "SiO2", "二氧化硅"),
        ("CaO", "CaO", "氧化钙"),
        ("Na2O", "Na2O", "氧化钠"),
        ("K2O", "K2O", "氧化钾"),
        ("TiO2", "TiO2", "二氧化钛"),
        ("MgO", "MgO", "氧化镁"),
        ("Cl", "Chloride (Cl⁻)", "氯离子"),
        ("S", "Sulfur (S)", "硫"),
        ("P", "Phosphorus (P)", "磷"),
        ("LOI", "Loss on ignition", "烧失量"),
    ),
    # Wet basis (water / wet mass), the figure that converts wet tonnes to dry tonnes. Standards
    # that speak of "water content" over dry mass (GB 50986: dry stacking < 150 %) need converting.
    *_group(ParameterGroup.PHYSICAL, Unit.PERCENT, ("moisture", "Moisture", "含水率")),
    *_group(ParameterGroup.LEACHATE, Unit.PH, ("leach_pH", "Leachate pH", "浸出液 pH")),
    *_group(
        ParameterGroup.HEAVY_METAL,
        Unit.MG_PER_KG,
        ("As", "Arsenic (As)", "砷"),
        ("Cd", "Cadmium (Cd)", "镉"),
        ("Cr", "Chromium, total (Cr)", "总铬"),
        ("CrVI", "Hexavalent chromium (Cr(VI))", "六价铬"),
        ("Pb", "Lead (Pb)", "铅"),
        ("Hg", "Mercury (Hg)", "汞"),
        ("Ni", "Nickel (Ni)", "镍"),
        ("Cu", "Copper (Cu)", "铜"),
        ("Zn", "Zinc (Zn)", "锌"),
    ),
    *_group(
        ParameterGroup.RADIONUCLIDE,
        Unit.BQ_PER_KG,
        ("Ra226", "Radium-226", "镭-226"),
        ("Th232", "Thorium-232", "钍-232"),
        ("K40", "Potassium-40", "钾-40"),
    ),
    *_group(
        ParameterGroup.TRACE_METAL,
        Unit.MG_PER_KG,
        # As elements: a lab reporting Ga2O3 or V2O5 in % must be converted before entry.
        ("Ga", "Gallium (Ga)", "镓"),
        ("Sc", "Scandium (Sc)", "钪"),
        ("V", "Vanadium (V)", "钒"),
        ("REE", "Rare earths, total (REE)", "稀土总量"),
    ),
]

ASSAY_PARAMETERS: MappingProxyType[str, AssayParameter] = MappingProxyType(
    {p.code: p for p in _PARAMETERS}
)


@dataclass(frozen=True)
class DerivedQuantity:
    """A weighted sum of assay parameters: ``Σ value(code) / divisor``.

    Every term is non-negative, so a sum over the terms that are present is a lower bound of the
    full value; the grading uses that to fail an upper limit early, never to pass one.
    """

    code: str
    terms: tuple[tuple[str, Decimal], ...]
    unit: Unit
    name_en: str
    name_zh: str
    #: Decimal places kept, rounding up; None keeps the exact sum.
    places: int | None = None

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(code for code, _ in self.terms)


ONE = Decimal(1)

DERIVED_QUANTITIES: MappingProxyType[str, DerivedQuantity] = MappingProxyType(
    {
        "Na2O+K2O": DerivedQuantity(
            "Na2O+K2O", (("Na2O", ONE), ("K2O", ONE)), Unit.PERCENT, "Alkali (Na2O+K2O)", "总碱量"
        ),
        # GB 6566-2010: I_Ra = C_Ra/200; I_r = C_Ra/370 + C_Th/260 + C_K/4200 (Bq/kg). Two places
        # rounded up, so a reported index of 1.00 never hides a true value above 1.0.
        "I_Ra": DerivedQuantity(
            "I_Ra",
            (("Ra226", Decimal(200)),),
            Unit.INDEX,
            "Internal exposure index I_Ra",
            "内照射指数 I_Ra",
            places=2,
        ),
        "I_r": DerivedQuantity(
            "I_r",
            (("Ra226", Decimal(370)), ("Th232", Decimal(260)), ("K40", Decimal(4200))),
            Unit.INDEX,
            "External exposure index I_r",
            "外照射指数 I_r",
            places=2,
        ),
    }
)


def quantity_unit(code: str) -> Unit:
    """The unit of a parameter or derived quantity; raises ``KeyError`` for an unknown code."""
    if code in ASSAY_PARAMETERS:
        return ASSAY_PARAMETERS[code].unit
    return DERIVED_QUANTITIES[code].unit


def quantity_names(code: str) -> tuple[str, str]:
    """``(name_en, name_zh)`` of a parameter or derived quantity; ``KeyError`` if unknown."""
    item = ASSAY_PARAMETERS.get(code) or DERIVED_QUANTITIES[code]
    return item.name_en, item.name_zh
