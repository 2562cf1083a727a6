"""Anomaly rules: pure functions over plain facts, each finding with its evidence in words and data.

No Flask, no database. A finding's ``key`` identifies what it is about (rule and subjects), so
running the rules again finds the same key and raises no second flag for it.
Thresholds are parameters with documented defaults; they are the platform's choices.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exchange.reporting.facts import (
    AffiliationFact,
    AwardFact,
    BidFact,
    CompanyFact,
    DeliveryFact,
    LoginBurstFact,
    LotFact,
    SiteFact,
    TradeFact,
)

ZERO = Decimal(0)
HUNDRED = Decimal(100)

#: Public mail providers: sharing one says nothing about two companies being related.
PUBLIC_MAIL_DOMAINS = frozenset(
    {
        "qq.com",
        "foxmail.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "139.com",
        "189.cn",
        "gmail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "proton.me",
    }
)
#: RFC 2606 / 6761 reserved names (tests, documentation, the demo): never a real organisation.
RESERVED_SUFFIXES = (
    ".example",
    ".test",
    ".invalid",
    ".localhost",
    "example.com",
    "example.org",
    "example.net",
)


class Rule(enum.StrEnum):
    RELATED_BIDDING = "related_bidding"
    BID_WITHDRAWALS = "bid_withdrawals"
    NEVER_SIGNS = "never_signs"
    PRICE_OUTLIER = "price_outlier"
    WEIGHT_DISCREPANCY = "weight_discrepancy"
    RESERVE_DODGE = "reserve_dodge"
    LOGIN_BURST = "login_burst"


@dataclass(frozen=True)
class Finding:
    rule: Rule
    #: What the finding is about: "company_pair", "company", "trade", "delivery", "lot", "login".
    subject_type: str
    subject_ids: tuple[str, ...]
    #: Stable identity: the same situation found again has the same key.
    key: str
    #: English evidence, as recorded (the UI renders a translated summary from ``data``).
    evidence: str
    data: Mapping[str, Any] = field(default_factory=dict)
    #: Companies involved (for filters and links).
    company_ids: tuple[int, ...] = ()


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else str(value)


# --- related companies ---


def distance_km(a: SiteFact, b: SiteFact) -> float:
    """Great-circle (haversine) distance in km on a 6371 km sphere."""
    lat1, lon1, lat2, lon2 = map(
        math.radians, (float(a.latitude), float(a.longitude), float(b.latitude), float(b.longitude))
    )
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(min(1.0, math.sqrt(h)))


def _domain(email: str) -> str | None:
    domain = email.rpartition("@")[2].strip().lower()
    if not domain or domain in PUBLIC_MAIL_DOMAINS:
        return None
    if any(
        domain == s.lstrip(".") or domain.endswith(s if s.startswith(".") else "." + s)
        for s in RESERVED_SUFFIXES
    ):
        return None
    return domain


def uscc_prefix(uscc: str) -> str:
    """Registration authority, entity type and division code: the USCC's first 8 characters."""
    return uscc[:8]


@dataclass(frozen=True)
class Relation:
    """Why two companies look related; ``reasons`` are codes with their details."""

    company_a: int
    company_b: int
    reasons: tuple[tuple[str, str], ...]


