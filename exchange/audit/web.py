"""Administrator pages to browse and verify the audit trail."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, abort, render_template, request

from exchange.audit.services import events_for, verify
from exchange.db import get_session
from exchange.security import admins_only

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")


admins_only(bp)


def _date(name: str) -> dt.datetime | None:
    raw = request.args.get(name, "")
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        return None
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


@bp.route("/")
def events():  # type: ignore[no-untyped-def]
    page = max(request.args.get("page", 1, type=int) or 1, 1)
    until = _date("until")
    filters = {
        "entity_type": request.args.get("entity_type") or None,
        "entity_id": request.args.get("entity_id") or None,
        "action": request.args.get("action") or None,
        "actor_company_id": request.args.get("company", type=int),
        "since": _date("since"),
        "until": until + dt.timedelta(days=1) if until else None,
    }
    rows, total = events_for(get_session(), page=page, per_page=50, **filters)
    return render_template(
        "audit/events.html",
        events=rows,
        total=total,
        page=page,
        pages=max((total + 49) // 50, 1),
        args=request.args,
        filters={k: v for k, v in request.args.items() if k != "page" and v},
    )


@bp.route("/verify", methods=["GET", "POST"])
def run_verify():  # type: ignore[no-untyped-def]
    report = verify(get_session()) if request.method == "POST" else None
    from exchange.accounts.forms import ConfirmForm

    form = ConfirmForm()
    if request.method == "POST" and not form.validate_on_submit():
        abort(400)
    return render_template("audit/verify.html", report=report, form=form)
