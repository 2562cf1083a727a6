"""HTML forms of the reporting context."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DecimalField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields import DateField, MonthField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from exchange.reporting.anomalies import Rule
from exchange.reporting.models import AffiliationKind

REQUIRED = _l("This field is required.")

RULE_LABELS = {
    Rule.RELATED_BIDDING: _l("Bids or awards between related companies"),
    Rule.BID_WITHDRAWALS: _l("Repeated bid withdrawals"),
    Rule.NEVER_SIGNS: _l("Awards left unsigned"),
    Rule.PRICE_OUTLIER: _l("Price far from the recent index"),
    Rule.WEIGHT_DISCREPANCY: _l("Received weight differs from dispatched"),
    Rule.RESERVE_DODGE: _l("Lot relisted after a failed reserve"),
    Rule.LOGIN_BURST: _l("Burst of failed logins"),
}
STATUS_LABELS = {
    "open": _l("Open"),
    "dismissed": _l("Dismissed"),
    "escalated": _l("Escalated"),
}
KIND_LABELS = {
    AffiliationKind.PARENT_SUBSIDIARY: _l("Parent and subsidiary"),
    AffiliationKind.COMMON_OWNER: _l("Common owner"),
    AffiliationKind.SHARED_MANAGEMENT: _l("Shared management"),
    AffiliationKind.OTHER: _l("Other"),
}


class PeriodForm(FlaskForm):
    """A period of whole months, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    start = MonthField(_l("From month"), validators=[Optional()])
    end = MonthField(_l("To month"), validators=[Optional()])
    province = SelectField(_l("Province"), validators=[Optional()], default="")


class FlagDecisionForm(FlaskForm):
    decision = SelectField(
        _l("Decision"),
        choices=[("dismissed", _l("Dismiss: nothing wrong")), ("escalated", _l("Escalate"))],
    )
    reason = TextAreaField(
        _l("Reason (kept in the audit trail)"),
        validators=[DataRequired(REQUIRED), Length(max=1000)],
    )
    submit = SubmitField(_l("Record decision"))


class SuspensionForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the company's users receive it by e-mail)"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
    )
    submit = SubmitField(_l("Confirm"))


class AffiliationForm(FlaskForm):
    company_a = StringField(
        _l("First company's unified social credit code"),
        validators=[DataRequired(REQUIRED), Length(max=18)],
    )
    company_b = StringField(
        _l("Second company's unified social credit code"),
        validators=[DataRequired(REQUIRED), Length(max=18)],
    )
    kind = SelectField(
        _l("Relation"), choices=[(k.value, label) for k, label in KIND_LABELS.items()]
    )
    note = StringField(
        _l("Note (source, e.g. the business registry)"), validators=[Optional(), Length(max=500)]
    )
    submit = SubmitField(_l("Record affiliation"))


class DeskForm(FlaskForm):
    """The trade desk's search, read from the query string (no CSRF: it changes nothing)."""

    class Meta:
        csrf = False

    kind = SelectField(_l("Search"), default="contract")
    company = StringField(
        _l("Company (name, credit code or id)"), validators=[Optional(), Length(max=100)]
    )
    province = SelectField(_l("Province"), validators=[Optional()], default="")
    material = SelectField(_l("Material"), validators=[Optional()], default="")
    status = StringField(_l("Status"), validators=[Optional(), Length(max=30)])
    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("Until"), validators=[Optional()])
    min_amount = DecimalField(
        _l("Amount from (CNY, signed)"),
        validators=[Optional(), NumberRange(min=-(10**12), max=10**12)],
    )
    max_amount = DecimalField(
        _l("Amount to (CNY, signed)"),
        validators=[Optional(), NumberRange(min=-(10**12), max=10**12)],
    )
