"""HTML forms and labels of the payments context."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, Length, ValidationError

from exchange.payments.rules import InvoiceKind, InvoiceStatus, parse_amount_fen

REQUIRED = _l("This field is required.")

KIND_LABELS = {
    InvoiceKind.DEPOSIT: _l("Deposit"),
    InvoiceKind.DELIVERY: _l("Delivery"),
    InvoiceKind.SETTLEMENT: _l("Final settlement"),
    InvoiceKind.REFUND: _l("Refund"),
    InvoiceKind.FEE: _l("Exchange fee"),
}
STATUS_LABELS = {
    InvoiceStatus.ISSUED: _l("Awaiting payment"),
    InvoiceStatus.PARTIALLY_PAID: _l("Partly paid"),
    InvoiceStatus.PAID: _l("Paid"),
    InvoiceStatus.OVERPAID: _l("Overpaid"),
    InvoiceStatus.CANCELLED: _l("Cancelled"),
    InvoiceStatus.REFUNDED: _l("Refunded"),
}
#: For refund invoices the same statuses read differently.
REFUND_STATUS_LABELS = {
    InvoiceStatus.ISSUED: _l("Refund on its way"),
    InvoiceStatus.PAID: _l("Refund paid out"),
}
GATEWAY_LABELS = {"bank": _l("Bank transfer"), "stripe": _l("Card (Stripe)")}
OUTCOME_LABELS = {
    "matched": _l("Matched"),
    "unmatched": _l("Unmatched"),
    "duplicate": _l("Already recorded"),
}


class AmountField(StringField):
    """A yuan amount typed by a person; ``fen`` holds it in fen once validated."""

    fen: int | None = None

    def pre_validate(self, form: FlaskForm) -> None:
        self.fen = None
        if not (self.data or "").strip():
            raise ValidationError(REQUIRED)
        try:
            self.fen = parse_amount_fen(self.data)
        except ValueError:
            raise ValidationError(
                _l("Enter an amount in yuan above 0, with at most two decimals.")
            ) from None


class TransferForm(FlaskForm):
    received_on = DateField(_l("Date received"), validators=[DataRequired(REQUIRED)])
    amount = AmountField(_l("Amount (yuan)"), description=_l("As on the bank statement."))
    reference = StringField(
        _l("Memo / reference"),
        validators=[DataRequired(REQUIRED), Length(max=200)],
        description=_l("The memo the payer wrote; the RMX-INV reference is found in it."),
    )
    payer = StringField(_l("Payer"), validators=[DataRequired(REQUIRED), Length(max=200)])
    separate = BooleanField(_l("This is a separate transfer (an identical one is recorded)"))
    submit = SubmitField(_l("Reconcile"))


class StatementForm(FlaskForm):
    statement = FileField(
        _l("Bank statement (CSV)"),
        validators=[FileRequired(REQUIRED)],
        description=_l("Columns: date, amount, reference, payer. Outgoing lines are skipped."),
    )
    submit = SubmitField(_l("Import and reconcile"))


class MatchForm(FlaskForm):
    reference = StringField(
        _l("Invoice reference"), validators=[DataRequired(REQUIRED), Length(max=60)]
    )
    submit = SubmitField(_l("Match"))


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (both companies will see it)"),
        validators=[DataRequired(REQUIRED), Length(max=300)],
    )
    submit = SubmitField(_l("Cancel invoice"))


class RefundForm(FlaskForm):
    amount = AmountField(_l("Amount to refund (yuan)"))
    reason = TextAreaField(
        _l("Reason (both companies will see it)"),
        validators=[DataRequired(REQUIRED), Length(max=300)],
    )
    submit = SubmitField(_l("Refund"))


class RefundSentForm(FlaskForm):
    sent_on = DateField(_l("Date sent"), validators=[DataRequired(REQUIRED)])
    bank_reference = StringField(
        _l("Bank reference of the outgoing transfer"),
        validators=[DataRequired(REQUIRED), Length(max=80)],
    )
    submit = SubmitField(_l("Record refund as paid"))
