"""Test data for the listings context: valid lot terms and assays, and a lot made by services."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from exchange.accounts.models import Company, User
from exchange.db import utcnow
from tests.support.builders import actor_of

D = Decimal

#: Dealkalized high-Fe Bayer red mud: fit for cement and steel, Class II leachate.
GOOD_ASSAY: dict[str, Decimal] = {
    "Fe2O3": D("45.0"),
    "TFe": D("31.6"),
    "Al2O3": D("18.0"),
    "SiO2": D("10.0"),
    "CaO": D("6.0"),
    "Na2O": D("0.8"),
    "K2O": D("0.1"),
    "MgO": D("1.0"),
    "TiO2": D("5.0"),
    "LOI": D("11.0"),
    "Cl": D("0.020"),
    "leach_pH": D("10.5"),
    "Ra226": D("60"),
    "Th232": D("80"),
    "K40": D("200"),
}
LAB = {"lab_name": "Test Lab", "accreditation_no": "CMA-1", "sampled_on": dt.date(2026, 11, 1)}


def lot_terms(site_id: int, **changes: Any) -> dict[str, Any]:
    """Valid buy-now terms for a lot at ``site_id``; ``changes`` override any field."""
    terms: dict[str, Any] = {
        "material_code": "rm_bayer_dealkalized",
        "site_id": site_id,
        "title_zh": "脱碱赤泥滤饼",
        "title_en": "Dealkalized red mud filter cake",
        "description_zh": "测试",
        "description_en": "",
        "quantity": D("1000"),
        "basis": "dry",
        "moisture_pct": D("28"),
        "min_order": D("100"),
        "recurrence": "one_off",
        "monthly_quantity": None,
        "available_from": utcnow().date(),
        "available_until": None,
        "sale_mode": "buy_now",
        "price": D("12.00"),
        "reserve_price": None,
        "min_increment": None,
        "opens_at": None,
        "closes_at": None,
        "hard_close_at": None,
        "anti_snipe_minutes": None,
        "delivery_terms": "ex_works",
    }
    terms.update(changes)
    return terms


def auction_terms(site_id: int, **changes: Any) -> dict[str, Any]:
    auction: dict[str, Any] = {
        "sale_mode": "auction",
        "price": D("8.00"),
        "reserve_price": D("15.00"),
        "min_increment": D("1.00"),
        "closes_at": utcnow() + dt.timedelta(days=3),
        "anti_snipe_minutes": 5,
    }
    return lot_terms(site_id, **{**auction, **changes})


def listed_lot(
    db: Session,
    company: Company,
    owner: User,
    *,
    assay: dict[str, Decimal] | None = None,
    publish: bool = False,
    **changes: Any,
):
    """A lot created through the services, with an assay, optionally published by the platform."""
    from exchange.listings import assays, services

    actor = actor_of(owner, company)
    lot = services.create_lot(db, actor, lot_terms(company.sites[0].id, **changes))
    if assay is not None or publish:
        assays.record_assay(db, actor, lot.id, LAB, assay or GOOD_ASSAY)
    if publish:
        services.submit_lot(db, actor, lot.id, auto_publish=True)
    return lot
