"""Demand use cases: post, edit, pause, resume and close a demand; what each party may see.

Every write takes ``(session, actor, ...)``, checks permission here, locks the demand row (which
serialises its audit chain ``demand:<id>``), records the audit event, queues the recompute of the
demand's matches to run in the background once the transaction commits
(``exchange.jobs.queue_match_recompute``), and never commits. Until that recompute has run the
demand's ``matches_pending`` is true and its pages say its matches are being computed.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, selectinload

from exchange.accounts.companies import require, require_verified_company
from exchange.accounts.models import Company, Site
from exchange.actor import SYSTEM, Actor
from exchange.audit.services import record_event
from exchange.catalog.materials import MATERIALS
from exchange.db import utcnow
from exchange.demand import matching, rules
from exchange.demand.board import BoardFilters, board_page, wanted_query
from exchange.demand.drafts import DemandDraft, Problem, validate_draft
from exchange.demand.freight import TransportMode
from exchange.demand.models import Demand, DemandMaterial, DemandSpec, Match, MatchAlertSetting
from exchange.demand.rules import DemandEvent, DemandStatus, Visibility
from exchange.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from exchange.jobs import queue_match_recompute
from exchange.listings.models import Lot

CHINA = ZoneInfo("Asia/Shanghai")

PROBLEM_MESSAGES = {
    Problem.REQUIRED: _l("This field is required."),
    Problem.TOO_LONG: _l("This is too long."),
    Problem.UNKNOWN_END_USE: _l("Choose an end use from the list."),
    Problem.NO_FAMILY: _l("Choose at least one material family."),
    Problem.UNKNOWN_FAMILY: _l("Unknown material family."),
    Problem.UNKNOWN_MATERIAL: _l("Unknown material."),
    Problem.MATERIAL_OUTSIDE_FAMILIES: _l(
        "A chosen material belongs to a family you did not tick; tick its family too."
    ),
    Problem.UNKNOWN_PARAMETER: _l("Unknown assay parameter."),
    Problem.DUPLICATE_PARAMETER: _l("This parameter already has a window; use one row for it."),
    Problem.NO_BOUND: _l("Give a minimum, a maximum or both (or clear the row)."),
    Problem.INVERTED_WINDOW: _l("The maximum is below the minimum."),
    Problem.OUT_OF_RANGE: _l("Outside the possible range for this parameter's unit."),
    Problem.TOO_MANY_SPECS: _l("Too many spec windows."),
    Problem.NOT_POSITIVE: _l("Must be more than zero."),
    Problem.TOO_LARGE: _l("That is more than ten million tonnes; check the figure."),
    Problem.MIN_LOT_ABOVE_QUANTITY: _l("The minimum lot cannot exceed the quantity wanted."),
    Problem.UNKNOWN_RECURRENCE: _l("Choose one-off or monthly."),
    Problem.FOREIGN_SITE: _l("Choose one of your company's sites."),
    Problem.WINDOW_INVERTED: _l("The window ends before it starts."),
    Problem.WINDOW_PAST: _l("The delivery window is already over."),
    Problem.PRICE_TOO_LARGE: _l("Prices beyond ±100,000 CNY per tonne are not accepted."),
    Problem.NO_MODE: _l("Accept at least one transport mode."),
    Problem.UNKNOWN_MODE: _l("Unknown transport mode."),
    Problem.UNKNOWN_VISIBILITY: _l("Choose who may see the demand."),
}


def local_today() -> dt.date:
    """Today in China (users' delivery windows are China dates)."""
    return utcnow().astimezone(CHINA).date()


def _raise_problems(problems: dict[str, list[Problem]]) -> None:
    if problems:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {field: [str(PROBLEM_MESSAGES[p]) for p in codes] for field, codes in problems.items()},
        )


def _buyer_company(session: Session, actor: Actor) -> Company:
    company = require_verified_company(session, actor, "trade")
    if not company.is_buyer:
        raise Forbidden(_l("Only companies registered as buyers can post demands."))
    return company


def _snapshot(demand: Demand) -> dict[str, Any]:
    """What the audit trail records of a demand's terms."""
    return {
        "title": demand.title,
        "end_use": demand.end_use,
        "materials": [[m.material_family, m.material_code] for m in demand.materials],
        "specs": [[s.parameter, s.min_value, s.max_value] for s in demand.specs],
        "quantity": demand.quantity,
        "recurrence": demand.recurrence.value,
        "min_lot_size": demand.min_lot_size,
        "delivery_site_id": demand.delivery_site_id,
        "window": [demand.window_start.isoformat(), demand.window_end.isoformat()],
        "max_price": demand.max_price,
        "currency": demand.currency,
        "modes": [m.value for m in demand.modes],
        "visibility": demand.visibility.value,
    }