def relations(
    companies: Iterable[CompanyFact],
    affiliations: Iterable[AffiliationFact] = (),
    *,
    pairs: Iterable[tuple[int, int]] | None = None,
    site_radius_km: float = 1.0,
) -> dict[frozenset[int], Relation]:
    """Pairs of companies that look related, with the reasons:

    - ``shared_user``: a user who is or was a member of both;
    - ``email_domain``: users or contacts at the same non-public e-mail domain;
    - ``uscc_and_site``: the same USCC prefix (registration authority, type, division) AND sites
      within ``site_radius_km`` of each other (the prefix alone is shared by a whole district);
    - ``declared``: an affiliation an administrator recorded.

    ``pairs`` limits the comparison to those pairs (the ones that traded); every pair otherwise.
    """
    by_id = {c.company_id: c for c in companies}
    if pairs is None:
        ids = sorted(by_id)
        candidates = {(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]}
    else:
        candidates = {(min(a, b), max(a, b)) for a, b in pairs if a != b}
    found: dict[frozenset[int], list[tuple[str, str]]] = defaultdict(list)
    for a_id, b_id in sorted(candidates):
        a, b = by_id.get(a_id), by_id.get(b_id)
        if a is None or b is None:
            continue
        pair = frozenset({a_id, b_id})
        shared_users = sorted(a.user_ids & b.user_ids)
        if shared_users:
            found[pair].append(("shared_user", ",".join(map(str, shared_users))))
        shared = sorted(
            {d for d in map(_domain, a.emails) if d} & {d for d in map(_domain, b.emails) if d}
        )
        if shared:
            found[pair].append(("email_domain", ",".join(shared)))
        if uscc_prefix(a.uscc) == uscc_prefix(b.uscc):
            close = [
                (sa, sb, d)
                for sa in a.sites
                for sb in b.sites
                if (d := distance_km(sa, sb)) <= site_radius_km
            ]
            if close:
                sa, sb, d = min(close, key=lambda t: t[2])
                found[pair].append(
                    (
                        "uscc_and_site",
                        f"prefix {uscc_prefix(a.uscc)}; sites {sa.site_id} and {sb.site_id} "
                        f"{d * 1000:.0f} m apart",
                    )
                )
    for aff in affiliations:
        if aff.company_a != aff.company_b:
            pair = frozenset({aff.company_a, aff.company_b})
            found[pair].append(("declared", aff.kind + (f": {aff.note}" if aff.note else "")))
    return {pair: Relation(min(pair), max(pair), tuple(reasons)) for pair, reasons in found.items()}


def _relation_text(relation: Relation) -> str:
    return "; ".join(f"{code} ({detail})" for code, detail in relation.reasons)


def related_bidding(
    companies: Iterable[CompanyFact],
    affiliations: Iterable[AffiliationFact],
    lots: Iterable[LotFact],
    bids: Iterable[BidFact] = (),
    trades: Iterable[TradeFact] = (),
) -> list[Finding]:
    """Bids on, or awards of, a lot by a company related to the lot's producer (self-dealing
    or shill bidding): one finding per lot and pair."""
    producer_of = {lot.lot_id: lot.producer_id for lot in lots}
    bids, trades = list(bids), list(trades)
    for b in bids:
        if b.producer_id is not None:
            producer_of.setdefault(b.lot_id, b.producer_id)
    traded = [(producer_of[b.lot_id], b.company_id) for b in bids if b.lot_id in producer_of]
    traded += [(t.seller_id, t.buyer_id) for t in trades]
    related = relations(companies, affiliations, pairs=traded)
    hits: dict[tuple[int, int, int], dict[str, list[str]]] = defaultdict(
        lambda: {"bids": [], "awards": []}
    )
    for bid in bids:
        producer = producer_of.get(bid.lot_id)
        if producer is None or producer == bid.company_id:
            continue
        if frozenset({producer, bid.company_id}) in related:
            hits[(bid.lot_id, producer, bid.company_id)]["bids"].append(str(bid.bid_id))
    for trade in trades:
        if trade.seller_id == trade.buyer_id:
            continue
        if frozenset({trade.seller_id, trade.buyer_id}) in related:
            hits[(trade.lot_id, trade.seller_id, trade.buyer_id)]["awards"].append(
                str(trade.trade_id)
            )
    findings = []
    for (lot_id, producer, buyer), what in sorted(hits.items()):
        relation = related[frozenset({producer, buyer})]
        evidence = (
            f"Company {buyer} bid on or was awarded lot {lot_id} of company {producer}, and the "
            f"two look related: {_relation_text(relation)}. Bids: "
            f"{', '.join(what['bids']) or 'none'}; awards: {', '.join(what['awards']) or 'none'}."
        )
        findings.append(
            Finding(
                Rule.RELATED_BIDDING,
                "company_pair",
                (str(producer), str(buyer)),
                f"related_bidding:{lot_id}:{producer}:{buyer}",
                evidence,
                {
                    "lot_id": lot_id,
                    "producer_id": producer,
                    "bidder_id": buyer,
                    "reasons": [list(r) for r in relation.reasons],
                    "bid_ids": what["bids"],
                    "award_ids": what["awards"],
                },
                (producer, buyer),
            )
        )
    return findings


