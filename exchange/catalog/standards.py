"""Thresholds as data: the requirement of each end use and the waste-law gates, with sources.

Values come from the project's domain facts (FACTS.md), which cite each figure. A requirement is
``verified=False`` where FACTS marks the figure [verify] (standard text not retrieved) or where
the platform chose the figure itself; such limits must be checked before they carry legal weight.

Two kinds of requirement: a *gate* is compliance (waste law, radioactivity, soil protection) and
blocks trading for that use, failing closed when a value is missing; a *spec* is buyer quality
and only informs the fit-for-use report, because buyers blend and set their own specs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES


@dataclass(frozen=True)
class Source:
    code: str
    title_en: str
    title_zh: str = ""
    #: Where the figure was read (address or citation, as recorded in FACTS.md); empty if none.
    reference: str = ""


CEMENT_RAW_CODE = Source(
    # FACTS names the clause but not the code's number.
    "Cement raw-material code §5.2",
    "Cement plant raw-material requirements, §5.2",
    "水泥原料要求 §5.2",
    "jianbiaoku.com/webarbs/book/402/3084753.shtml",
)
GB_6566 = Source(
    "GB 6566-2010",
    "Limits of radionuclides in building materials",
    "建筑材料放射性核素限量",
    "zuoyso.com/zuoye/11163732; bbzszx.com/zxcl/4094.html",
)
GB_15618 = Source(
    "GB 15618-2018",
    "Soil environmental quality: risk control standard for soil contamination of agricultural land",
    "土壤环境质量 农用地土壤污染风险管控标准（试行）",
)
GB_36600 = Source(
    "GB 36600-2018",
    "Soil environmental quality: risk control standard for soil contamination of development land",
    "土壤环境质量 建设用地土壤污染风险管控标准（试行）",
    "m.boteman.cn/paper/239121497.html",
)
GB_5085_1 = Source(
    "GB 5085.1-2007",
    "Identification standards for hazardous wastes: identification for corrosivity",
    "危险废物鉴别标准 腐蚀性鉴别",
    "Lu 2020",
)
GB_18599 = Source(
    "GB 18599-2020",
    "Standard for pollution control on the non-hazardous industrial solid waste storage and "
    "landfill",
    "一般工业固体废物贮存和填埋污染控制标准",
    "Lu 2020",
)
GB_50427 = Source(
    "GB 50427",
    "Code for design of blast furnace ironmaking, Table 4.1.9 (burden impurities, kg/t iron)",
    "高炉炼铁工程设计规范 表 4.1.9",
    "m.zgkjsz.com/page/2011/0321/20797762.shtml",
)
#: For thresholds no standard fixes; the evidence behind each is cited in its requirement's note.
PLATFORM = Source(
    "Platform assumption",
    "Red Mud Exchange platform assumption (no standard found)",
    "平台假设（未找到标准）",
)


class Comparator(enum.StrEnum):
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"

    @property
    def symbol(self) -> str:
        return {"lt": "<", "le": "≤", "gt": ">", "ge": "≥"}[self.value]

    @property
    def is_upper_limit(self) -> bool:
        return self in (Comparator.LT, Comparator.LE)

    def holds(self, value: Decimal, limit: Decimal) -> bool:
        """Whether ``value`` satisfies ``value <comparator> limit``."""
        if self is Comparator.LT:
            return value < limit
        if self is Comparator.LE:
            return value <= limit
        if self is Comparator.GT:
            return value > limit
        return value >= limit

    def margin(self, value: Decimal, limit: Decimal) -> Decimal:
        """Signed distance to the limit: positive inside, negative outside, 0 on the limit."""
        return limit - value if self.is_upper_limit else value - limit


class RequirementKind(enum.StrEnum):
    GATE = "gate"
    SPEC = "spec"


@dataclass(frozen=True)
class Requirement:
    #: An assay parameter code or a derived quantity code ("Na2O+K2O", "I_Ra", "I_r").
    quantity: str
    comparator: Comparator
    limit: Decimal
    kind: RequirementKind
    source: Source
    #: False where the figure is marked [verify] in FACTS or is a platform assumption.
    verified: bool = True
    note: str = ""

    def __post_init__(self) -> None:
        if self.quantity not in ASSAY_PARAMETERS and self.quantity not in DERIVED_QUANTITIES:
            raise ValueError(f"unknown quantity {self.quantity!r}")


@dataclass(frozen=True)
class Clause:
    """Holds when any one of its requirements passes; most clauses hold a single requirement."""

    requirements: tuple[Requirement, ...]

    def __post_init__(self) -> None:
        if not self.requirements or len({r.kind for r in self.requirements}) != 1:
            raise ValueError("a clause needs requirements of one kind")

    @property
    def kind(self) -> RequirementKind:
        return self.requirements[0].kind


GATE, SPEC = RequirementKind.GATE, RequirementKind.SPEC
LT, LE, GT, GE = Comparator.LT, Comparator.LE, Comparator.GT, Comparator.GE


def _one(
    quantity: str,
    comparator: Comparator,
    limit: Decimal | str,
    kind: RequirementKind,
    source: Source,
    *,
    verified: bool = True,
    note: str = "",
) -> Clause:
    return Clause(
        (Requirement(quantity, comparator, Decimal(limit), kind, source, verified, note),)
    )


# --- Waste-law gates -------------------------------------------------------------------------

#: Leachate pH at or above this is corrosive hazardous waste (GB 5085.1), not general waste.
HAZARDOUS_PH_ALKALINE = Decimal("12.5")
#: ...and at or below this on the acid side. Not in FACTS (red mud is alkaline); from GB 5085.1.
HAZARDOUS_PH_ACID = Decimal("2.0")
#: GB 18599 Class I needs leachate pH "within 6–9" (bounds included) and leachate pollutants
#: under GB 8978; the platform holds no leachate metals, so Class I here is "by pH only".
CLASS_I_PH_RANGE = (Decimal(6), Decimal(9))

#: Applied to every end use of a solid waste (red mud, co-wastes), never to products.
WASTE_GATES: tuple[Clause, ...] = (
    _one(
        "leach_pH",
        LT,
        HAZARDOUS_PH_ALKALINE,
        GATE,
        GB_5085_1,
        note="pH ≥ 12.5 is corrosive hazardous waste and cannot trade as general waste.",
    ),
    _one(
        "leach_pH",
        GT,
        HAZARDOUS_PH_ACID,
        GATE,
        GB_5085_1,
        verified=False,
        note="Acid side of the corrosivity test; recorded from GB 5085.1, not from FACTS.",
    ),
)

# --- GB 6566 radioactivity -------------------------------------------------------------------

# Main structural materials: I_Ra ≤ 1.0 and I_r ≤ 1.0 ([verify] in FACTS). Applied to the red mud
# itself, though the standard judges the product: the platform cannot know the blend ratio, so
# it fails closed. Blending active red mud into a compliant product (Guizhou residue, up to ~75 %)
# is real, but has to be proven on the product, not assumed here.
_BUILDING_RADIOACTIVITY = (
    _one("I_Ra", LE, "1.0", GATE, GB_6566, verified=False, note="Main structural material."),
    _one("I_r", LE, "1.0", GATE, GB_6566, verified=False, note="Main structural material."),
)

# The same GB 6566 figures for cement, as information: the standard tests the cement.
_CEMENT_RADIOACTIVITY = (
    _one(
        "I_Ra",
        LE,
        "1.0",
        SPEC,
        GB_6566,
        verified=False,
        note="For information: GB 175-2023 type-tests the cement, of which an iron corrective "
        "is a few per cent.",
    ),
    _one(
        "I_r",
        LE,
        "1.0",
        SPEC,
        GB_6566,
        verified=False,
        note="For information: GB 175-2023 type-tests the cement, of which an iron corrective "
        "is a few per cent.",
    ),
)

# Roads and fills are outdoors: class C's ceiling (I_r ≤ 2.8, outdoor use only) is the nearest
# GB 6566 figure. Applied by analogy: no red mud road-base standard exists (MEE's HJ code is
# still a draft).
_OUTDOOR_RADIOACTIVITY = (
    _one(
        "I_r",
        LE,
        "2.8",
        GATE,
        GB_6566,
        note="Class C outdoor ceiling, applied by analogy to roads and fills.",
    ),
)

# --- Soil: GB 15618 "other" land at soil pH > 7.5 ([verify table]) and GB 36600 Cr(VI) ---------

# Screening values for the receiving soil, applied to the amendment itself: if the amendment
# meets them, no mixing ratio can push the soil over them. The lenient pH > 7.5 band is what
# FACTS has; a buyer's acid target soil has stricter values, which is a demand-side spec.
_GB_15618_PANEL = {
    "Cd": "0.6",
    "Hg": "3.4",
    "As": "25",
    "Pb": "170",
    "Cr": "250",
    "Cu": "100",
    "Ni": "190",
    "Zn": "300",
}
_SOIL_PANEL = (
    *(
        _one(code, LE, limit, GATE, GB_15618, verified=False, note="Other land, soil pH > 7.5.")
        for code, limit in _GB_15618_PANEL.items()
    ),
    # GB 15618 has no Cr(VI) value; GB 36600's class-1 land screening value is the nearest.
    _one("CrVI", LE, "3.0", GATE, GB_36600, note="Class-1 land screening value."),
)

# --- Grading rules per end use ---------------------------------------------------------------

_HIGH_FE_NOTE = (
    "High-Fe Bayer red mud grade; magnetising roast reached TFe 56.4 % at 88.5 % recovery "
    "(J. NEU 2021, 42(3):414)."
)
_RARE_METAL_NOTE = (
    "Any one of Sc, REE, Ga; rich red mud carries Sc ~150 and REE 2000–3000 mg/kg (Wagh & "
    "Pinnock 1987), a poor one REE ~300 mg/kg (Sci Rep 2017, PMC5681656)."
)

GRADING_RULES: MappingProxyType[EndUse, tuple[Clause, ...]] = MappingProxyType(
    {
        EndUse.STEEL: (
            # No standard fixes a feed grade; "high-Fe" Bayer red mud (Fe2O3 ~40 %+, TFe ~28 %)
            # is what magnetising roast upgraded to TFe 56.4 %. Either figure will do, since
            # labs report one or the other.
            Clause(
                tuple(
                    Requirement(code, GE, Decimal(limit), SPEC, PLATFORM, False, _HIGH_FE_NOTE)
                    for code, limit in (("TFe", "28"), ("Fe2O3", "40"))
                )
            ),
            # GB 50427 caps alkali in kg per tonne of hot metal ([verify]: about 3.0). At 10 % of
            # a ~1.6 t/t burden, 1.0 % alkali adds 1.6 kg/t, half that budget.
            _one(
                "Na2O+K2O",
                LE,
                "1.0",
                SPEC,
                GB_50427,
                verified=False,
                note="Platform conversion of the kg/t hot-metal cap at a 10 % burden share.",
            ),
        ),
        EndUse.CEMENT_IRON_CORRECTIVE: (
            _one("Fe2O3", GT, "40", SPEC, CEMENT_RAW_CODE),
            _one("MgO", LT, "3", SPEC, CEMENT_RAW_CODE),
            _one("Na2O+K2O", LT, "2", SPEC, CEMENT_RAW_CODE),
            _one(
                "Cl",
                LE,
                "0.030",
                SPEC,
                CEMENT_RAW_CODE,
                note="Relaxed raw-material limit for precalciner kilns.",
            ),
            # GB 175-2023 adds GB 6566 type tests on the cement, not on its raw materials: an
            # iron corrective is a few per cent of raw meal (Hindalco: up to 3 %), so the red
            # mud's own indices are shown with their margin for the buyer's blend calculation,
            # and do not block the use (FACTS §2).
            *_CEMENT_RADIOACTIVITY,
        ),
        # GB 5101's efflorescence grade is a test on the fired brick, not an assay limit.
        EndUse.BRICKS_CERAMICS: _BUILDING_RADIOACTIVITY,
        # Leachate pH 9–12.5 (Class II) is allowed: seepage control at the receiving site is the
        # buyer's permit, and the grading reports the hazard class beside the verdict.
        EndUse.ROAD_BASE: _OUTDOOR_RADIOACTIVITY,
        EndUse.BACKFILL: _OUTDOOR_RADIOACTIVITY,
        # The whole panel is required (the action plan asks for heavy-metal monitoring of red
        # mud and of the improved soil); NY/T 3034 also wants harmless processing first.
        EndUse.SOIL_AMENDMENT: _SOIL_PANEL,
        EndUse.RARE_METAL_EXTRACTION: (
            # Any one element worth extracting will do. The Sc and REE figures sit below the rich
            # Jamaican residue and above the poor Canadian one; FACTS has no Ga grade, so 100 mg/kg
            # is the platform's (its example Bayer residue, Ga2O3 0.085 %, has ~630 mg/kg Ga).
            # Vanadium and titanium are left out: FACTS gives no feed grade for either.
            Clause(
                tuple(
                    Requirement(code, GE, Decimal(limit), SPEC, PLATFORM, False, _RARE_METAL_NOTE)
                    for code, limit in (("Sc", "100"), ("REE", "1000"), ("Ga", "100"))
                )
            ),
        ),
    }
)

# --- Plausibility checks on assay input --------------------------------------------------------

#: Mass fraction of iron in Fe2O3 (2 × 55.845 / 159.688).
FE_IN_FE2O3 = Decimal("0.6994")
#: TFe may fall short of the iron in the reported Fe2O3 by this much (percentage points):
#: titration and XRF disagree a little. TFe above it is fine (FeO or metallic iron).
TFE_SHORTFALL_TOLERANCE = Decimal("1.0")
#: Oxides summed for the total check; XRF totals with LOI land at 98–101 %.
OXIDE_TOTAL_CODES = ("Fe2O3", "Al2O3", "SiO2", "CaO", "Na2O", "K2O", "TiO2", "MgO", "LOI")
OXIDE_TOTAL_MAX = Decimal(102)
#: Cr(VI) is part of total Cr; allow 10 % for the two methods' disagreement.
CRVI_OVER_CR_TOLERANCE = Decimal("1.10")