def _apply_draft(session: Session, demand: Demand, draft: DemandDraft, site: Site) -> None:
    demand.title = draft.title.strip()
    demand.end_use = draft.end_use
    demand.quantity = draft.quantity  # type: ignore[assignment]
    demand.recurrence = rules.Recurrence(draft.recurrence)
    demand.min_lot_size = draft.min_lot_size  # type: ignore[assignment]
    demand.delivery_site_id = site.id
    demand.province = site.province
    demand.window_start = draft.window_start  # type: ignore[assignment]
    demand.window_end = draft.window_end  # type: ignore[assignment]
    demand.max_price = draft.max_price  # type: ignore[assignment]
    demand.accepts_road = TransportMode.ROAD.value in draft.modes
    demand.accepts_rail = TransportMode.RAIL.value in draft.modes
    demand.accepts_water = TransportMode.WATER.value in draft.modes
    demand.visibility = Visibility(draft.visibility)
    demand.notes = draft.notes.strip() or None
    # Old child rows go first: a re-added parameter would otherwise hit the unique constraint.
    demand.materials.clear()
    demand.specs.clear()
    session.flush()
    for family in dict.fromkeys(draft.families):
        codes = [c for c in dict.fromkeys(draft.materials) if _family_of(c) == family]
        if not codes:
            demand.materials.append(DemandMaterial(material_family=family, material_code=None))
        for code in codes:
            demand.materials.append(DemandMaterial(material_family=family, material_code=code))
    for spec in draft.specs:
        demand.specs.append(
            DemandSpec(parameter=spec.parameter, min_value=spec.minimum, max_value=spec.maximum)
        )


def _family_of(code: str) -> str | None:
    material = MATERIALS.get(code)
    return material.family.value if material else None


def _validate(company: Company, draft: DemandDraft) -> Site:
    _raise_problems(
        validate_draft(draft, today=local_today(), own_site_ids=[s.id for s in company.sites])
    )
    return next(s for s in company.sites if s.id == draft.delivery_site_id)


def create_demand(session: Session, actor: Actor, draft: DemandDraft) -> Demand:
    """Post a demand for the actor's (verified, buyer) company; its matches are computed in
    the background after the commit.

    Raises Forbidden (role, verification, not a buyer) and ValidationError with field errors.
    """
    company = _buyer_company(session, actor)
    site = _validate(company, draft)
    now = utcnow()
    demand = Demand(
        buyer_id=company.id,
        created_by_id=actor.user_id,
        status=DemandStatus.OPEN,
        currency="CNY",
        updated_at=now,
    )
    session.add(demand)
    _apply_draft(session, demand, draft, site)
    session.flush()
    record_event(session, actor, "demand:demand:posted", "demand", demand.id, _snapshot(demand))
    queue_match_recompute(session, demand_id=demand.id)
    return demand


