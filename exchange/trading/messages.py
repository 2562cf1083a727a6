"""Translated texts for trading refusals and labels (the rules keep English and codes)."""

from __future__ import annotations

from collections.abc import Mapping

from flask_babel import lazy_gettext as _l

from exchange.trading.rules import BidStatus, Refusal, RefusalCode

REFUSALS: Mapping[RefusalCode, object] = {
    RefusalCode.LOT_NOT_OPEN: _l("Bidding on this lot is not open (it opens at %(opens_at)s)."),
    RefusalCode.LOT_CLOSED: _l("Bidding on this lot closed at %(closed_at)s."),
    RefusalCode.OWN_LOT: _l("A company cannot bid on or buy its own lot."),
    RefusalCode.COMPANY_UNVERIFIED: _l("Your company must be verified before it can trade."),
    RefusalCode.END_USE_BLOCKED: _l(
        "This lot may not be sold for the end use you declared (%(end_use)s): a compliance gate "
        "blocks it."
    ),
    RefusalCode.RATE_LIMITED: _l("Too many bids from your company; try again in a moment."),
    RefusalCode.LOST_RACE: _l(
        "Another bid reached the lot first. The minimum is now %(minimum)s per tonne; check it "
        "and bid again."
    ),
    RefusalCode.PRICE_BELOW_MINIMUM: _l("The price must be at least %(minimum)s per tonne."),
    RefusalCode.PRICE_OFF_GRID: _l(
        "The price must be the start price %(start)s plus a whole number of increments of "
        "%(increment)s."
    ),
    RefusalCode.PRICE_NOT_RAISED: _l("A raised bid must be at least %(minimum)s per tonne."),
    RefusalCode.QUANTITY_BELOW_MINIMUM: _l("The quantity must be at least %(minimum)s t."),
    RefusalCode.QUANTITY_ABOVE_LOT: _l("The quantity cannot exceed the lot's %(maximum)s t."),
    RefusalCode.QUANTITY_ABOVE_REMAINING: _l("Only %(maximum)s t remain."),
    RefusalCode.QUANTITY_TOO_PRECISE: _l("Quantities are in tonnes with at most 3 decimals."),
    RefusalCode.MIN_QUANTITY_OUT_OF_RANGE: _l(
        "The minimum fill must be between %(low)s t and %(high)s t."
    ),
    RefusalCode.QUANTITY_REDUCED: _l("A raised bid must keep at least its %(minimum)s t."),
    RefusalCode.MIN_QUANTITY_RAISED: _l(
        "A raised bid cannot ask for a minimum fill above %(maximum)s t."
    ),
    RefusalCode.SOLD_OUT: _l("This lot is sold out."),
    RefusalCode.BID_NOT_LIVE: _l(
        "This bid is no longer live (it was revised, withdrawn or closed)."
    ),
    RefusalCode.BID_WINNING: _l(
        "A bid cannot be withdrawn while it is winning; it can be withdrawn once it is outbid."
    ),
}

BID_STATUS_LABELS: Mapping[BidStatus, object] = {
    BidStatus.ACTIVE: _l("Live"),
    BidStatus.SUPERSEDED: _l("Revised"),
    BidStatus.WITHDRAWN: _l("Withdrawn"),
    BidStatus.WON: _l("Won"),
    BidStatus.PARTIALLY_WON: _l("Partly won"),
    BidStatus.LOST: _l("Lost"),
    BidStatus.LAPSED: _l("Lapsed (not signed in time)"),
}


def end_use_name(code: str) -> str:
    """The end use's name in the current language (the code itself if unknown)."""
    from flask import has_request_context
    from flask_babel import get_locale

    from exchange.catalog.materials import END_USES, EndUse

    try:
        info = END_USES[EndUse(code)]
    except ValueError:
        return code
    zh = has_request_context() and str(get_locale()).startswith("zh")
    return info.name_zh if zh else info.name_en


def refusal_text(refusal: Refusal, **overrides: str) -> str:
    """The refusal in the current language; ``overrides`` replace parameters (e.g. local times)."""
    params = {**refusal.params, **overrides}
    return str(REFUSALS[refusal.code]) % params
