"""HTML pages and the live endpoint of trading: the lot panel, bids, buy-now, lists, decisions.

The lot panel (``templates/trading/_lot_panel.html``) is included by the listings lot page with
``lot`` in context; it asks ``trade_state(lot)`` (a Jinja global registered here) for its data.
``/trading/lots/<id>`` shows the same panel on a page of its own.

Bids and purchases are rate-limited per company (Flask-Limiter, ``TRADING_BID_RATE_LIMIT``,
one budget shared by both routes).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import Session

from exchange.accounts.companies import require
from exchange.accounts.forms import ConfirmForm
from exchange.db import commit, get_session, reads_only
from exchange.errors import DomainError, ValidationError
from exchange.extensions import limiter
from exchange.i18n import is_zh
from exchange.listings.models import Lot
from exchange.security import current_actor, signed_in_lean
from exchange.trading import clock, closing, queries, services
from exchange.trading.forms import (
    BidForm,
    BuyForm,
    ReserveDecisionForm,
    decimal_or_none,
    int_or_none,
)
from exchange.trading.messages import BID_STATUS_LABELS
from exchange.trading.notices import recent_notices
from exchange.trading.queries import TradeState
from exchange.trading.rules import SaleMode, value_fen
from exchange.webutil import attach_errors

bp = Blueprint("trading", __name__, url_prefix="/trading")


def _company_key() -> str:
    """Rate-limit key: the company (all its users share one budget), else the address."""
    if current_user.is_authenticated and current_user.company is not None:
        return f"company:{current_user.company.id}"
    return request.remote_addr or "unknown"


def _bid_limit() -> str:
    return str(current_app.config["TRADING_BID_RATE_LIMIT"])


_rate_limited = limiter.limit(
    _bid_limit, key_func=_company_key, methods=["POST"], scope="trading-bids"
)


def _safe_next(target: str | None, lot_id: int) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("trading.lot", lot_id=lot_id)


# --- template helpers ---------------------------------------------------------------------------


def trade_state(lot: Lot) -> TradeState:
    """The panel's data for the signed-in user (a Jinja global)."""
    return queries.trade_state(get_session(), current_actor(), lot, clock.now())


def _end_use_choices(state: TradeState) -> list[tuple[Any, ...]]:
    zh = is_zh()
    choices: list[tuple[Any, ...]] = [("", _("Choose…"))]
    for code, allowed in state.end_uses:
        label = queries.end_use_label(code, zh)
        if allowed:
            choices.append((code, label))
        else:
            choices.append(
                (code, _("%(use)s — blocked by a compliance gate", use=label), {"disabled": True})
            )
    return choices


def trade_forms(
    state: TradeState, bid_form: BidForm | None = None, buy_form: BuyForm | None = None
) -> dict[str, Any]:
    """The panel's forms, fresh or the ones that came back with errors (a Jinja global)."""
    if state.mode is SaleMode.BUY_NOW:
        form = buy_form or BuyForm(prefix="trade", formdata=None)
        form.seen_remaining.data = f"{state.lot.remaining}"
    else:
        form = bid_form or BidForm(prefix="trade", formdata=None)
        form.version.data = str(state.version)
        mine = state.live_own
        form.replaces.data = str(mine.bid.id) if mine else ""
        if mine is not None and not form.errors:
            form.quantity.data = mine.bid.quantity
            form.min_quantity.data = mine.bid.min_quantity
            form.end_use.data = mine.bid.end_use
        if not form.errors and form.price.data is None and state.minimum_next is not None:
            form.price.data = state.minimum_next
    form.end_use.choices = _end_use_choices(state)
    form.next.data = form.next.data or request.path
    return {"form": form}


def cny(value: Decimal | None) -> str:
    """A signed amount or price with exactly two decimals, grouped (``1,234.50``)."""
    if value is None:
        return "—"
    return format_decimal(value, format="#,##0.00;-#,##0.00")


@bp.record_once
def _register(state: Any) -> None:
    state.app.jinja_env.filters["cny"] = cny
    state.app.jinja_env.globals.update(
        trade_state=trade_state,
        trade_forms=trade_forms,
        bid_status_label=lambda s: str(BID_STATUS_LABELS.get(s, s)),
        end_use_label=lambda code: queries.end_use_label(code, is_zh()),
        value_fen=value_fen,
    )


# --- pages --------------------------------------------------------------------------------------


def _lot_page(lot: Lot, status: int = 200, **forms: Any):  # type: ignore[no-untyped-def]
    return render_template("trading/lot.html", lot=lot, **forms), status


