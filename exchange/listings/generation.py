"""Producers' monthly generation reports: tonnes of new red mud per plant per month (dry).

These are the denominator of the utilization statistics (15 % of newly generated red mud by
2027, 25 % by 2030). One report per site and month; a correction replaces the figure and is
audited on the company's chain with the old and new tonnes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange.accounts.models import Site
from exchange.actor import Actor
from exchange.audit.services import record_event
from exchange.db import utcnow
from exchange.errors import Forbidden
from exchange.listings.models import MonthlyGeneration
from exchange.listings.services import producer_company
from exchange.listings.terms import FieldErrors, parse_number

EARLIEST_MONTH = dt.date(2000, 1, 1)
#: A very large refinery makes a few hundred thousand tonnes a month; this is far above that.
MAX_MONTHLY_TONNES = Decimal("100000000")


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


def report_generation(session: Session, actor: Actor, data: dict[str, Any]) -> MonthlyGeneration:
    """Record (or correct) the dry tonnes a site generated in a month.

    ``data`` holds ``site_id``, ``month`` (any day of it) and ``tonnes``. Raises Forbidden unless
    the actor trades for a verified producer, ValidationError for a foreign site, a future
    month or a bad tonnage. Records ``listings:generation:reported`` on the company's chain.
    """
    company = producer_company(session, actor)
    errors = FieldErrors()
    raw_site = str(data.get("site_id") or "")
    site = session.get(Site, int(raw_site)) if raw_site.isdigit() else None
    if site is None or site.company_id != company.id:
        errors.add("site_id", _l("Choose one of your company's sites."))
    month = data.get("month")
    if not isinstance(month, dt.date):
        errors.add("month", _l("Choose the month."))
    else:
        month = first_of_month(month)
        if month > first_of_month(utcnow().date()):
            errors.add("month", _l("The month has not happened yet."))
        elif month < EARLIEST_MONTH:
            errors.add("month", _l("The month is too far in the past."))
    tonnes = None
    raw = data.get("tonnes")
    if raw is None or raw == "":
        errors.add("tonnes", _l("This field is required."))
    else:
        tonnes = parse_number(errors, "tonnes", raw)
        if tonnes is not None and (not tonnes.is_finite() or tonnes < 0):
            errors.add("tonnes", _l("Enter zero or a positive number of tonnes."))
        elif tonnes is not None and tonnes > MAX_MONTHLY_TONNES:
            errors.add("tonnes", _l("That is more than any plant generates in a month."))
        elif tonnes is not None and tonnes != tonnes.quantize(Decimal("0.001")):
            errors.add("tonnes", _l("Tonnes are kept to the kilogram: at most three decimals."))
    errors.raise_if_any()
    assert site is not None and isinstance(month, dt.date) and tonnes is not None
    report = session.scalar(
        select(MonthlyGeneration).where(
            MonthlyGeneration.site_id == site.id, MonthlyGeneration.month == month
        )
    )
    old = report.tonnes if report is not None else None
    now = utcnow()
    if report is None:
        report = MonthlyGeneration(company_id=company.id, site_id=site.id, month=month)
        session.add(report)
    elif old == tonnes:
        return report
    else:
        report.updated_at = now
    report.tonnes = tonnes
    report.reported_by_id = actor.user_id
    session.flush()
    record_event(
        session,
        actor,
        "listings:generation:reported",
        "company",
        company.id,
        {"site_id": site.id, "month": month, "tonnes": [old, tonnes], "basis": "dry"},
    )
    return report


def generation_reports(session: Session, actor: Actor) -> list[MonthlyGeneration]:
    """The actor's company's reports, newest month first."""
    if actor.company_id is None:
        raise Forbidden(_l("Only members of a company report generation."))
    return list(
        session.scalars(
            select(MonthlyGeneration)
            .where(MonthlyGeneration.company_id == actor.company_id)
            .order_by(MonthlyGeneration.month.desc(), MonthlyGeneration.site_id)
            .limit(600)
        )
    )