def lock_demand(session: Session, demand_id: int) -> Demand:
    demand = session.scalar(
        select(Demand)
        .where(Demand.id == demand_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if demand is None:
        raise NotFound(_l("No such demand."))
    return demand


def _own_locked(session: Session, actor: Actor, demand_id: int) -> Demand:
    company = _buyer_company(session, actor)
    demand = lock_demand(session, demand_id)
    if demand.buyer_id != company.id:
        raise NotFound(_l("No such demand."))
    return demand


def edit_demand(session: Session, actor: Actor, demand_id: int, draft: DemandDraft) -> Demand:
    """Change an open or paused demand's terms; its matches are recomputed after the commit.

    Raises NotFound (not the actor's), InvalidTransition (closed) and ValidationError.
    """
    demand = _own_locked(session, actor, demand_id)
    if demand.status not in rules.EDITABLE:
        raise InvalidTransition(_l("A closed or expired demand can no longer be changed."))
    company = session.get(Company, demand.buyer_id)
    assert company is not None
    site = _validate(company, draft)
    before = _snapshot(demand)
    _apply_draft(session, demand, draft, site)
    demand.updated_at = utcnow()
    session.flush()
    after = _snapshot(demand)
    changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
    record_event(session, actor, "demand:demand:edited", "demand", demand.id, changes)
    queue_match_recompute(session, demand_id=demand.id)
    return demand


def _transition(
    session: Session, demand: Demand, actor: Actor, event: DemandEvent, data: dict[str, Any]
) -> Demand:
    old = demand.status
    try:
        demand.status = rules.apply(demand.status, event)
    except InvalidTransition as exc:
        raise InvalidTransition(
            _l("This demand cannot be %(event)s now.", event=_event_label(event))
        ) from exc
    now = utcnow()
    demand.updated_at = now
    if demand.status not in rules.EDITABLE:
        demand.closed_at = now
    record_event(
        session,
        actor,
        f"demand:demand:{event.value}",
        "demand",
        demand.id,
        {"status": [old.value, demand.status.value], **data},
    )
    queue_match_recompute(session, demand_id=demand.id)
    return demand


def _event_label(event: DemandEvent) -> str:
    return str(
        {
            DemandEvent.PAUSED: _l("paused"),
            DemandEvent.RESUMED: _l("resumed"),
            DemandEvent.FULFILLED: _l("closed as fulfilled"),
            DemandEvent.WITHDRAWN: _l("withdrawn"),
            DemandEvent.EXPIRED: _l("expired"),
        }[event]
    )


def pause_demand(session: Session, actor: Actor, demand_id: int) -> Demand:
    """Take an open demand off matching (its matches are dropped) until it is resumed."""
    return _transition(
        session, _own_locked(session, actor, demand_id), actor, DemandEvent.PAUSED, {}
    )


def resume_demand(session: Session, actor: Actor, demand_id: int) -> Demand:
    """Reopen a paused demand; refused when its delivery window is already over."""
    demand = _own_locked(session, actor, demand_id)
    if demand.status is DemandStatus.PAUSED and demand.window_end < local_today():
        raise InvalidTransition(
            _l("The delivery window is over; edit the window before resuming the demand.")
        )
    return _transition(session, demand, actor, DemandEvent.RESUMED, {})


def close_demand(session: Session, actor: Actor, demand_id: int, outcome: str) -> Demand:
    """Close a demand as fulfilled or withdrawn; its matches are dropped."""
    if outcome not in (DemandEvent.FULFILLED.value, DemandEvent.WITHDRAWN.value):
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"outcome": [str(_l("Say whether the demand was fulfilled or withdrawn."))]},
        )
    demand = _own_locked(session, actor, demand_id)
    return _transition(session, demand, actor, DemandEvent(outcome), {})


def expire_overdue(session: Session, actor: Actor, today: dt.date | None = None) -> int:
    """Expire open and paused demands whose delivery window ended before ``today``."""
    today = today or local_today()
    ids = session.scalars(
        select(Demand.id)
        .where(
            Demand.status.in_([DemandStatus.OPEN, DemandStatus.PAUSED]),
            Demand.window_end < today,
        )
        .order_by(Demand.id)
    ).all()
    for demand_id in ids:
        demand = lock_demand(session, demand_id)
        if demand.status in rules.EDITABLE and demand.window_end < today:
            _transition(session, demand, actor, DemandEvent.EXPIRED, {"window_end": str(today)})
    return len(ids)


# --- Reading ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemandRow:
    demand: Demand
    matches: int


def my_demands(session: Session, actor: Actor) -> list[DemandRow]:
    """The actor's company's demands, newest first, with their current match counts."""
    company_id = require(actor, "view")
    counts = (
        select(Match.demand_id, func.count().label("n"))
        .join(Lot, Lot.id == Match.lot_id)
        .where(Lot.status == "published")
        .group_by(Match.demand_id)
        .subquery()
    )
    rows = session.execute(
        select(Demand, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.demand_id == Demand.id)
        .where(Demand.buyer_id == company_id)
        .options(selectinload(Demand.specs), selectinload(Demand.materials))
        .order_by(Demand.created_at.desc(), Demand.id.desc())
    ).all()
    return [DemandRow(d, n) for d, n in rows]


def all_demands(session: Session, actor: Actor, limit: int = 500) -> list[DemandRow]:
    """Every demand (administrators), newest first."""
    if not actor.is_admin:
        raise Forbidden(_l("Only administrators can do this."))
    rows = session.scalars(
        select(Demand)
        .options(selectinload(Demand.specs), selectinload(Demand.materials))
        .order_by(Demand.id.desc())
        .limit(limit)
    ).all()
    counts = dict(
        session.execute(
            select(Match.demand_id, func.count())
            .where(Match.demand_id.in_([d.id for d in rows]))
            .group_by(Match.demand_id)
        ).all()
    )
    return [DemandRow(d, counts.get(d.id, 0)) for d in rows]