# --- behaviour of a bidder ---


def bid_withdrawals(
    bids: Iterable[BidFact],
    now: dt.datetime,
    *,
    window_days: int = 90,
    min_withdrawn: int = 3,
    min_share: Decimal = Decimal("0.5"),
) -> list[Finding]:
    """Companies that withdrew at least ``min_withdrawn`` bids, and at least ``min_share`` of
    their bids, within the last ``window_days`` (bidding up a price and backing out). One
    finding per company and calendar month of ``now``."""
    since = now - dt.timedelta(days=window_days)
    per: dict[int, list[BidFact]] = defaultdict(list)
    for bid in bids:
        if bid.placed_at >= since and bid.status != "superseded":
            per[bid.company_id].append(bid)
    findings = []
    for company, placed in sorted(per.items()):
        withdrawn = [b for b in placed if b.status == "withdrawn"]
        share = Decimal(len(withdrawn)) / Decimal(len(placed))
        if len(withdrawn) < min_withdrawn or share < min_share:
            continue
        lots = sorted({b.lot_id for b in withdrawn})
        findings.append(
            Finding(
                Rule.BID_WITHDRAWALS,
                "company",
                (str(company),),
                f"bid_withdrawals:{company}:{now.date().isoformat()[:7]}",
                f"Company {company} withdrew {len(withdrawn)} of its {len(placed)} bids in the "
                f"last {window_days} days ({share * 100:.0f} %), on lots "
                f"{', '.join(map(str, lots))}.",
                {
                    "company_id": company,
                    "withdrawn": len(withdrawn),
                    "bids": len(placed),
                    "window_days": window_days,
                    "lot_ids": lots,
                    "bid_ids": [b.bid_id for b in withdrawn],
                },
                (company,),
            )
        )
    return findings


def never_signs(
    awards: Iterable[AwardFact],
    now: dt.datetime,
    *,
    window_days: int = 180,
    min_lapsed: int = 2,
    min_share: Decimal = Decimal("0.5"),
) -> list[Finding]:
    """Buyers who let at least ``min_lapsed`` awards, and ``min_share`` of their decided awards,
    lapse unsigned within ``window_days`` (winning and walking away blocks honest bidders)."""
    since = now - dt.timedelta(days=window_days)
    per: dict[int, list[AwardFact]] = defaultdict(list)
    for award in awards:
        if award.created_at >= since and award.status in {"contracted", "lapsed"}:
            per[award.buyer_id].append(award)
    findings = []
    for buyer, decided in sorted(per.items()):
        lapsed = [a for a in decided if a.status == "lapsed"]
        share = Decimal(len(lapsed)) / Decimal(len(decided))
        if len(lapsed) < min_lapsed or share < min_share:
            continue
        findings.append(
            Finding(
                Rule.NEVER_SIGNS,
                "company",
                (str(buyer),),
                f"never_signs:{buyer}:{now.date().isoformat()[:7]}",
                f"Company {buyer} let {len(lapsed)} of its {len(decided)} awards lapse without "
                f"signing in the last {window_days} days ({share * 100:.0f} %).",
                {
                    "company_id": buyer,
                    "lapsed": len(lapsed),
                    "awards": len(decided),
                    "window_days": window_days,
                    "award_ids": [a.award_id for a in lapsed],
                    "lot_ids": sorted({a.lot_id for a in lapsed}),
                },
                (buyer,),
            )
        )
    return findings


# --- prices ---


@dataclass(frozen=True)
class RobustZ:
    median: Decimal
    mad: Decimal
    #: None when every reference price is the same (no spread to measure against).
    z: float | None