@bp.route("/lots/<int:lot_id>")
def lot(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    reads_only(session)
    return _lot_page(queries.visible_lot(session, current_actor(), lot_id))


@bp.route("/lots/<int:lot_id>/state")
def lot_state(lot_id: int):  # type: ignore[no-untyped-def]
    """The live state the lot page polls (small JSON with an ETag; 304 when unchanged).

    Every open lot page asks for it every few seconds: it reads outside a transaction."""
    session = get_session()
    reads_only(session)
    lot = queries.visible_lot(session, current_actor(), lot_id)
    payload = queries.state_payload(trade_state(lot))
    response = jsonify(payload)
    response.set_etag(queries.etag_of(payload))
    response.headers["Cache-Control"] = "private, no-cache"
    return response.make_conditional(request)


signed_in_lean("trading.lot_state")  # polled by every open lot page; reads only the actor


@bp.route("/lots/<int:lot_id>/bid", methods=["POST"])
@login_required
@_rate_limited
def place_bid(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    form = BidForm(prefix="trade")
    if not form.validate_on_submit():
        lot = queries.visible_lot(session, current_actor(), lot_id)
        return _lot_page(lot, 422, bid_form=form)
    try:
        result = services.place_bid(
            session,
            current_actor(),
            lot_id,
            form.price.data,
            form.quantity.data,
            form.end_use.data,
            min_quantity=form.min_quantity.data,
            replaces_bid_id=int_or_none(form.replaces.data),
            seen_version=int_or_none(form.version.data),
            idempotency_key=(form.key.data or None),
        )
    except (services.BidRefused, services.BidConflict) as exc:
        return _refused(session, lot_id, exc, bid_form=form)
    commit(session)
    if not result.replayed:
        flash(_bid_flash(result), "success")
    return redirect(_safe_next(form.next.data, lot_id))


def _bid_flash(result: services.BidResult) -> str:
    if result.bid.seal_nonce is not None:  # a sealed tender bid
        return _("Your sealed bid is recorded. Nobody sees it before the close.")
    if result.extended_to is not None:
        return _(
            "Your bid is placed. It came in the last minutes, so the close moved to %(when)s.",
            when=current_app.jinja_env.filters["dt"](result.extended_to),
        )
    return _("Your bid is placed.")


def _refused(session: Session, lot_id: int, exc: DomainError, **forms: Any):  # type: ignore[no-untyped-def]
    if getattr(exc, "keep", False):
        commit(session)  # keep the audit record of a refusal of consequence
    else:
        session.rollback()
    form = next(iter(forms.values()))
    if isinstance(exc, ValidationError):
        attach_errors(form, exc)
    else:
        flash(str(exc.message), "warning")
    lot = queries.visible_lot(session, current_actor(), lot_id)
    return _lot_page(lot, exc.status, **forms)


@bp.route("/lots/<int:lot_id>/buy", methods=["POST"])
@login_required
@_rate_limited
def buy_now(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    form = BuyForm(prefix="trade")
    if not form.validate_on_submit():
        lot = queries.visible_lot(session, current_actor(), lot_id)
        return _lot_page(lot, 422, buy_form=form)
    try:
        award = services.buy_now(
            session,
            current_actor(),
            lot_id,
            form.quantity.data,
            form.end_use.data,
            idempotency_key=(form.key.data or None),
            seen_remaining=decimal_or_none(form.seen_remaining.data),
        )
    except (services.BidRefused, services.BidConflict) as exc:
        return _refused(session, lot_id, exc, buy_form=form)
    commit(session)
    flash(
        _(
            "You bought %(quantity)s t. Sign the contract by %(when)s.",
            quantity=award.quantity,
            when=current_app.jinja_env.filters["dt"](award.sign_by),
        ),
        "success",
    )
    return redirect(_safe_next(form.next.data, lot_id))


@bp.route("/bids/<int:bid_id>/withdraw", methods=["POST"])
@login_required
def withdraw_bid(bid_id: int):  # type: ignore[no-untyped-def]
    if not ConfirmForm().validate_on_submit():
        abort(400)
    session = get_session()
    bid = services.withdraw_bid(session, current_actor(), bid_id)
    commit(session)
    flash(_("Your bid is withdrawn."), "success")
    return redirect(_safe_next(request.form.get("next"), bid.lot_id))


@bp.route("/lots/<int:lot_id>/book")
@login_required
def lot_book(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    book = queries.lot_book(session, current_actor(), lot_id)
    return render_template(
        "trading/book.html", book=book, decision_form=ReserveDecisionForm(), now=clock.now()
    )


@bp.route("/lots/<int:lot_id>/reserve", methods=["POST"])
@login_required
def decide_reserve(lot_id: int):  # type: ignore[no-untyped-def]
    session = get_session()
    form = ReserveDecisionForm()
    if not form.validate_on_submit():
        book = queries.lot_book(session, current_actor(), lot_id)
        page = render_template("trading/book.html", book=book, decision_form=form, now=clock.now())
        return page, 422
    closing.decide_reserve(session, current_actor(), lot_id, form.decision.data == "accept")
    commit(session)
    flash(_("Your decision is recorded and the lot is allocated."), "success")
    return redirect(url_for("trading.lot_book", lot_id=lot_id))


@bp.route("/bids")
@login_required
def my_bids():  # type: ignore[no-untyped-def]
    session = get_session()
    company_id = require(current_actor(), "view")
    return render_template(
        "trading/my_bids.html",
        bids=queries.my_bids(session, company_id),
        awards=queries.my_awards(session, company_id),
        notices=recent_notices(session, company_id),
    )


@bp.route("/lots")
@login_required
def my_lots():  # type: ignore[no-untyped-def]
    session = get_session()
    company_id = require(current_actor(), "view")
    return render_template(
        "trading/my_lots.html", rows=queries.producer_lots(session, company_id), now=clock.now()
    )
