"""Trade notices: written by the trading services in their transaction, e-mailed by a job.

The bid path only inserts rows; rendering and queueing e-mail happens in the periodic job, off
the lot's row lock. The notices are also the in-app list on the "My bids" page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Membership, User
from exchange.accounts.rules import Role
from exchange.db import bulk_insert, utcnow
from exchange.trading.models import NoticeKind, TradeNotice


@dataclass(frozen=True)
class Notice:
    company_id: int
    kind: NoticeKind
    user_id: int | None = None
    bid_id: int | None = None


def add_notices(session: Session, lot_id: int, notices: Iterable[Notice], now: dt.datetime) -> int:
    """Insert the notices about one lot in one statement; returns how many."""
    return add_notices_for_lots(session, ((lot_id, n) for n in notices), now)


def add_notices_for_lots(
    session: Session, notices: Iterable[tuple[int, Notice]], now: dt.datetime
) -> int:
    """Insert notices about several lots, ``(lot_id, notice)``, in one statement."""
    rows = [
        {
            "company_id": n.company_id,
            "user_id": n.user_id,
            "lot_id": lot_id,
            "bid_id": n.bid_id,
            "kind": n.kind,
            "created_at": now,
        }
        for lot_id, n in notices
    ]
    bulk_insert(session, TradeNotice.__table__, rows)
    return len(rows)


def recent_notices(session: Session, company_id: int, limit: int = 20) -> list[TradeNotice]:
    return list(
        session.scalars(
            select(TradeNotice)
            .where(TradeNotice.company_id == company_id)
            .order_by(TradeNotice.id.desc())
            .limit(limit)
        )
    )


def _recipients(session: Session, notice: TradeNotice) -> list[User]:
    if notice.user_id is not None:
        user = session.get(User, notice.user_id)
        membership = user.membership if user is not None else None
        # Still active and still in the company the notice is about.
        if (
            user is not None
            and user.is_active
            and membership is not None
            and (membership.company_id == notice.company_id)
        ):
            return [user]
    return list(
        session.scalars(
            select(User)
            .join(Membership)
            .where(
                Membership.company_id == notice.company_id,
                Membership.role == Role.OWNER,
                User.is_active,
            )
        )
    )


def email_notices(session: Session, limit: int = 500) -> int:
    """E-mail the notices not yet e-mailed (one message per recipient, lot and kind).

    Claims the rows with SKIP LOCKED so parallel workers never send one twice. Needs an app
    context (templates). Returns the number of notices handled.
    """
    from exchange.notifications.mail import external_url, send_templated

    notices = list(
        session.scalars(
            select(TradeNotice)
            .where(TradeNotice.emailed_at.is_(None))
            .order_by(TradeNotice.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    now = utcnow()
    sent: set[tuple[str, int, str]] = set()
    for notice in notices:
        notice.emailed_at = now
        for user in _recipients(session, notice):
            key = (user.email, notice.lot_id, notice.kind.value)
            if key in sent:
                continue
            sent.add(key)
            lot = notice.lot
            send_templated(
                session,
                user.email,
                "trading_notice",
                user.locale,
                notice_kind=notice.kind.value,
                lot_number=lot.number,
                lot_title=lot.title(user.locale or "zh"),
                url=external_url("trading.lot", lot_id=lot.id),
            )
    return len(notices)