def robust_z(value: Decimal, reference: Sequence[Decimal]) -> RobustZ:
    """The modified z-score 0.6745 (x − median) / MAD (Iglewicz & Hoaglin 1993).

    When MAD is 0 (over half the prices equal) the mean absolute deviation × 1.2533 stands in;
    when that is 0 too, ``z`` is None. Raises ValueError for an empty reference.
    """
    if not reference:
        raise ValueError("no reference prices")
    med = Decimal(statistics.median(reference))
    mad = Decimal(statistics.median([abs(p - med) for p in reference]))
    if mad > ZERO:
        return RobustZ(med, mad, 0.6745 * float(value - med) / float(mad))
    mean_ad = sum((abs(p - med) for p in reference), ZERO) / len(reference)
    if mean_ad > ZERO:
        return RobustZ(med, mad, float(value - med) / (1.253314 * float(mean_ad)))
    return RobustZ(med, mad, None)


def price_outliers(
    trades: Iterable[TradeFact],
    *,
    lookback_days: int = 56,
    min_reference: int = 5,
    threshold: float = 3.5,
    min_difference: Decimal = Decimal(5),
) -> list[Finding]:
    """Trades whose price is far from the recent prices of the same material family.

    Reference: the trades of the ``lookback_days`` before it (same family, same province; the
    whole country when the province has fewer than ``min_reference``). Far: robust |z| above
    ``threshold`` — or, when the reference has no spread, a price ``min_difference`` CNY/t or
    more away from it.
    """
    ordered = sorted(trades, key=lambda t: (t.at, t.trade_id))
    findings = []
    for i, trade in enumerate(ordered):
        since = trade.at - dt.timedelta(days=lookback_days)
        earlier = [
            t for t in ordered[:i] if t.at >= since and t.material_family == trade.material_family
        ]
        local = [t.price for t in earlier if t.province == trade.province]
        scope, reference = ("province", local)
        if len(local) < min_reference:
            scope, reference = ("national", [t.price for t in earlier])
        if len(reference) < min_reference:
            continue
        score = robust_z(trade.price, reference)
        if score.z is None:
            far = abs(trade.price - score.median) >= min_difference
        else:
            far = abs(score.z) > threshold
        if not far:
            continue
        z_text = f"robust z {score.z:+.1f}" if score.z is not None else "reference prices all equal"
        findings.append(
            Finding(
                Rule.PRICE_OUTLIER,
                "trade",
                (str(trade.trade_id),),
                f"price_outlier:{trade.trade_id}",
                f"Award {trade.trade_id} on lot {trade.lot_id} at {_num(trade.price)} CNY/t is far "
                f"from the {len(reference)} {scope} {trade.material_family} prices of the "
                f"previous {lookback_days} days (median {_num(score.median)} CNY/t, MAD "
                f"{_num(score.mad)}; {z_text}; threshold {threshold}).",
                {
                    "trade_id": trade.trade_id,
                    "lot_id": trade.lot_id,
                    "price": str(trade.price),
                    "median": str(score.median),
                    "mad": str(score.mad),
                    "z": round(score.z, 2) if score.z is not None else None,
                    "threshold": threshold,
                    "reference_count": len(reference),
                    "scope": scope,
                    "material_family": trade.material_family,
                    "province": trade.province,
                },
                (trade.seller_id, trade.buyer_id),
            )
        )
    return findings


# --- deliveries ---


def weight_discrepancies(
    deliveries: Iterable[DeliveryFact], *, tolerance_pct: Decimal = Decimal(1)
) -> list[Finding]:
    """Deliveries whose received net weight differs from the dispatched one by more than
    ``tolerance_pct`` % either way (the contracts' weighbridge flag uses the same 1 %)."""
    findings = []
    for d in deliveries:
        if d.received_t is None or d.dispatched_t <= ZERO:
            continue
        delta = d.received_t - d.dispatched_t
        pct = delta / d.dispatched_t * HUNDRED
        if abs(pct) <= tolerance_pct:
            continue
        findings.append(
            Finding(
                Rule.WEIGHT_DISCREPANCY,
                "delivery",
                (str(d.delivery_id),),
                f"weight_discrepancy:{d.delivery_id}",
                f"Delivery {d.delivery_id} of contract {d.contract_id}: dispatched "
                f"{_num(d.dispatched_t)} t, received {_num(d.received_t)} t "
                f"({pct:+.2f} %, tolerance ±{_num(tolerance_pct)} %).",
                {
                    "delivery_id": d.delivery_id,
                    "contract_id": d.contract_id,
                    "dispatched_t": str(d.dispatched_t),
                    "received_t": str(d.received_t),
                    "difference_pct": str(pct.quantize(Decimal("0.01"))),
                    "tolerance_pct": str(tolerance_pct),
                },
                (d.seller_id, d.buyer_id),
            )
        )
    return findings


