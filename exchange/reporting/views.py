"""What the statistics pages show: labels in the reader's language and the charts.

Shared by the public page and the administrators' dashboard; no business rules here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy.orm import Session

from exchange.accounts.regions import province_name
from exchange.catalog.materials import END_USES, EndUse
from exchange.db import utcnow
from exchange.i18n import is_zh
from exchange.reporting import charts, rules, statistics
from exchange.reporting.statistics import Period

FAMILY_LABELS = {
    "red_mud": _l("Red mud"),
    "rm_product": _l("Red-mud products"),
    "co_waste": _l("Co-wastes"),
}


def end_use_label(code: str) -> str:
    if code == rules.GENERATION_ROW:
        return _("Generation")
    if code == "unspecified":
        return _("End use not given")
    try:
        info = END_USES[EndUse(code)]
    except ValueError:
        return code
    return info.name_zh if is_zh() else info.name_en


def province_label(code: str) -> str:
    return province_name(code, "zh" if is_zh() else "en")


def month_label(month: dt.date) -> str:
    return f"{month:%Y-%m}"


def percent(rate: Decimal | None) -> float | None:
    return float(rate * 100) if rate is not None else None


def targets() -> list[charts.Reference]:
    return [
        charts.Reference(
            _("%(year)d target %(rate)d %%", year=t.year, rate=int(t.rate * 100)),
            float(t.rate * 100),
        )
        for t in rules.TARGETS
    ]


def utilization_chart(series: list[rules.GroupTotal], size: charts.Size = charts.WIDE) -> Markup:
    """Monthly utilization rate against the 15 % and 25 % target lines."""
    labels = [month_label(t.group[0]) for t in series]  # type: ignore[arg-type]
    rates = tuple(percent(t.rate) for t in series)
    description = "; ".join(
        f"{label}: {'—' if r is None else f'{r:.1f} %'}"
        for label, r in zip(labels, rates, strict=True)
    )
    return charts.responsive(
        charts.line_chart,
        _("Utilization rate by month"),
        labels,
        [charts.Series(_("Utilization rate"), rates)],
        references=targets(),
        y_suffix="%",
        description=description,
        wide_size=size,
    )


def _or_gap(value: Decimal, total: rules.GroupTotal) -> float | None:
    """A month with no report and no delivery is a gap in the line, not a zero."""
    return float(value) if total.generated_t or total.deliveries else None


def tonnes_chart(series: list[rules.GroupTotal], size: charts.Size = charts.WIDE) -> Markup:
    labels = [month_label(t.group[0]) for t in series]  # type: ignore[arg-type]
    return charts.responsive(
        charts.line_chart,
        _("Red mud generated and delivered to use (dry t)"),
        labels,
        [
            charts.Series(_("Generated"), tuple(_or_gap(t.generated_t, t) for t in series)),
            charts.Series(_("Delivered to use"), tuple(_or_gap(t.delivered_t, t) for t in series)),
        ],
        y_suffix="",
        description=_("Dry tonnes per month."),
        wide_size=size,
    )


def end_use_chart(rows: list[rules.GroupTotal], size: charts.Size = charts.WIDE) -> Markup | None:
    if not rows:
        return None
    return charts.responsive(
        charts.bar_chart,
        _("Red mud delivered by end use (dry t)"),
        [
            (end_use_label(str(t.group[0])), float(t.delivered_t))
            for t in sorted(rows, key=lambda t: t.delivered_t, reverse=True)
        ],
        value_suffix=" t",
        description=_("Dry red-mud tonnes per end use."),
        wide_size=size,
    )


def province_chart(rows: list[rules.GroupTotal], size: charts.Size = charts.WIDE) -> Markup | None:
    if not rows:
        return None
    return charts.responsive(
        charts.bar_chart,
        _("Utilization rate by province"),
        [(province_label(str(t.group[0])), percent(t.rate) or 0.0) for t in rows],
        value_suffix="%",
        description=_("Delivered ÷ generated per province of the producing plant."),
        wide_size=size,
    )


def price_chart(points: list[rules.PricePoint], weeks: list[dt.date]) -> Markup | None:
    if not points:
        return None
    families = sorted({p.material_family for p in points})
    by_key = {(p.week, p.material_family): p for p in points}
    series = [
        charts.Series(
            str(FAMILY_LABELS.get(f, f)),
            tuple(float(by_key[(w, f)].price) if (w, f) in by_key else None for w in weeks),
        )
        for f in families
    ]
    return charts.responsive(
        charts.line_chart,
        _("Weekly volume-weighted price (CNY/t; below 0 = disposal fee paid by the producer)"),
        [f"{w:%m-%d}" for w in weeks],
        series,
        y_suffix="",
        description=_("Signed CNY per tonne, weighted by tonnes, per ISO week."),
    )


def weeks_of(period: Period) -> list[dt.date]:
    first = rules.week_start(period.first)
    last = rules.week_start(rules.add_months(period.last, 1) - dt.timedelta(days=1))
    weeks, week = [], first
    while week <= last:
        weeks.append(week)
        week += dt.timedelta(days=7)
    return weeks


@dataclass(frozen=True)
class Overview:
    """Everything the public page and the dashboard's top show for a period."""

    period: Period
    total: rules.GroupTotal
    gaps: list[rules.TargetGap]
    monthly: list[rules.GroupTotal]
    end_uses: list[rules.GroupTotal]
    refreshed_at: dt.datetime | None


def overview(session: Session, period: Period, province: str | None = None) -> Overview:
    total = statistics.national_total(session, period, province=province)
    last = statistics.last_refresh(session)
    return Overview(
        period=period,
        total=total,
        gaps=rules.target_gaps(total.generated_t, total.delivered_t),
        monthly=statistics.monthly_series(session, period, province=province),
        end_uses=statistics.by_end_use(session, period, province=province),
        refreshed_at=last.finished_at if last else None,
    )


def today() -> dt.date:
    return utcnow().date()
