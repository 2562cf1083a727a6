"""A producer's production–use linkage: where its red mud went (buyers' sectors, provinces and
end uses, from its received deliveries), and how its contracted offtake and the open demand
for its lots compare with what it generated."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.companies import require
from exchange.accounts.models import Company
from exchange.actor import Actor
from exchange.contracts.models import Contract
from exchange.contracts.rules import ContractStatus
from exchange.demand.models import Demand, DemandStatus, Match
from exchange.listings.models import Lot
from exchange.listings.rules import Recurrence
from exchange.reporting import feeds, rules
from exchange.reporting.statistics import Period

ZERO = Decimal(0)
TONNE = Decimal("0.001")
#: Contracts that never bound anyone to take the material.
NOT_BINDING = (ContractStatus.AWAITING_SIGNATURES, ContractStatus.LAPSED, ContractStatus.CANCELLED)


@dataclass(frozen=True)
class Share:
    """Dry red-mud tonnes that went to one sector, province or end use."""

    key: str
    red_mud_t: Decimal
    deliveries: int


@dataclass(frozen=True)
class Offtake:
    generated_t: Decimal
    #: Dry red-mud tonnes of the producer's received deliveries.
    delivered_t: Decimal
    #: Dry red-mud tonnes of the contracts it signed in the period (binding offtake).
    contracted_t: Decimal
    deliveries: int
    #: Tonnes the open demands matching its lots ask for over the period (a monthly demand
    #: counts once per month of the period); each demand once however many lots it matches.
    demanded_t: Decimal
    #: How many open demands match its lots now.
    demands: int
    #: Deliveries on a wet basis without a moisture: not converted, left out of the tonnes.
    unconverted: int
    by_sector: list[Share]
    by_province: list[Share]
    by_end_use: list[Share]

    @property
    def rate(self) -> Decimal | None:
        return rules.utilization_rate(self.generated_t, self.delivered_t)

    @property
    def contracted_rate(self) -> Decimal | None:
        return rules.utilization_rate(self.generated_t, self.contracted_t)

    @property
    def demanded_rate(self) -> Decimal | None:
        return rules.utilization_rate(self.generated_t, self.demanded_t)


def demanded_offtake(session: Session, company_id: int, months: int) -> tuple[Decimal, int]:
    """(tonnes, demands) that open demands matching the producer's lots ask for over
    ``months`` months: one-off demands once, monthly ones per month."""
    rows = session.execute(
        select(Demand.id, Demand.quantity, Demand.recurrence)
        .where(
            Demand.status == DemandStatus.OPEN,
            Demand.id.in_(
                select(Match.demand_id)
                .join(Lot, Lot.id == Match.lot_id)
                .where(Lot.producer_id == company_id)
            ),
        )
        .order_by(Demand.id)
    ).all()
    total = sum(
        (q * months if r == Recurrence.MONTHLY else q for _id, q, r in rows),
        ZERO,
    )
    return Decimal(total).quantize(TONNE, ROUND_HALF_UP), len(rows)


def _shares(sums: dict[str, list[Decimal | int]]) -> list[Share]:
    shares = [
        Share(k, Decimal(v[0]).quantize(TONNE, ROUND_HALF_UP), int(v[1])) for k, v in sums.items()
    ]
    return sorted(shares, key=lambda s: (-s.red_mud_t, s.key))


def offtake(session: Session, company_id: int, period: Period) -> Offtake:
    """The linkage of producer ``company_id`` over ``period`` (whole months)."""
    until = rules.add_months(period.last, 1) - dt.timedelta(days=1)
    generated = sum(
        (
            g.tonnes_dry
            for g in feeds.generation_facts(
                session, company_id=company_id, since=period.first, until=period.last
            )
        ),
        ZERO,
    )
    facts = [
        d
        for d in feeds.delivered_facts(session, period.first, until=until, company_id=company_id)
        if d.seller_id == company_id
    ]
    sectors = dict(
        session.execute(
            select(Company.id, Company.sector).where(
                Company.id.in_(sorted({d.buyer_id for d in facts}))
            )
        ).all()
    )
    by: dict[str, dict[str, list[Decimal | int]]] = {
        "sector": defaultdict(lambda: [ZERO, 0]),
        "province": defaultdict(lambda: [ZERO, 0]),
        "end_use": defaultdict(lambda: [ZERO, 0]),
    }
    delivered, unconverted = ZERO, 0
    for d in facts:
        part = rules.delivery_contribution(d, feeds.red_mud_factor(d.material_code))
        if part.red_mud_t is None:
            unconverted += 1
            continue
        delivered += part.red_mud_t
        sector = sectors.get(d.buyer_id)
        for name, key in (
            ("sector", str(sector.value) if sector is not None else "other"),
            ("province", d.destination_province or ""),
            ("end_use", d.end_use or "unspecified"),
        ):
            entry = by[name][key]
            entry[0] = Decimal(entry[0]) + part.red_mud_t
            entry[1] = int(entry[1]) + 1
    contracted = ZERO
    start = dt.datetime.combine(period.first, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    for code, quantity, basis, moisture in session.execute(
        select(Contract.material_code, Contract.quantity, Contract.basis, Contract.moisture_pct)
        .where(Contract.seller_id == company_id, Contract.status.not_in(NOT_BINDING))
        .where(Contract.activated_at >= start, Contract.activated_at < end)
    ):
        dry = rules.dry_tonnes(quantity, basis, moisture)
        if dry is not None:
            contracted += rules.red_mud_tonnes(dry, feeds.red_mud_factor(code))
    first, last = period.first, period.last
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    demanded, demands = demanded_offtake(session, company_id, months)
    return Offtake(
        generated_t=generated,
        demanded_t=demanded,
        demands=demands,
        delivered_t=delivered.quantize(TONNE, ROUND_HALF_UP),
        contracted_t=contracted.quantize(TONNE, ROUND_HALF_UP),
        deliveries=len(facts),
        unconverted=unconverted,
        by_sector=_shares(by["sector"]),
        by_province=_shares(by["province"]),
        by_end_use=_shares(by["end_use"]),
    )


def company_offtake(session: Session, actor: Actor, period: Period) -> Offtake:
    """The actor's own company's linkage; any member may read it (role ``view``)."""
    return offtake(session, require(actor, "view"), period)
