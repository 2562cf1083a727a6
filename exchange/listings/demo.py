"""Demo lots and generation reports for the demo refineries (``exchange.demo``).

Assays follow ``FACTS.md``: high-Fe Bayer residue from Shandong (Fe2O3 ~50 %, alkali ~4 %),
CaO-rich sintering residue from Shanxi, dealkalized Bayer filter cake (Na2O < 1 %) and a
magnetic-separation iron concentrate (TFe 56.4 %) from Guangxi, a disposal-fee lot, and fly ash
and desulfurization gypsum for co-utilization. Lots are created through the services (so each
has its audit chain and grading rows) and published by the platform. Loading twice changes
nothing: a lot is keyed by its producer and Chinese title, a report by site and month.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership
from exchange.accounts.rules import Role
from exchange.actor import Actor
from exchange.db import utcnow
from exchange.listings import assays, generation, services
from exchange.listings.models import Lot, MonthlyGeneration

D = Decimal

_HEAVY = {"As": "38", "Cd": "0.4", "Cr": "420", "CrVI": "1.1", "Pb": "46", "Hg": "0.18"}
_HEAVY_FULL = {**_HEAVY, "Ni": "58", "Cu": "31", "Zn": "84"}

#: (company key, days until close or None, terms, assay values)
LOTS: list[tuple[str, int | None, dict[str, Any], dict[str, str]]] = [
    (
        "binzhou",
        5,
        {
            "material_code": "rm_bayer_filter_cake",
            "title_zh": "高铁拜耳法赤泥压滤饼（Fe2O3 约 48%）",
            "title_en": "High-Fe Bayer red mud filter cake (Fe2O3 about 48 %)",
            "description_zh": "山东滨州氧化铝厂新产生赤泥，板框压滤，适合磁化焙烧提铁或配矿。"
            "可提供取样与第三方复检。",
            "description_en": "Fresh residue from the Binzhou refinery, plate-and-frame pressed. "
            "Suited to magnetising roast for iron recovery or ore blending. Samples and "
            "third-party re-assay on request.",
            "quantity": D("30000"),
            "basis": "wet",
            "moisture_pct": D("30"),
            "min_order": D("1000"),
            "recurrence": "one_off",
            "sale_mode": "auction",
            "price": D("8.00"),
            "reserve_price": D("15.00"),
            "min_increment": D("1.00"),
            "anti_snipe_minutes": 5,
            "delivery_terms": "ex_works",
        },
        {
            "Fe2O3": "48.5",
            "TFe": "34.5",
            "Al2O3": "17.2",
            "SiO2": "9.1",
            "CaO": "3.2",
            "Na2O": "4.1",
            "K2O": "0.15",
            "TiO2": "4.8",
            "MgO": "0.4",
            "LOI": "10.9",
            "leach_pH": "11.4",
            "moisture": "30",
            "Ra226": "180",
            "Th232": "220",
            "K40": "90",
            "Ga": "55",
            "V": "780",
            "Sc": "55",
            "REE": "600",
            **_HEAVY_FULL,
        },
    ),
    (
        "lvliang",
        None,
        {
            "material_code": "rm_sintering_dried",
            "title_zh": "烧结法赤泥（干化，CaO 约 42%）月供",
            "title_en": "Sintering red mud, dried, CaO about 42 %, monthly supply",
            "description_zh": "山西吕梁烧结法赤泥，自然干化后含水约 12%。高钙，适合水泥生料、"
            "路基及回填。每月稳定供应。",
            "description_en": "Sintering-process residue from Lüliang, air-dried to about 12 % "
            "moisture. CaO-rich: cement raw meal, road base and backfill. Steady monthly supply.",
            "quantity": D("60000"),
            "basis": "dry",
            "moisture_pct": D("12"),
            "min_order": D("500"),
            "recurrence": "monthly",
            "monthly_quantity": D("20000"),
            "sale_mode": "buy_now",
            "price": D("18.00"),
            "delivery_terms": "ex_works",
        },
        {
            "CaO": "42.0",
            "SiO2": "20.1",
            "Fe2O3": "9.2",
            "Al2O3": "7.1",
            "Na2O": "2.8",
            "K2O": "0.4",
            "MgO": "1.6",
            "TiO2": "2.9",
            "LOI": "11.0",
            "leach_pH": "11.8",
            "moisture": "12",
            "Ra226": "110",
            "Th232": "150",
            "K40": "250",
            **_HEAVY,
        },
    ),
    (
        "baise",
        6,
        {
            "material_code": "rm_bayer_dealkalized",
            "title_zh": "脱碱拜耳法赤泥滤饼（Na2O<1%）",
            "title_en": "Dealkalized Bayer red mud filter cake (Na2O < 1 %)",
            "description_zh": "广西百色在线脱碱赤泥，Na2O 0.8%，Fe2O3 42.5%，可作水泥铁质矫正剂。",
            "description_en": "Online-dealkalized residue from Baise: Na2O 0.8 %, Fe2O3 42.5 %. "
            "A cement iron corrective.",
            "quantity": D("15000"),
            "basis": "wet",
            "moisture_pct": D("28"),
            "min_order": D("500"),
            "recurrence": "one_off",
            "sale_mode": "tender",
            "price": D("10.00"),
            "reserve_price": D("14.00"),
            "delivery_terms": "delivered",
        },
        {
            "Fe2O3": "42.5",
            "TFe": "30.1",
            "Al2O3": "18.0",
            "SiO2": "11.0",
            "CaO": "8.0",
            "Na2O": "0.8",
            "K2O": "0.12",
            "TiO2": "5.5",
            "MgO": "0.6",
            "LOI": "11.0",
            "Cl": "0.020",
            "leach_pH": "9.6",
            "moisture": "28",
            "Ra226": "120",
            "Th232": "150",
            "K40": "100",
            **_HEAVY_FULL,
        },
    ),
    (
        "baise",
        3,
        {
            "material_code": "iron_concentrate",
            "title_zh": "赤泥磁选铁精粉 TFe 56%",
            "title_en": "Iron concentrate from red mud, TFe 56 %",
            "description_zh": "赤泥磁化焙烧—磁选所得铁精粉，TFe 56.4%，回收率 88.5%。",
            "description_en": "Magnetising roast and magnetic separation of red mud: TFe 56.4 % "
            "at 88.5 % recovery.",
            "quantity": D("5000"),
            "basis": "dry",
            "moisture_pct": D("8"),
            "min_order": D("200"),
            "recurrence": "one_off",
            "sale_mode": "auction",
            "price": D("420.00"),
            "reserve_price": D("460.00"),
            "min_increment": D("5.00"),
            "anti_snipe_minutes": 5,
            "delivery_terms": "ex_works",
        },
        {
            "TFe": "56.4",
            "Fe2O3": "78.0",
            "SiO2": "5.5",
            "Al2O3": "6.2",
            "CaO": "1.2",
            "Na2O": "0.35",
            "K2O": "0.08",
            "MgO": "0.3",
            "TiO2": "3.1",
            "LOI": "1.5",
            "moisture": "8",
            "P": "0.05",
            "S": "0.08",
        },
    ),
    (
        "baise",
        None,
        {
            "material_code": "rm_bayer_filter_cake",
            "title_zh": "堆存拜耳法赤泥（处置费，路基/回填）",
            "title_en": "Stockpiled Bayer red mud, disposal fee paid (road base, backfill)",
            "description_zh": "百色干法堆场存量赤泥，碱含量较高，适合路基与矿山充填。"
            "我方向接收方支付处置费 35 元/吨。",
            "description_en": "Stockpiled residue from the Baise dry stack, alkali-rich; for "
            "road base and mine backfill. We pay the receiver a disposal fee of 35 CNY/t.",
            "quantity": D("80000"),
            "basis": "wet",
            "moisture_pct": D("25"),
            "min_order": D("2000"),
            "recurrence": "one_off",
            "sale_mode": "buy_now",
            "price": D("-35.00"),
            "delivery_terms": "ex_works",
        },
        {
            "Fe2O3": "24.0",
            "Al2O3": "20.0",
            "SiO2": "14.0",
            "CaO": "12.0",
            "Na2O": "6.5",
            "K2O": "0.2",
            "TiO2": "6.0",
            "MgO": "0.8",
            "LOI": "12.0",
            "leach_pH": "12.1",
            "moisture": "25",
            "Ra226": "160",
            "Th232": "210",
            "K40": "120",
        },
    ),
    (
        "lvliang",
        None,
        {
            "material_code": "fly_ash",
            "title_zh": "自备电厂 II 级粉煤灰",
            "title_en": "Grade II fly ash from the captive power plant",
            "description_zh": "与赤泥协同利用（赤泥—粉煤灰—脱硫石膏建材）。",
            "description_en": "For co-utilization with red mud (red mud, fly ash and gypsum "
            "building materials).",
            "quantity": D("12000"),
            "basis": "dry",
            "moisture_pct": D("1"),
            "min_order": D("100"),
            "recurrence": "monthly",
            "monthly_quantity": D("4000"),
            "sale_mode": "buy_now",
            "price": D("15.00"),
            "delivery_terms": "ex_works",
        },
        {
            "SiO2": "50.0",
            "Al2O3": "28.0",
            "Fe2O3": "6.0",
            "CaO": "5.0",
            "MgO": "1.2",
            "Na2O": "0.6",
            "K2O": "1.3",
            "TiO2": "1.1",
            "LOI": "4.0",
            "S": "0.6",
            "leach_pH": "8.9",
            "moisture": "1",
            "Ra226": "80",
            "Th232": "90",
            "K40": "600",
        },
    ),
    (
        "binzhou",
        None,
        {
            "material_code": "desulfurization_gypsum",
            "title_zh": "脱硫石膏（热电车间）",
            "title_en": "Desulfurization gypsum from the power unit",
            "description_zh": "可与赤泥、粉煤灰协同制备免烧砖。",
            "description_en": "For unfired bricks with red mud and fly ash.",
            "quantity": D("8000"),
            "basis": "wet",
            "moisture_pct": D("10"),
            "min_order": D("100"),
            "recurrence": "one_off",
            "sale_mode": "buy_now",
            "price": D("5.00"),
            "delivery_terms": "ex_works",
        },
        {
            "CaO": "32.5",
            "S": "18.2",
            "SiO2": "2.0",
            "Al2O3": "0.8",
            "Fe2O3": "0.5",
            "MgO": "0.6",
            "Na2O": "0.1",
            "K2O": "0.1",
            "LOI": "20.5",
            "Cl": "0.010",
            "leach_pH": "7.5",
            "moisture": "10",
        },
    ),
]

#: Dry tonnes of new red mud per month, by demo refinery (roughly 1–1.5 Mt a year each).
GENERATION = {"binzhou": D("118000"), "lvliang": D("86500"), "baise": D("74200")}


def _owner(session: Session, company: Company) -> Actor:
    membership = session.scalar(
        select(Membership).where(Membership.company_id == company.id, Membership.role == Role.OWNER)
    )
    assert membership is not None
    return Actor(membership.user_id, company.id, role=Role.OWNER.value, ip=None)


def load_lots(session: Session, companies: dict[str, Company]) -> bool:
    """Create the demo lots and generation reports that are missing; True if any was."""
    created = False
    now = utcnow().replace(minute=0, second=0, microsecond=0)
    for key, close_days, terms, values in LOTS:
        company = companies.get(key)
        if company is None:
            continue
        exists = session.scalar(
            select(Lot.id).where(Lot.producer_id == company.id, Lot.title_zh == terms["title_zh"])
        )
        if exists is not None:
            continue
        actor = _owner(session, company)
        data = {
            **terms,
            "site_id": company.sites[0].id,
            "available_from": now.date(),
            "closes_at": now + dt.timedelta(days=close_days) if close_days else None,
        }
        lot = services.create_lot(session, actor, data)
        meta = {
            "lab_name": "国家有色金属质量检验检测中心（示例）",
            "accreditation_no": "CMA 2020000000",
            "sampled_on": now.date() - dt.timedelta(days=10),
        }
        assays.record_assay(session, actor, lot.id, meta, {k: D(v) for k, v in values.items()})
        services.submit_lot(session, actor, lot.id, auto_publish=True)
        created = True
    this_month = generation.first_of_month(now.date())
    for key, tonnes in GENERATION.items():
        company = companies.get(key)
        if company is None:
            continue
        actor = _owner(session, company)
        site_id = company.sites[0].id
        month = this_month
        for back in range(1, 7):
            month = generation.first_of_month(month - dt.timedelta(days=1))
            if session.scalar(
                select(MonthlyGeneration.id).where(
                    MonthlyGeneration.site_id == site_id, MonthlyGeneration.month == month
                )
            ):
                continue
            wobble = D(back % 3 - 1) * tonnes / 50  # ±2 % from month to month
            generation.report_generation(
                session, actor, {"site_id": site_id, "month": month, "tonnes": tonnes + wobble}
            )
            created = True
    return created
