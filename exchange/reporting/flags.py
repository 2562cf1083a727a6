"""Anomaly flags: run the rules over recent data, raise a flag per new finding, review them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from exchange.actor import SYSTEM, Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Conflict, NotFound, ValidationError
from exchange.reporting import anomalies, feeds
from exchange.reporting.models import AnomalyFlag, FlagStatus

#: How far back the detector looks each run.
LOOKBACK = dt.timedelta(days=180)

#: Review decisions an administrator may take from each state.
DECISIONS: dict[FlagStatus, frozenset[FlagStatus]] = {
    FlagStatus.OPEN: frozenset({FlagStatus.DISMISSED, FlagStatus.ESCALATED}),
    FlagStatus.ESCALATED: frozenset({FlagStatus.DISMISSED}),
    FlagStatus.DISMISSED: frozenset(),
}


def findings(session: Session, now: dt.datetime | None = None) -> list[anomalies.Finding]:
    """Every rule's findings over the last ``LOOKBACK`` of data."""
    now = now or utcnow()
    since = now - LOOKBACK
    companies = feeds.company_facts(session)
    affiliations = feeds.affiliation_facts(session)
    lots = feeds.lot_facts(session, since)
    bids = feeds.bid_facts(session, since)
    # Price outliers need the weeks before the window as their reference.
    trades = feeds.trade_facts(session, since - dt.timedelta(days=56))
    traded_at = {t.trade_id: t.at for t in trades}
    return [
        *anomalies.related_bidding(
            companies, affiliations, lots, bids, [t for t in trades if t.at >= since]
        ),
        *anomalies.bid_withdrawals(bids, now),
        *anomalies.never_signs(feeds.award_facts(session, since), now),
        *[f for f in anomalies.price_outliers(trades) if traded_at[f.data["trade_id"]] >= since],
        *anomalies.weight_discrepancies(feeds.delivered_facts(session, since.date())),
        *anomalies.reserve_dodges(lots),
        *anomalies.login_bursts(feeds.login_burst_facts(session, since)),
    ]


def detect(session: Session, now: dt.datetime | None = None) -> list[AnomalyFlag]:
    """Raise a flag for each finding not flagged before (by its key); returns the new flags.

    A dismissed finding stays dismissed: the same key never raises a second flag.
    """
    found = findings(session, now)
    keys = [f.key for f in found]
    known = set(
        session.scalars(select(AnomalyFlag.fingerprint).where(AnomalyFlag.fingerprint.in_(keys)))
    )
    raised = []
    for finding in found:
        if finding.key in known:
            continue
        known.add(finding.key)
        flag = AnomalyFlag(
            rule=finding.rule.value,
            fingerprint=finding.key[:300],
            subject_type=finding.subject_type,
            subject_ids=list(finding.subject_ids),
            company_ids=list(finding.company_ids),
            evidence=finding.evidence,
            data=dict(finding.data),
            status=FlagStatus.OPEN,
            raised_at=now or utcnow(),
        )
        session.add(flag)
        session.flush()
        # A new flag's chain: nobody else can write to it yet, so no lock is needed.
        record_event(
            session,
            SYSTEM,
            "reporting:flag:raised",
            "flag",
            flag.id,
            {
                "rule": flag.rule,
                "subject_type": flag.subject_type,
                "subject_ids": flag.subject_ids,
                "evidence": flag.evidence,
            },
        )
        raised.append(flag)
    return raised


def lock_flag(session: Session, flag_id: int) -> AnomalyFlag:
    flag = session.scalars(
        select(AnomalyFlag).where(AnomalyFlag.id == flag_id).with_for_update()
    ).first()
    if flag is None:
        raise NotFound(_l("No such flag."))
    return flag


def decide(session: Session, actor: Actor, flag_id: int, decision: str, reason: str) -> AnomalyFlag:
    """Dismiss or escalate a flag with a reason (administrators); audited on ``flag:<id>``.

    Raises Forbidden for others, ValidationError for a missing reason or unknown decision,
    Conflict when the flag's state does not allow the decision.
    """
    from exchange.accounts.companies import require_admin

    require_admin(actor)
    reason = (reason or "").strip()
    errors: dict[str, list[str]] = {}
    try:
        target = FlagStatus(decision)
    except ValueError:
        target = None
    if target not in (FlagStatus.DISMISSED, FlagStatus.ESCALATED):
        errors["decision"] = [str(_l("Choose dismiss or escalate."))]
    if not reason:
        errors["reason"] = [str(_l("Give the reason for the decision; it is kept in the audit."))]
    elif len(reason) > 1000:
        errors["reason"] = [str(_l("At most 1000 characters."))]
    if errors:
        raise ValidationError(_l("Please correct the marked fields."), errors)
    assert target is not None
    flag = lock_flag(session, flag_id)
    if target not in DECISIONS[flag.status]:
        raise Conflict(_l("This flag has already been decided that way or cannot change now."))
    old = flag.status
    flag.status = target
    flag.reason = reason
    flag.decided_at = utcnow()
    flag.decided_by_id = actor.user_id
    record_event(
        session,
        actor,
        f"reporting:flag:{target.value}",
        "flag",
        flag.id,
        {"status": [old.value, target.value], "reason": reason},
    )
    return flag


@dataclass(frozen=True)
class FlagFilter:
    status: str | None = None
    rule: str | None = None


def flags_query(filters: FlagFilter) -> Select[AnomalyFlag]:
    query = select(AnomalyFlag)
    if filters.status:
        query = query.where(AnomalyFlag.status == FlagStatus(filters.status))
    if filters.rule:
        query = query.where(AnomalyFlag.rule == filters.rule)
    return query.order_by(AnomalyFlag.raised_at.desc(), AnomalyFlag.id.desc())


def open_counts(session: Session) -> dict[str, int]:
    """Open flags per rule (for the dashboard's badge)."""
    return dict(
        session.execute(
            select(AnomalyFlag.rule, func.count())
            .where(AnomalyFlag.status == FlagStatus.OPEN)
            .group_by(AnomalyFlag.rule)
        ).all()
    )
