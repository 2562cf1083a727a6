"""Materials that can be listed and the end uses they are graded for, as data.

Names follow the national Red Mud Comprehensive Utilization Action Plan (赤泥综合利用行动方案).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal
from types import MappingProxyType

from exchange.accounts.rules import Sector


class MaterialFamily(enum.StrEnum):
    RED_MUD = "red_mud"
    RM_PRODUCT = "rm_product"
    CO_WASTE = "co_waste"


class Process(enum.StrEnum):
    BAYER = "bayer"
    SINTERING = "sintering"
    COMBINED = "combined"


class Treatment(enum.StrEnum):
    SLURRY = "slurry"
    FILTER_CAKE = "filter_cake"
    DRIED = "dried"
    DEALKALIZED = "dealkalized"


PROCESS_NAMES: MappingProxyType[Process, tuple[str, str]] = MappingProxyType(
    {
        Process.BAYER: ("Bayer", "拜耳法"),
        Process.SINTERING: ("sintering", "烧结法"),
        Process.COMBINED: ("combined", "联合法"),
    }
)
TREATMENT_NAMES: MappingProxyType[Treatment, tuple[str, str]] = MappingProxyType(
    {
        Treatment.SLURRY: ("slurry", "料浆"),
        Treatment.FILTER_CAKE: ("filter cake", "压滤饼"),
        Treatment.DRIED: ("dried", "干化"),
        Treatment.DEALKALIZED: ("dealkalized", "脱碱"),
    }
)


@dataclass(frozen=True)
class Material:
    code: str
    family: MaterialFamily
    name_en: str
    name_zh: str
    #: Dry red-mud tonnes one (dry) tonne of this material stands for in utilization statistics.
    red_mud_factor: Decimal
    #: Why the factor is what it is; empty for red mud itself.
    factor_note: str = ""
    process: Process | None = None
    treatment: Treatment | None = None

    @property
    def solid_waste(self) -> bool:
        """Whether waste law applies (hazard gates, Class I/II); products follow product rules."""
        return self.family is not MaterialFamily.RM_PRODUCT


def red_mud_code(process: Process, treatment: Treatment) -> str:
    """The material code of red mud from ``process`` after ``treatment``."""
    return f"rm_{process}_{treatment}"


def _red_mud(process: Process, treatment: Treatment) -> Material:
    p_en, p_zh = PROCESS_NAMES[process]
    t_en, t_zh = TREATMENT_NAMES[treatment]
    return Material(
        code=red_mud_code(process, treatment),
        family=MaterialFamily.RED_MUD,
        name_en=f"{p_en[0].upper()}{p_en[1:]} red mud, {t_en}",
        name_zh=f"{p_zh}赤泥（{t_zh}）",
        # Dealkalizing washes out a few per cent of soluble salts; the solids are still the red
        # mud that left the pond, so it counts one for one.
        red_mud_factor=Decimal(1),
        process=process,
        treatment=treatment,
    )


# Products: the factor allocates red mud by mass among the co-products of one process, so that a
# tonne of red mud split into, say, iron concentrate and silica-alumina powder is counted once,
# not once per product. A tailing that goes back to the pond was not utilized and is not counted.
_FRACTION = (
    "A mass fraction separated from red mud; mass allocation counts each tonne once "
    "(platform assumption)."
)
_NO_SOLIDS = (
    "Carries no red-mud solids: the residue it came from is counted when that residue is "
    "traded (platform assumption)."
)

_PRODUCTS = [
    ("iron_concentrate", "Iron concentrate", "铁精粉", "1", _FRACTION),
    ("iron_oxide_powder", "Iron oxide powder", "氧化铁粉", "1", _FRACTION),
    ("ferrosilicon_powder", "Ferrosilicon powder", "硅铁粉", "1", _FRACTION),
    ("silica_alumina_powder", "Silica-alumina powder", "硅铝粉", "1", _FRACTION),
    ("high_calcium_alumina_powder", "High-calcium alumina powder", "高钙铝粉", "1", _FRACTION),
    ("aluminium_iron_powder", "Aluminium-iron powder", "铝铁粉", "1", _FRACTION),
    ("titanium_iron_powder", "Titanium-iron mixed powder", "钛铁混合粉", "1", _FRACTION),
    ("alumina_enriched_powder", "Alumina-enriched powder", "三氧化二铝富集粉", "1", _FRACTION),
    ("alkali_liquor", "Alkali liquor", "碱液", "0", _NO_SOLIDS),
    (
        "cementitious_additive",
        "Cement additive / cementitious material",
        "水泥添加剂胶凝材料",
        "0.5",
        "Red mud blended with clinker, slag or gypsum; about half by mass is assumed "
        "(platform assumption, to be replaced by the producer's recipe).",
    ),
    (
        "slag_micro_powder",
        "Slag micro-powder",
        "矿渣微粉",
        "0.3",
        "Ground slag with red mud as a minor constituent; 30 % by mass is assumed "
        "(platform assumption, to be replaced by the producer's recipe).",
    ),
    # Gallium is recovered from process liquor or leached from the residue at tens of mg/kg;
    # counting the metal's tonnage as red mud would be meaningless either way.
    ("gallium", "Gallium metal", "金属镓", "0", _NO_SOLIDS),
]

_CO_WASTES = [
    ("fly_ash", "Fly ash", "粉煤灰"),
    ("desulfurization_gypsum", "Desulfurization gypsum", "脱硫石膏"),
    ("steel_slag", "Steel slag", "钢渣"),
]

MATERIALS: MappingProxyType[str, Material] = MappingProxyType(
    {
        m.code: m
        for m in [
            *(_red_mud(p, t) for p in Process for t in Treatment),
            *(
                Material(code, MaterialFamily.RM_PRODUCT, en, zh, Decimal(factor), note)
                for code, en, zh, factor, note in _PRODUCTS
            ),
            *(
                # Listed so recipes can bundle them with red mud (co-utilization); they are not
                # red mud and must not inflate its utilization rate.
                Material(
                    code, MaterialFamily.CO_WASTE, en, zh, Decimal(0), "Not red mud: counts zero."
                )
                for code, en, zh in _CO_WASTES
            ),
        ]
    }
)


class EndUse(enum.StrEnum):
    STEEL = "steel"
    CEMENT_IRON_CORRECTIVE = "cement_iron_corrective"
    BRICKS_CERAMICS = "bricks_ceramics"
    ROAD_BASE = "road_base"
    BACKFILL = "backfill"
    SOIL_AMENDMENT = "soil_amendment"
    RARE_METAL_EXTRACTION = "rare_metal_extraction"


@dataclass(frozen=True)
class EndUseInfo:
    code: EndUse
    name_en: str
    name_zh: str
    #: Sectors whose companies typically buy for this use (for matching and notifications).
    buyer_sectors: tuple[Sector, ...]


END_USES: MappingProxyType[EndUse, EndUseInfo] = MappingProxyType(
    {
        info.code: info
        for info in [
            EndUseInfo(
                EndUse.STEEL,
                "Steel: iron recovery, ore blending and sintering",
                "钢铁：提铁、配矿与烧结",
                (Sector.STEEL, Sector.BYPRODUCT_PROCESSING),
            ),
            EndUseInfo(
                EndUse.CEMENT_IRON_CORRECTIVE,
                "Cement iron corrective",
                "水泥铁质矫正剂",
                (Sector.CEMENT,),
            ),
            EndUseInfo(
                EndUse.BRICKS_CERAMICS,
                "Bricks and ceramics",
                "砖瓦与陶瓷",
                (Sector.BRICKS_CERAMICS,),
            ),
            EndUseInfo(EndUse.ROAD_BASE, "Road base", "路基材料", (Sector.ROAD,)),
            EndUseInfo(
                EndUse.BACKFILL,
                "Backfill and mine filling",
                "回填与充填",
                (Sector.BACKFILL, Sector.ROAD),
            ),
            EndUseInfo(
                EndUse.SOIL_AMENDMENT,
                "Soil amendment and ecological restoration",
                "土壤调理与生态修复",
                (Sector.SOIL,),
            ),
            EndUseInfo(
                EndUse.RARE_METAL_EXTRACTION,
                "Rare-metal extraction (Ga, Sc, REE)",
                "稀有金属提取（镓、钪、稀土）",
                (Sector.CHEMICALS, Sector.BYPRODUCT_PROCESSING, Sector.ALUMINA),
            ),
        ]
    }
)