# --- lots ---


def reserve_dodges(
    lots: Iterable[LotFact],
    *,
    window_days: int = 14,
    quantity_tolerance: Decimal = Decimal("0.2"),
) -> list[Finding]:
    """A lot listed within ``window_days`` after the same producer's lot of the same material
    closed unsold with a reserve, for a similar quantity (± ``quantity_tolerance``): the reserve
    failed and the material came back, often with a lower reserve or none."""
    facts = list(lots)
    failed = [
        lot
        for lot in facts
        if lot.status == "unsold" and lot.reserve_price is not None and lot.closed_at is not None
    ]
    findings = []
    for old in failed:
        assert old.closed_at is not None
        for new in facts:
            if (
                new.lot_id == old.lot_id
                or new.producer_id != old.producer_id
                or new.material_code != old.material_code
            ):
                continue
            listed = new.published_at or new.created_at
            if not old.closed_at <= listed <= old.closed_at + dt.timedelta(days=window_days):
                continue
            if abs(new.quantity - old.quantity) > old.quantity * quantity_tolerance:
                continue
            days = (listed - old.closed_at).total_seconds() / 86400
            new_reserve = _num(new.reserve_price) if new.reserve_price is not None else "none"
            findings.append(
                Finding(
                    Rule.RESERVE_DODGE,
                    "lot",
                    (str(old.lot_id), str(new.lot_id)),
                    f"reserve_dodge:{old.lot_id}:{new.lot_id}",
                    f"Lot {new.lot_id} ({_num(new.quantity)} t of {new.material_code}) was listed "
                    f"{days:.1f} days after lot {old.lot_id} ({_num(old.quantity)} t) of the same "
                    f"producer closed unsold with reserve {_num(old.reserve_price or ZERO)} "
                    f"CNY/t; the new reserve is {new_reserve}.",
                    {
                        "producer_id": old.producer_id,
                        "unsold_lot_id": old.lot_id,
                        "relisted_lot_id": new.lot_id,
                        "days_after": round(days, 1),
                        "old_reserve": str(old.reserve_price),
                        "new_reserve": (
                            str(new.reserve_price) if new.reserve_price is not None else None
                        ),
                        "old_quantity": str(old.quantity),
                        "new_quantity": str(new.quantity),
                    },
                    (old.producer_id,),
                )
            )
    return findings


# --- logins ---


def login_bursts(events: Iterable[LoginBurstFact]) -> list[Finding]:
    """Failed-login bursts (recorded by the accounts context): one finding per e-mail and UTC
    day, with every burst, address and failure count of that day."""
    per: dict[tuple[str, dt.date], list[LoginBurstFact]] = defaultdict(list)
    for e in events:
        per[(e.email, e.at.date())].append(e)
    findings = []
    for (email, day), bursts in sorted(per.items()):
        ips = sorted({b.ip for b in bursts if b.ip})
        failures = sum(b.failures for b in bursts)
        user_id = next((b.user_id for b in bursts if b.user_id is not None), None)
        findings.append(
            Finding(
                Rule.LOGIN_BURST,
                "login",
                (email,),
                f"login_burst:{email}:{day.isoformat()}",
                f"{len(bursts)} burst(s) of failed logins for {email} on {day.isoformat()} (UTC): "
                f"{failures} failures within {bursts[0].window_seconds // 60} minutes each, from "
                f"{', '.join(ips) or 'unknown addresses'}"
                + ("" if user_id is not None else "; no account has this e-mail")
                + ".",
                {
                    "email": email,
                    "day": day.isoformat(),
                    "bursts": len(bursts),
                    "failures": failures,
                    "ips": ips,
                    "user_id": user_id,
                    "event_ids": [b.event_id for b in bursts],
                },
                (),
            )
        )
    return findings
