"""Turn the source tables into the plain facts the reporting rules take.

This is the only module of the context that knows where the data live: deliveries come from
the contracts context's ``contract_deliveries``, bids and awards from trading, generation and
lots from listings.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership, Site, User
from exchange.audit.models import AuditEvent
from exchange.catalog.materials import MATERIALS
from exchange.contracts.models import Contract, Delivery, DeliveryStatus
from exchange.listings.models import Lot, MonthlyGeneration
from exchange.reporting.anomalies import distance_km as great_circle_km
from exchange.reporting.facts import (
    AffiliationFact,
    AwardFact,
    BidFact,
    CompanyFact,
    DeliveryFact,
    GenerationFact,
    LoginBurstFact,
    LotFact,
    SiteFact,
    TradeFact,
)
from exchange.reporting.models import CompanyAffiliation
from exchange.trading.models import Award, AwardStatus, Bid

SHANGHAI = ZoneInfo("Asia/Shanghai")


def red_mud_factor(material_code: str) -> Decimal:
    """Dry red-mud tonnes per dry tonne of a catalog material (0 for an unknown code)."""
    material = MATERIALS.get(material_code)
    return material.red_mud_factor if material else Decimal(0)


def generation_facts(
    session: Session,
    months: set[dt.date] | None = None,
    *,
    company_id: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> list[GenerationFact]:
    """Monthly generation reports (dry tonnes), optionally for some months or one producer."""
    query = select(
        MonthlyGeneration.month,
        MonthlyGeneration.company_id,
        MonthlyGeneration.site_id,
        Site.province,
        MonthlyGeneration.tonnes,
    ).join(Site, Site.id == MonthlyGeneration.site_id)
    if months is not None:
        query = query.where(MonthlyGeneration.month.in_(sorted(months)))
    if company_id is not None:
        query = query.where(MonthlyGeneration.company_id == company_id)
    if since is not None:
        query = query.where(MonthlyGeneration.month >= since)
    if until is not None:
        query = query.where(MonthlyGeneration.month <= until)
    return [GenerationFact(*row) for row in session.execute(query)]


#: Deliveries the buyer has received (weighed in and judged); a dispatched load is on the road.
RECEIVED = (DeliveryStatus.ACCEPTED, DeliveryStatus.PARTIALLY_ACCEPTED, DeliveryStatus.REJECTED)
#: Road km per great-circle km between the two sites (the same detour factor freight uses).
ROAD_FACTOR = Decimal("1.3")
#: Assay parameters the carbon method reads, by the fact field they fill.
CARBON_ASSAY = {"CaO": "cao_pct", "LOI": "loi_pct", "Fe2O3": "fe2o3_pct", "TFe": "tfe_pct"}
#: Rows fetched per round trip when streaming deliveries.
BATCH = 5000


def _percent(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _assay_fields(snapshot: Mapping[str, object] | None) -> dict[str, Decimal | None]:
    values = (snapshot or {}).get("values")
    if not isinstance(values, Mapping):
        values = {}
    return {name: _percent(values.get(code)) for code, name in CARBON_ASSAY.items()}


class _Sites:
    """Every site's coordinates and each company's sites, to find where a load went."""

    def __init__(self, session: Session) -> None:
        self.coords: dict[int, SiteFact] = {}
        self.by_company: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for site_id, company_id, province, lat, lon in session.execute(
            select(Site.id, Site.company_id, Site.province, Site.latitude, Site.longitude).order_by(
                Site.id
            )
        ):
            self.coords[site_id] = SiteFact(site_id, lat, lon)
            self.by_company[company_id].append((site_id, province))

    def destination(self, company_id: int, province: str) -> int | None:
        """The buyer's site the contract was drawn to: its first site in the contract's
        destination province (the drafting takes the buyer's first site), else its first."""
        sites = self.by_company.get(company_id) or []
        for site_id, site_province in sites:
            if site_province == province:
                return site_id
        return sites[0][0] if sites else None

    def road_km(self, origin: int, destination: int | None) -> Decimal | None:
        a, b = self.coords.get(origin), self.coords.get(destination or 0)
        if a is None or b is None:
            return None
        km = Decimal(str(round(great_circle_km(a, b), 1))) * ROAD_FACTOR
        return km.quantize(Decimal("0.1"))


def delivered_facts(
    session: Session,
    since: dt.date,
    *,
    until: dt.date | None = None,
    company_id: int | None = None,
) -> Iterator[DeliveryFact]:
    """Received deliveries (accepted, partly accepted or rejected) received on or after ``since``
    (and on or before ``until``), optionally only those where ``company_id`` is seller or buyer.

    Streamed in batches (a full rebuild reads every delivery once). Each load is joined to its
    contract for the parties, basis, moisture, material, provinces and the assay the lot was
    sold on (CaO, LOI, Fe2O3, TFe), and to the lot for the producer's storage site. The end use
    is the one recorded on receipt, else the contract's. The distance is the great-circle
    distance from the storage site to the buyer's site × ``ROAD_FACTOR``.
    """
    where = [Delivery.status.in_(RECEIVED), Delivery.received_on >= since]
    if until is not None:
        where.append(Delivery.received_on <= until)
    if company_id is not None:
        where.append((Contract.seller_id == company_id) | (Contract.buyer_id == company_id))
    contract_ids = select(Delivery.contract_id).join(Contract).where(*where)
    # Per contract, read once: the sold-on assay and the lot's storage site.
    contracts: dict[int, tuple[int, dict[str, Decimal | None]]] = {
        cid: (site_id, _assay_fields(snapshot))
        for cid, site_id, snapshot in session.execute(
            select(Contract.id, Lot.site_id, Contract.assay_snapshot)
            .join(Lot, Lot.id == Contract.lot_id)
            .where(Contract.id.in_(contract_ids))
        )
    }
    if not contracts:
        return
    sites = _Sites(session)
    distances: dict[tuple[int, int], Decimal | None] = {}
    query = (
        select(
            Delivery.id,
            Delivery.contract_id,
            Contract.seller_id,
            Contract.buyer_id,
            Contract.origin_province,
            Contract.destination_province,
            Contract.material_code,
            Contract.basis,
            Contract.moisture_pct,
            Delivery.net_t,
            Delivery.received_net_t,
            Delivery.accepted_t,
            Delivery.end_use,
            Contract.end_use,
            Delivery.received_on,
        )
        .join(Contract, Contract.id == Delivery.contract_id)
        .where(*where)
        .order_by(Delivery.id)
        .execution_options(yield_per=BATCH)
    )
    for (
        delivery_id,
        contract_id,
        seller_id,
        buyer_id,
        origin_province,
        destination_province,
        material_code,
        basis,
        moisture_pct,
        net_t,
        received_net_t,
        accepted_t,
        delivery_end_use,
        contract_end_use,
        received_on,
    ) in session.execute(query):
        origin_site_id, assay = contracts[contract_id]
        route = (origin_site_id, buyer_id)
        if route not in distances:
            destination = sites.destination(buyer_id, destination_province)
            distances[route] = sites.road_km(origin_site_id, destination)
        yield DeliveryFact(
            delivery_id=delivery_id,
            contract_id=contract_id,
            seller_id=seller_id,
            buyer_id=buyer_id,
            origin_site_id=origin_site_id,
            origin_province=origin_province,
            material_code=material_code,
            basis=basis,
            moisture_pct=moisture_pct,
            dispatched_t=net_t,
            received_t=received_net_t,
            accepted_t=accepted_t if accepted_t is not None else Decimal(0),
            end_use=delivery_end_use or contract_end_use,
            received_on=received_on,
            distance_km=distances[route],
            destination_province=destination_province,
            **assay,
        )


def bid_facts(session: Session, since: dt.datetime) -> list[BidFact]:
    """Bids placed since ``since`` (every revision is its own row), with the lot's producer."""
    rows = session.execute(
        select(
            Bid.id,
            Bid.lot_id,
            Bid.company_id,
            Bid.user_id,
            Bid.price,
            Bid.quantity,
            Bid.status,
            Bid.placed_at,
            Lot.producer_id,
        )
        .join(Lot, Lot.id == Bid.lot_id)
        .where(Bid.placed_at >= since)
        .order_by(Bid.id)
    )
    return [
        BidFact(
            bid_id=row[0],
            lot_id=row[1],
            company_id=row[2],
            user_id=row[3],
            price=row[4],
            quantity=row[5],
            status=str(row[6]),
            placed_at=row[7],
            producer_id=row[8],
        )
        for row in rows
    ]


def _local_date(at: dt.datetime) -> dt.date:
    return at.astimezone(SHANGHAI).date()


def trade_facts(session: Session, since: dt.datetime | None = None) -> list[TradeFact]:
    """Awards in CNY that stand (open or contracted; a lapsed award passed its tonnes on)."""
    query = (
        select(Award, Lot.producer_id, Lot.material_family, Lot.province)
        .join(Lot, Lot.id == Award.lot_id)
        .where(Award.status != AwardStatus.LAPSED, Award.currency == "CNY")
    )
    if since is not None:
        query = query.where(Award.created_at >= since)
    return [
        TradeFact(
            trade_id=award.id,
            lot_id=award.lot_id,
            seller_id=producer_id,
            buyer_id=award.buyer_id,
            material_family=family,
            province=province,
            price=award.price,
            quantity=award.quantity,
            at=award.created_at,
            local_date=_local_date(award.created_at),
        )
        for award, producer_id, family, province in session.execute(query)
    ]


def award_facts(session: Session, since: dt.datetime) -> list[AwardFact]:
    rows = session.execute(
        select(Award.id, Award.lot_id, Award.buyer_id, Award.status, Award.created_at).where(
            Award.created_at >= since
        )
    )
    return [AwardFact(a, lot, buyer, str(status), at) for a, lot, buyer, status, at in rows]


def lot_facts(session: Session, since: dt.datetime) -> list[LotFact]:
    """Lots created, or closed, since ``since``."""
    rows = session.scalars(select(Lot).where((Lot.created_at >= since) | (Lot.closed_at >= since)))
    return [
        LotFact(
            lot_id=lot.id,
            producer_id=lot.producer_id,
            material_code=lot.material_code,
            quantity=lot.quantity,
            status=str(lot.status),
            reserve_price=lot.reserve_price,
            created_at=lot.created_at,
            published_at=lot.published_at,
            closed_at=lot.closed_at,
        )
        for lot in rows
    ]


def company_facts(session: Session) -> list[CompanyFact]:
    """Every company with its members (present and former), e-mails and sites."""
    users: dict[int, set[int]] = defaultdict(set)
    emails: dict[int, set[str]] = defaultdict(set)
    for company_id, user_id, email in session.execute(
        select(Membership.company_id, User.id, User.email).join(User, User.id == Membership.user_id)
    ):
        users[company_id].add(user_id)
        emails[company_id].add(email)
    # Members who left are only in the audit trail now.
    for entity_id, data in session.execute(
        select(AuditEvent.entity_id, AuditEvent.data).where(
            AuditEvent.action == "accounts:member:removed", AuditEvent.entity_type == "company"
        )
    ):
        removed = json.loads(data)
        if str(entity_id).isdigit() and isinstance(removed.get("user_id"), int):
            users[int(entity_id)].add(removed["user_id"])
            if isinstance(removed.get("email"), str):
                emails[int(entity_id)].add(removed["email"])
    sites: dict[int, list[SiteFact]] = defaultdict(list)
    for site in session.scalars(select(Site)):
        sites[site.company_id].append(SiteFact(site.id, site.latitude, site.longitude))
    return [
        CompanyFact(
            company_id=c.id,
            name=c.legal_name_zh,
            uscc=c.uscc,
            user_ids=frozenset(users[c.id]),
            emails=frozenset(emails[c.id] | {c.contact_email}),
            sites=tuple(sites[c.id]),
        )
        for c in session.scalars(select(Company).order_by(Company.id))
    ]


def affiliation_facts(session: Session) -> list[AffiliationFact]:
    return [
        AffiliationFact(a.company_a_id, a.company_b_id, a.kind.value, a.note)
        for a in session.scalars(select(CompanyAffiliation))
    ]


def login_burst_facts(session: Session, since: dt.datetime) -> list[LoginBurstFact]:
    events = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "accounts:login:failures_burst", AuditEvent.occurred_at >= since
        )
    )
    facts = []
    for e in events:
        data = json.loads(e.data)
        facts.append(
            LoginBurstFact(
                event_id=e.id,
                at=e.occurred_at,
                email=str(data.get("email", "")),
                failures=int(data.get("failures", 0)),
                window_seconds=int(data.get("window_seconds", 0)),
                ip=e.ip,
                user_id=int(e.entity_id) if e.entity_type == "user" else None,
            )
        )
    return facts