class Access(enum.StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    PUBLIC = "public"
    MATCHED = "matched"


def producer_has_match(session: Session, company_id: int, demand_id: int) -> bool:
    return bool(
        session.scalar(
            select(
                exists()
                .where(Match.demand_id == demand_id, Match.lot_id == Lot.id)
                .where(Lot.producer_id == company_id)
            )
        )
    )


def demand_for_viewer(session: Session, actor: Actor, demand_id: int) -> tuple[Demand, str]:
    """The demand and how the actor may see it; NotFound when it must stay hidden.

    The buyer's members and administrators see everything; other users see an open public
    demand, or a demand one of their company's lots matches.
    """
    demand = session.get(Demand, demand_id)
    if demand is None:
        raise NotFound(_l("No such demand."))
    if actor.company_id is not None and actor.company_id == demand.buyer_id:
        return demand, Access.OWNER
    if actor.is_admin:
        return demand, Access.ADMIN
    if actor.company_id is not None and producer_has_match(session, actor.company_id, demand.id):
        return demand, Access.MATCHED
    if demand.status is DemandStatus.OPEN and demand.visibility is Visibility.PUBLIC:
        return demand, Access.PUBLIC
    raise NotFound(_l("No such demand."))


def wanted_board(
    session: Session, filters: BoardFilters, actor: Actor = SYSTEM
) -> tuple[list[Demand], int]:
    """Open public demands for producers in the filters' order, and how many match (the
    distance sort measures from one of ``actor``'s sites)."""
    page = board_page(session, actor, wanted_query(filters), filters)
    return page.rows, page.total


def draft_of(demand: Demand, **changes: Any) -> DemandDraft:
    """A draft holding ``demand``'s current terms, with ``changes`` applied (partial edits)."""
    values: dict[str, Any] = {
        "title": demand.title,
        "end_use": demand.end_use,
        "families": tuple(demand.families),
        "materials": tuple(demand.material_codes),
        "specs": demand.windows,
        "quantity": demand.quantity,
        "recurrence": demand.recurrence.value,
        "min_lot_size": demand.min_lot_size,
        "delivery_site_id": demand.delivery_site_id,
        "window_start": demand.window_start,
        "window_end": demand.window_end,
        "max_price": demand.max_price,
        "modes": tuple(m.value for m in demand.modes),
        "visibility": demand.visibility.value,
        "notes": demand.notes or "",
    }
    values.update(changes)
    return DemandDraft(**values)


def edit_demand_partly(
    session: Session, actor: Actor, demand_id: int, changes: dict[str, Any]
) -> Demand:
    """Change some terms of the actor's demand, keeping the others (see ``edit_demand``)."""
    demand = _own_locked(session, actor, demand_id)
    return edit_demand(session, actor, demand.id, draft_of(demand, **changes))


def demand_matches_query(session: Session, actor: Actor, demand_id: int) -> Select[Match]:
    """The demand's ranked matches for its buyer's members and administrators.

    NotFound when the actor may not see the demand; Forbidden when it may see the demand (a
    public one, or one its lots match) but not the buyer's matches.
    """
    demand, access = demand_for_viewer(session, actor, demand_id)
    if access not in (Access.OWNER, Access.ADMIN):
        raise Forbidden(_l("Only the buyer sees a demand's matching lots."))
    return matching.demand_matches_query(demand.id)


def lot_matches_query(session: Session, actor: Actor, lot_id: int) -> Select[Match]:
    """The lot's ranked matching demands for its producer's members and administrators;
    NotFound for everyone else, as for a lot that does not exist."""
    lot = session.get(Lot, lot_id)
    if lot is None or not (actor.is_admin or actor.company_id == lot.producer_id):
        raise NotFound(_l("No such lot."))
    return matching.lot_matches_query(lot.id)


# --- Alert settings ---------------------------------------------------------------------------


def alert_setting(session: Session, user_id: int) -> MatchAlertSetting:
    """The user's match-alert settings (defaults when never saved; not added to the session)."""
    setting = session.get(MatchAlertSetting, user_id)
    if setting is None:
        return MatchAlertSetting(
            user_id=user_id,
            as_buyer=True,
            as_producer=True,
            min_headroom=Decimal(0),
            by_email=True,
        )
    return setting


def save_alert_setting(
    session: Session,
    actor: Actor,
    as_buyer: bool,
    as_producer: bool,
    min_headroom: Decimal | None,
    by_email: bool = True,
) -> MatchAlertSetting:
    """Save the actor's match-alert settings; raises ValidationError for a negative headroom."""
    if actor.user_id is None:
        raise Forbidden(_l("Please log in to see this page."))
    if min_headroom is None or not min_headroom.is_finite() or min_headroom < 0:
        raise ValidationError(
            _l("Please correct the marked fields."),
            {"min_headroom": [str(_l("Give zero or a positive amount in CNY per tonne."))]},
        )
    setting = session.get(MatchAlertSetting, actor.user_id, with_for_update=True)
    if setting is None:
        setting = MatchAlertSetting(user_id=actor.user_id)
        session.add(setting)
    setting.as_buyer = as_buyer
    setting.as_producer = as_producer
    setting.min_headroom = min_headroom
    setting.by_email = by_email
    session.flush()
    return setting
