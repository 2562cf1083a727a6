"""Public statistics page and each company's own red-mud ledger (with exports)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import login_required
from werkzeug.datastructures import MultiDict

from exchange.accounts.forms import SECTOR_LABELS, province_choices
from exchange.accounts.models import Company
from exchange.db import get_session
from exchange.errors import NotFound, ValidationError
from exchange.reporting import carbon, charts, exports, offtake, rules, statistics, views
from exchange.reporting.forms import PeriodForm
from exchange.security import current_actor
from exchange.webutil import attach_errors, locale

bp = Blueprint("reporting", __name__)

#: Downloads: (mimetype, file extension).
FORMATS = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}


def read_period(default_months: int = 12) -> tuple[PeriodForm, statistics.Period | None]:
    """The period in the query string; None (with field errors on the form) when invalid."""
    form = PeriodForm(MultiDict(request.args))
    form.province.choices = [("", _("All provinces")), *province_choices()[1:]]
    if request.args and not form.validate():
        return form, None
    try:
        return form, statistics.period_from(
            form.start.data, form.end.data, views.today(), default_months
        )
    except ValidationError as exc:
        attach_errors(form, exc)
        return form, None


def download(data: bytes, fmt: str, name: str) -> Response:
    mimetype, extension = FORMATS[fmt]
    return Response(
        data,
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'},
    )


@bp.route("/stats")
def public_stats():  # type: ignore[no-untyped-def]
    """National totals and the utilization chart: no company-level detail."""
    form, period = read_period(12)
    if period is None:
        return render_template("reporting/public.html", form=form, data=None), 422
    data = views.overview(get_session(), period)
    return render_template(
        "reporting/public.html",
        form=form,
        data=data,
        rate_chart=views.utilization_chart(data.monthly, charts.HALF),
        tonnes_chart=views.tonnes_chart(data.monthly, charts.HALF),
        end_use_chart=views.end_use_chart(data.end_uses, charts.HALF),
        conversion=rules.CONVERSION_METHOD,
        factors=carbon.FACTORS,
    )


@bp.route("/reports/ledger")
@login_required
def ledger():  # type: ignore[no-untyped-def]
    form, period = read_period(12)
    if period is None:
        return render_template("reporting/ledger.html", form=form, entries=None), 422
    session, actor = get_session(), current_actor()
    entries = exports.company_ledger(session, actor, period)
    company = session.get(Company, actor.company_id) if actor.company_id else None
    linkage = (
        offtake.company_offtake(session, actor, period)
        if company is not None and company.is_producer
        else None
    )
    return render_template(
        "reporting/ledger.html",
        form=form,
        entries=entries,
        period=period,
        linkage=linkage,
        end_use_label=views.end_use_label,
        sector_labels={k.value: v for k, v in SECTOR_LABELS.items()},
        locale=locale(),
    )


@bp.route("/reports/ledger.<fmt>")
@login_required
def ledger_export(fmt: str):  # type: ignore[no-untyped-def]
    if fmt not in FORMATS:
        raise NotFound(_("No such format."))
    form, period = read_period(12)
    if period is None:
        return render_template("reporting/ledger.html", form=form, entries=None), 422
    actor = current_actor()
    entries = exports.company_ledger(get_session(), actor, period)
    data = exports.ledger_file(entries, fmt, locale())
    return download(data, fmt, f"ledger-{period.first:%Y%m}-{period.last:%Y%m}")
