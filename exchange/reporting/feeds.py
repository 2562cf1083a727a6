"""Turn the source tables into the plain facts the reporting rules take.

This is the only module of the context that knows where the data live. Two feeds wait for
contexts that are not merged yet and return nothing until then:

- :func:`delivered_facts` — the contracts context's deliveries;
- :func:`bid_facts` — the trading context's bids.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Company, Membership, Site, User
from exchange.audit.models import AuditEvent
from exchange.catalog.materials import MATERIALS
from exchange.listings.models import Lot, MonthlyGeneration
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
from exchange.trading.models import Award, AwardStatus

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


def delivered_facts(
    session: Session,
    since: dt.date,
    *,
    until: dt.date | None = None,
    company_id: int | None = None,
) -> list[DeliveryFact]:
    """Received deliveries (accepted, partly accepted or rejected) received on or after ``since``
    (and on or before ``until``), optionally only those where ``company_id`` is seller or buyer.

    Empty until the contracts context is merged: its ``contract_deliveries`` (joined to
    ``contracts`` for the parties, basis, moisture and material, to the lot for the origin site
    and the assay values CaO, LOI, Fe2O3 and TFe, and to the buyer's site for the distance)
    feed this function after the merge. Everything else in reporting reads deliveries from here.
    """
    return []


def bid_facts(session: Session, since: dt.datetime) -> list[BidFact]:
    """Bids placed since ``since``.

    Empty until the trading context is merged: its ``bids`` table (id, lot_id, company_id,
    user_id, price, quantity, status, placed_at) joined to ``lots`` for the producer_id feeds
    this function after the merge.
    """
    return []


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
