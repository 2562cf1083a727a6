"""HTML forms of the contracts context, and the labels the pages share."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    DecimalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from exchange.catalog.materials import END_USES
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES
from exchange.contracts.models import Contract, DeliveryStatus, DisputeOutcome
from exchange.contracts.rules import ContractStatus

REQUIRED = _l("This field is required.")
NOT_NEGATIVE = _l("Enter a number of 0 or more.")
TONNES_HELP = _l("Tonnes, to the kilogram (3 decimals).")

STATUS_LABELS = {
    ContractStatus.AWAITING_SIGNATURES: _l("Awaiting signatures"),
    ContractStatus.ACTIVE: _l("Active"),
    ContractStatus.IN_DELIVERY: _l("In delivery"),
    ContractStatus.COMPLETED: _l("Completed"),
    ContractStatus.LAPSED: _l("Lapsed"),
    ContractStatus.DISPUTED: _l("Disputed"),
    ContractStatus.TERMINATED: _l("Terminated"),
    ContractStatus.CANCELLED: _l("Cancelled"),
}
DELIVERY_STATUS_LABELS = {
    DeliveryStatus.DISPATCHED: _l("On the road"),
    DeliveryStatus.ACCEPTED: _l("Accepted"),
    DeliveryStatus.PARTIALLY_ACCEPTED: _l("Partly accepted"),
    DeliveryStatus.REJECTED: _l("Rejected"),
}
MODE_LABELS = {"ex_works": _l("Ex works (buyer collects)"), "delivered": _l("Delivered")}
OUTCOME_LABELS = {
    DisputeOutcome.RESUMED: _l("Resume the contract"),
    DisputeOutcome.TERMINATED: _l("Terminate the contract"),
}


def end_use_choices(zh: bool) -> list[tuple[str, str]]:
    return [(u.value, info.name_zh if zh else info.name_en) for u, info in END_USES.items()]


def _tonnes(label: Any, required: bool = True) -> DecimalField:
    return DecimalField(
        label,
        places=3,
        validators=[
            DataRequired(REQUIRED) if required else Optional(),
            NumberRange(min=0, message=NOT_NEGATIVE),
        ],
        description=TONNES_HELP,
        render_kw={"inputmode": "decimal"},
    )


class SignForm(FlaskForm):
    password = PasswordField(
        _l("Your password"),
        validators=[DataRequired(REQUIRED)],
        render_kw={"autocomplete": "current-password"},
        description=_l("Re-enter your password to sign for your company."),
    )
    #: The terms hash shown to the signer; signing refuses if the terms changed since.
    terms_hash = HiddenField()
    submit = SubmitField(_l("Sign the contract"))


class AmendForm(FlaskForm):
    tolerance_pct = DecimalField(
        _l("Quantity tolerance (± %)"),
        places=2,
        validators=[DataRequired(REQUIRED), NumberRange(min=0, max=20)],
    )
    delivery_site = StringField(
        _l("Delivery site"), validators=[DataRequired(REQUIRED), Length(max=400)]
    )
    window_start = DateField(_l("Delivery window from"), validators=[DataRequired(REQUIRED)])
    window_end = DateField(_l("Delivery window to"), validators=[DataRequired(REQUIRED)])
    schedule = TextAreaField(
        _l("Delivery schedule"),
        validators=[Optional(), Length(max=1000)],
        description=_l("For example: 2,000 t a week, Monday to Friday, 8:00–17:00."),
    )
    deposit_pct = DecimalField(
        _l("Deposit, per cent of the total"),
        places=2,
        validators=[DataRequired(REQUIRED), NumberRange(min=0, max=100)],
    )
    payment_due_days = IntegerField(
        _l("Payment due (days after each delivery)"),
        validators=[DataRequired(REQUIRED), NumberRange(min=0, max=365)],
    )
    submit = SubmitField(_l("Amend the terms"))


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Why should the contract be cancelled?"),
        validators=[DataRequired(REQUIRED), Length(max=500)],
    )
    submit = SubmitField(_l("Ask to cancel"))


class DispatchForm(FlaskForm):
    dispatched_on = DateField(_l("Dispatch date"), validators=[DataRequired(REQUIRED)])
    origin_site = StringField(_l("Origin site"), validators=[Optional(), Length(max=200)])
    carrier = StringField(_l("Carrier"), validators=[DataRequired(REQUIRED), Length(max=200)])
    vehicle_plate = StringField(
        _l("Vehicle plate or wagon number"), validators=[DataRequired(REQUIRED), Length(max=40)]
    )
    manifest_no = StringField(
        _l("Transfer manifest number"), validators=[DataRequired(REQUIRED), Length(max=60)]
    )
    gross_t = _tonnes(_l("Weighbridge gross (t)"))
    tare_t = _tonnes(_l("Weighbridge tare (t)"))
    submit = SubmitField(_l("Record the dispatch"))


class ReceiptForm(FlaskForm):
    """The receipt; ``receipt_form_for`` adds one optional field per re-assayed parameter."""

    received_on = DateField(_l("Receipt date"), validators=[DataRequired(REQUIRED)])
    received_gross_t = _tonnes(_l("Receiving weighbridge gross (t)"))
    received_tare_t = _tonnes(_l("Receiving weighbridge tare (t)"))
    end_use = SelectField(_l("End use of this delivery"), validators=[DataRequired(REQUIRED)])
    rejected_t = _tonnes(_l("Tonnes rejected at inspection"), required=False)
    rejection_reason = StringField(
        _l("Reason for rejected tonnes"), validators=[Optional(), Length(max=500)]
    )
    submit = SubmitField(_l("Record the receipt"))

    #: Assay parameter codes with a field on this form, in display order.
    assay_codes: tuple[str, ...] = ()

    def assay_values(self) -> dict[str, Any]:
        return {
            code: getattr(self, f"assay_{code}").data
            for code in self.assay_codes
            if getattr(self, f"assay_{code}").data is not None
        }


def assay_codes_for(contract: Contract) -> tuple[str, ...]:
    """The parameters the clause judges (derived quantities by their inputs), and moisture."""
    codes: list[str] = []
    for row in contract.quality_clause:
        code = str(row["parameter"])
        inputs = DERIVED_QUANTITIES[code].inputs if code in DERIVED_QUANTITIES else (code,)
        codes.extend(c for c in inputs if c in ASSAY_PARAMETERS and c not in codes)
    if "moisture" not in codes:
        codes.append("moisture")
    return tuple(codes)


def receipt_form_for(contract: Contract, zh: bool, **kwargs: Any) -> ReceiptForm:
    codes = assay_codes_for(contract)
    fields: dict[str, Any] = {"assay_codes": codes}
    for code in codes:
        parameter = ASSAY_PARAMETERS[code]
        name = parameter.name_zh if zh else parameter.name_en
        fields[f"assay_{code}"] = DecimalField(
            f"{name} ({parameter.unit.value})" if parameter.unit.value else name,
            places=4,
            validators=[
                Optional(),
                NumberRange(min=parameter.minimum, max=parameter.maximum),
            ],
        )
    form_class = type("ContractReceiptForm", (ReceiptForm,), fields)
    form: ReceiptForm = form_class(**kwargs)
    form.end_use.choices = end_use_choices(zh)
    return form


class DisputeForm(FlaskForm):
    delivery_id = SelectField(_l("About"), validators=[Optional()], coerce=str)
    reason = StringField(_l("Reason"), validators=[DataRequired(REQUIRED), Length(max=500)])
    evidence = TextAreaField(
        _l("Evidence"),
        validators=[Optional(), Length(max=5000)],
        description=_l("Weighbridge ticket numbers, lab report numbers, what you saw."),
    )
    attachment = FileField(
        _l("Evidence file (optional)"),
        description=_l(
            "A weighbridge ticket, lab report or photo: PDF, PNG or JPEG, up to 10 MB. "
            "Add more files on the contract page while the dispute is open."
        ),
    )
    submit = SubmitField(_l("Open the dispute"))


class EvidenceForm(FlaskForm):
    """One more evidence file for an open dispute."""

    attachment = FileField(
        _l("Evidence file (PDF, PNG or JPEG)"),
        validators=[FileRequired(_l("Choose a file."))],
    )
    submit = SubmitField(_l("Add the file"))


class DecisionForm(FlaskForm):
    outcome = SelectField(
        _l("Decision"),
        choices=[(o.value, label) for o, label in OUTCOME_LABELS.items()],
        validators=[DataRequired(REQUIRED)],
    )
    decision = TextAreaField(
        _l("Decision and reasons (shown to both parties)"),
        validators=[DataRequired(REQUIRED), Length(max=5000)],
    )
    #: In CNY on the form; named like the service's field so that its errors land here.
    forfeit_fen = DecimalField(
        _l("Deposit forfeited to the other party (CNY)"),
        places=2,
        validators=[Optional(), NumberRange(min=0)],
        description=_l(
            "Only when terminating: this much of the held deposit goes to the other party as "
            "the terms provide; the rest is returned. Leave empty to return it all."
        ),
    )
    submit = SubmitField(_l("Record the decision"))

    @property
    def forfeit_in_fen(self) -> int:
        value = self.forfeit_fen.data
        return int((value * 100).to_integral_value()) if value is not None else 0
