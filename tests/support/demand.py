"""Builders for the demand context: drafts, demands posted through the service, graded lots."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Site, User
from exchange.catalog.materials import MATERIALS
from exchange.catalog.rules import Fitness, end_use_allowed, grade
from exchange.db import commit
from exchange.demand import services
from exchange.demand.drafts import DemandDraft
from exchange.demand.rules import SpecWindow
from exchange.listings.models import LotEndUse
from tests.support.builders import actor_of

#: Chinese cities with coordinates (WGS-84), for sites and known distances.
CITIES = {
    "zibo": (Decimal("36.813"), Decimal("118.055")),
    "binzhou": (Decimal("37.383"), Decimal("117.970")),
    "lvliang": (Decimal("37.518"), Decimal("111.141")),
    "baise": (Decimal("23.902"), Decimal("106.618")),
    "tangshan": (Decimal("39.630"), Decimal("118.180")),
    "zhengzhou": (Decimal("34.747"), Decimal("113.625")),
    "taiyuan": (Decimal("37.870"), Decimal("112.549")),
}

#: A high-iron Bayer red mud that passes the cement iron-corrective windows and gates.
HIGH_FE_BAYER = {
    "Fe2O3": "48.5",
    "Al2O3": "16.0",
    "SiO2": "8.0",
    "CaO": "2.5",
    "Na2O": "1.2",
    "K2O": "0.3",
    "MgO": "0.8",
    "TiO2": "4.2",
    "LOI": "10.0",
    "Cl": "0.02",
    "leach_pH": "11.2",
    "Ra226": "120",
    "Th232": "140",
    "K40": "300",
}
LOW_FE_BAYER = {**HIGH_FE_BAYER, "Fe2O3": "32.0", "Al2O3": "22.0"}

CEMENT_WINDOWS = (
    SpecWindow("Fe2O3", Decimal("40"), None),
    SpecWindow("MgO", None, Decimal("3")),
    SpecWindow("Na2O+K2O", None, Decimal("2")),
)


def site_at(db: Session, company: Company, city: str, name: str | None = None) -> Site:
    lat, lon = CITIES[city]
    site = Site(
        company_id=company.id,
        name=name or city,
        province="37",
        city=city,
        latitude=lat,
        longitude=lon,
    )
    db.add(site)
    db.flush()
    db.refresh(company)
    return site


def move_first_site(db: Session, company: Company, city: str) -> Site:
    site = company.sites[0]
    site.latitude, site.longitude = CITIES[city]
    db.flush()
    return site


def draft(site_id: int, **changes: Any) -> DemandDraft:
    today = dt.date.today()
    values: dict[str, Any] = {
        "title": "Iron corrective for kiln 2",
        "end_use": "cement_iron_corrective",
        "families": ("red_mud",),
        "materials": (),
        "specs": CEMENT_WINDOWS,
        "quantity": Decimal("3000"),
        "recurrence": "monthly",
        "min_lot_size": Decimal("500"),
        "delivery_site_id": site_id,
        "window_start": today,
        "window_end": today + dt.timedelta(days=365),
        "max_price": Decimal("80"),
        "modes": ("road",),
        "visibility": "public",
        "notes": "",
    }
    values.update(changes)
    return DemandDraft(**values)


def post_demand(db: Session, buyer: Company, owner: User, *, settle: bool = True, **changes: Any):
    """Post a demand as ``owner``; with ``settle``, commit so that its queued match recompute
    runs (synchronously under TESTING), as after a request."""
    site_id = changes.pop("delivery_site_id", buyer.sites[0].id)
    demand = services.create_demand(db, actor_of(owner, buyer), draft(site_id, **changes))
    if settle:
        commit(db)
    return demand


def grade_lot(db: Session, lot) -> None:  # type: ignore[no-untyped-def]
    """Write the lot's grading rows as the listings services will (fitness and gate per use)."""
    values = {v.parameter: v.value for v in (lot.assay.values if lot.assay else [])}
    grading = grade(values, solid_waste=MATERIALS[lot.material_code].solid_waste)
    lot.end_uses.clear()
    db.flush()
    for use in grading.uses:
        allowed, _reason = end_use_allowed(grading, use.end_use)
        lot.end_uses.append(
            LotEndUse(
                end_use=use.end_use.value,
                fitness=use.fitness.value,
                gated=not allowed or use.gate is not Fitness.FIT,
            )
        )
    db.flush()
