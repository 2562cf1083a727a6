"""The plain facts the reporting rules work on, fed by ``feeds`` from whatever tables exist.

Frozen dataclasses with ``Decimal`` tonnes and prices: no Flask, no SQLAlchemy. A context that
lands later (bids, deliveries) plugs in by producing these, not by changing the rules.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True)
class GenerationFact:
    """Dry tonnes of new red mud one plant reported for one month."""

    month: dt.date  #: first day of the month
    producer_id: int
    site_id: int
    province: str
    tonnes_dry: Decimal


@dataclass(frozen=True)
class DeliveryFact:
    """One received delivery (one truck or train load) of red mud or a red-mud product.

    Tonnes: ``dispatched_t`` and ``received_t`` are weighbridge net tonnes (as weighed, wet);
    ``accepted_t`` is on the contract's ``basis`` (wet or dry).
    """

    delivery_id: int
    contract_id: int
    seller_id: int
    buyer_id: int
    #: The producer's storage site the material left from, and its province.
    origin_site_id: int
    origin_province: str
    material_code: str
    basis: str  #: "wet" | "dry"
    #: Moisture in % of wet mass; needed to turn wet tonnes into dry ones.
    moisture_pct: Decimal | None
    dispatched_t: Decimal
    received_t: Decimal | None
    accepted_t: Decimal
    end_use: str | None
    received_on: dt.date
    #: Road distance travelled; None when the sites' coordinates are unknown.
    distance_km: Decimal | None = None
    #: From the lot's assay (weight % of dry mass); None when not measured.
    cao_pct: Decimal | None = None
    loi_pct: Decimal | None = None
    fe2o3_pct: Decimal | None = None
    tfe_pct: Decimal | None = None
    destination_province: str | None = None


@dataclass(frozen=True)
class TradeFact:
    """A price observation: tonnes awarded at a signed price per tonne (CNY)."""

    trade_id: int
    lot_id: int
    seller_id: int
    buyer_id: int
    material_family: str
    province: str
    price: Decimal
    quantity: Decimal
    at: dt.datetime
    #: Shanghai-local date of ``at``; the week an observation belongs to.
    local_date: dt.date


@dataclass(frozen=True)
class AwardFact:
    """An award and whether its contract got signed (open, contracted, lapsed)."""

    award_id: int
    lot_id: int
    buyer_id: int
    status: str
    created_at: dt.datetime


@dataclass(frozen=True)
class BidFact:
    bid_id: int
    lot_id: int
    company_id: int
    user_id: int | None
    price: Decimal
    quantity: Decimal
    #: active | superseded | withdrawn | won | partially_won | lost | lapsed
    status: str
    placed_at: dt.datetime
    #: The lot's producer (saves looking the lot up; the lot facts are used when None).
    producer_id: int | None = None


@dataclass(frozen=True)
class LotFact:
    lot_id: int
    producer_id: int
    material_code: str
    quantity: Decimal
    status: str
    reserve_price: Decimal | None
    created_at: dt.datetime
    published_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None


@dataclass(frozen=True)
class SiteFact:
    site_id: int
    latitude: Decimal
    longitude: Decimal


@dataclass(frozen=True)
class CompanyFact:
    company_id: int
    name: str
    uscc: str
    #: Users who are or were members (former members come from the audit trail).
    user_ids: frozenset[int] = field(default_factory=frozenset)
    #: Users' and the company's contact e-mail addresses.
    emails: frozenset[str] = field(default_factory=frozenset)
    sites: tuple[SiteFact, ...] = ()


@dataclass(frozen=True)
class AffiliationFact:
    """An affiliation an administrator declared between two companies."""

    company_a: int
    company_b: int
    kind: str
    note: str = ""


@dataclass(frozen=True)
class LoginBurstFact:
    """An ``accounts:login:failures_burst`` audit event."""

    event_id: int
    at: dt.datetime
    email: str
    failures: int
    window_seconds: int
    ip: str | None
    user_id: int | None
