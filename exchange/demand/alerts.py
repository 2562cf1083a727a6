"""Alerts for new matches (in-app notice and e-mail): once per pair and side, to members who
want them.

A pair is claimed for a side with one conditional UPDATE (``... WHERE buyer_notified_at IS
NULL RETURNING``), so two recomputes finding the same new pair at once announce it once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.accounts.models import Membership, User
from exchange.accounts.rules import Role
from exchange.db import utcnow
from exchange.demand.models import Demand, Match, MatchAlertSetting, MatchNotice
from exchange.listings.models import Lot

#: At most this many pairs are listed in one e-mail (the page shows the rest).
MAX_LISTED = 20


def _claim(session: Session, pairs: Sequence[tuple[int, int]], column: Any) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    claimed: set[tuple[int, int]] = set()
    for i in range(0, len(pairs), 500):
        part = list(pairs[i : i + 500])
        rows = session.execute(
            update(MatchNotice)
            .where(tuple_(MatchNotice.lot_id, MatchNotice.demand_id).in_(part))
            .where(column.is_(None))
            .values({column.key: utcnow()})
            .returning(MatchNotice.lot_id, MatchNotice.demand_id)
            .execution_options(synchronize_session=False)
        ).all()
        claimed |= {(r[0], r[1]) for r in rows}
    return claimed


def _recipients(session: Session, company_ids: set[int]) -> dict[int, list[tuple[User, Any]]]:
    """Owners and traders of each company, with their alert settings (None = defaults)."""
    rows = session.execute(
        select(Membership.company_id, User, MatchAlertSetting)
        .join(User, User.id == Membership.user_id)
        .outerjoin(MatchAlertSetting, MatchAlertSetting.user_id == User.id)
        .where(
            Membership.company_id.in_(company_ids),
            Membership.role.in_([Role.OWNER, Role.TRADER]),
            User.is_active.is_(True),
        )
        .order_by(User.id)
    ).all()
    out: dict[int, list[tuple[User, Any]]] = defaultdict(list)
    for company_id, user, setting in rows:
        out[company_id].append((user, setting))
    return out


def announce(session: Session, pairs: Sequence[tuple[int, int]]) -> int:
    """Tell buyers and producers about new pairs not announced before; returns e-mails queued.

    Each side is told once per pair, whatever later recomputes find. A member is told when their
    settings want that side and the pair's headroom (maximum delivered price − landed cost) is at
    least their threshold: by one in-app notice per side (the bell), and by e-mail unless they
    turned e-mail off.
    """
    from exchange.notifications.mail import app_path, external_url, send_templated
    from exchange.notifications.services import notify

    pairs = sorted(set(pairs))
    if not pairs:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(
        insert(MatchNotice)
        .values([{"lot_id": lot, "demand_id": dem} for lot, dem in pairs])
        .on_conflict_do_nothing(index_elements=["lot_id", "demand_id"])
    )
    buyer_pairs = _claim(session, pairs, MatchNotice.buyer_notified_at)
    producer_pairs = _claim(session, pairs, MatchNotice.producer_notified_at)
    wanted = buyer_pairs | producer_pairs
    if not wanted:
        return 0
    rows = session.execute(
        select(Match, Demand, Lot)
        .join(Demand, Demand.id == Match.demand_id)
        .join(Lot, Lot.id == Match.lot_id)
        .where(tuple_(Match.lot_id, Match.demand_id).in_(sorted(wanted)))
        .order_by(Match.landed_cost, Match.lot_id, Match.demand_id)
    ).all()
    recipients = _recipients(
        session, {d.buyer_id for _m, d, _l in rows} | {lot.producer_id for _m, _d, lot in rows}
    )
    # (user id, side) -> the user and the matches to list
    mail: dict[tuple[int, str], tuple[User, list[tuple[Match, Demand, Lot]]]] = {}
    settings: dict[int, Any] = {}
    for match, demand, lot in rows:
        headroom = Decimal(demand.max_price) - Decimal(match.landed_cost)
        sides = []
        if (lot.id, demand.id) in buyer_pairs:
            sides.append(("buyer", demand.buyer_id))
        if (lot.id, demand.id) in producer_pairs:
            sides.append(("producer", lot.producer_id))
        for side, company_id in sides:
            for user, setting in recipients.get(company_id, []):
                settings[user.id] = setting
                on = True if setting is None else getattr(setting, f"as_{side}")
                threshold = Decimal(0) if setting is None else Decimal(setting.min_headroom)
                if on and headroom >= threshold:
                    mail.setdefault((user.id, side), (user, []))[1].append((match, demand, lot))
    sent = 0
    for (_uid, side), (user, items) in sorted(mail.items(), key=lambda kv: kv[0]):
        _first, first_demand, first_lot = items[0]
        if side == "buyer":
            best = min(m.landed_cost for m, _d, _l in items)
            path = app_path("demand.show", demand_id=first_demand.id)
        else:
            best = max(m.net_price for m, _d, _l in items)
            path = app_path("demand.lot_matches", lot_id=first_lot.id)
        notify(session, user.id, f"match_{side}", path, {"count": len(items), "best": str(best)})
        setting = settings[user.id]
        if setting is not None and not setting.by_email:
            continue
        listed = [
            {
                "demand": demand.number,
                "demand_title": demand.title,
                "lot": lot.number,
                "lot_title": lot.title(user.locale or "zh"),
                "landed_cost": match.landed_cost,
                "net_price": match.net_price,
                "freight": match.freight,
                "distance_km": match.distance_km,
                "url": external_url("demand.show", demand_id=demand.id)
                if side == "buyer"
                else external_url("demand.lot_matches", lot_id=lot.id),
            }
            for match, demand, lot in items[:MAX_LISTED]
        ]
        send_templated(
            session,
            user.email,
            f"match_{side}",
            user.locale,
            items=listed,
            more=max(0, len(items) - MAX_LISTED),
        )
        sent += 1
    return sent
