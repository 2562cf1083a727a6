"""HTML forms of the trading context (the lot panel, withdrawal, the reserve decision)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DecimalField, HiddenField, RadioField, SelectField, SubmitField
from wtforms.validators import InputRequired, NumberRange, Optional, ValidationError

from exchange.catalog.materials import EndUse

REQUIRED = _l("This field is required.")
#: Far beyond any real price per tonne, well inside Numeric(12,2).
PRICE_LIMIT = Decimal(10_000_000)
TONNES_LIMIT = Decimal(1_000_000_000)


def _finite(_form: FlaskForm, field: DecimalField) -> None:
    if field.data is not None and not field.data.is_finite():
        raise ValidationError(_l("Enter a number."))


def _tonnes(label: object, required: bool = True) -> DecimalField:
    return DecimalField(
        label,
        places=3,
        validators=[
            InputRequired(REQUIRED) if required else Optional(),
            _finite,
            NumberRange(
                min=Decimal("0.001"),
                max=TONNES_LIMIT,
                message=_l("Enter a positive number of tonnes."),
            ),
        ],
    )


class _TradeForm(FlaskForm):
    end_use = SelectField(
        _l("Your end use"),
        choices=[(u.value, u.value) for u in EndUse],
        validators=[InputRequired(REQUIRED)],
        description=_l("Checked against the lot's compliance gates (hazard, radioactivity, soil)."),
    )
    #: A fresh key per rendered form: resubmitting it (double click, retry) acts once.
    key = HiddenField(default=lambda: uuid.uuid4().hex)
    next = HiddenField()


class BidForm(_TradeForm):
    price = DecimalField(
        _l("Price per tonne (CNY)"),
        places=2,
        validators=[
            InputRequired(REQUIRED),
            _finite,
            NumberRange(min=-PRICE_LIMIT, max=PRICE_LIMIT, message=_l("Enter a sensible price.")),
        ],
    )
    quantity = _tonnes(_l("Quantity (t)"))
    min_quantity = _tonnes(_l("Smallest part you accept (t, optional)"), required=False)
    #: The lot version (newest bid id) the form was built on: tells a lost race from a bad bid.
    version = HiddenField()
    #: The live bid this one raises (or revises, in a tender).
    replaces = HiddenField()
    submit = SubmitField(_l("Review and place bid"))


class BuyForm(_TradeForm):
    quantity = _tonnes(_l("Quantity (t)"))
    #: What remained when the form was shown: buying more than is left then is a lost race.
    seen_remaining = HiddenField()
    submit = SubmitField(_l("Review and buy"))


class ReserveDecisionForm(FlaskForm):
    decision = RadioField(
        _l("Your decision"),
        choices=[
            ("accept", _l("Accept the best bids below the reserve")),
            ("decline", _l("Decline: only bids at or above the reserve win")),
        ],
        validators=[InputRequired(REQUIRED)],
    )
    submit = SubmitField(_l("Confirm decision"))


def int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def decimal_or_none(raw: str | None) -> Decimal | None:
    try:
        value = Decimal(raw) if raw else None
    except ArithmeticError:
        return None
    return value if value is not None and value.is_finite() else None
