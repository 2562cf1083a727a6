"""HTML forms and display labels of the listings context.

Forms only parse types (numbers, dates, files); the services decide what is allowed, so the
same rules hold for the JSON API. Every numeric field is Optional here: a missing required value
is reported by the service, once, in the same words as any other field error.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    MonthField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from exchange.catalog.materials import END_USES, MATERIALS, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS, ParameterGroup
from exchange.listings.rules import Basis, DeliveryTerms, LotStatus, Recurrence, SaleMode

REQUIRED = _l("This field is required.")

FAMILY_LABELS = {
    MaterialFamily.RED_MUD: _l("Red mud"),
    MaterialFamily.RM_PRODUCT: _l("Red-mud products"),
    MaterialFamily.CO_WASTE: _l("Co-wastes for co-utilization"),
}
SALE_MODE_LABELS = {
    SaleMode.BUY_NOW: _l("Buy now at a fixed price"),
    SaleMode.AUCTION: _l("Ascending auction"),
    SaleMode.TENDER: _l("Sealed tender"),
}
SALE_MODE_SHORT = {
    SaleMode.BUY_NOW: _l("Buy now"),
    SaleMode.AUCTION: _l("Auction"),
    SaleMode.TENDER: _l("Tender"),
}
STATUS_LABELS = {
    LotStatus.DRAFT: _l("Draft"),
    LotStatus.PENDING_REVIEW: _l("Under review"),
    LotStatus.PUBLISHED: _l("Published"),
    LotStatus.CLOSED: _l("Closed"),
    LotStatus.AWARDED: _l("Awarded"),
    LotStatus.UNSOLD: _l("Unsold"),
    LotStatus.WITHDRAWN: _l("Withdrawn"),
}
BASIS_LABELS = {Basis.DRY: _l("dry tonnes"), Basis.WET: _l("wet tonnes")}
RECURRENCE_LABELS = {
    Recurrence.ONE_OFF: _l("One-off lot"),
    Recurrence.MONTHLY: _l("Recurring every month"),
}
DELIVERY_LABELS = {
    DeliveryTerms.EX_WORKS: _l("Ex works: the buyer collects at the storage site"),
    DeliveryTerms.DELIVERED: _l("Delivered: the producer delivers to the buyer's site"),
}
GROUP_LABELS = {
    ParameterGroup.OXIDE: _l("Major oxides and elements (mass %, dry)"),
    ParameterGroup.PHYSICAL: _l("Physical"),
    ParameterGroup.LEACHATE: _l("Leachate"),
    ParameterGroup.HEAVY_METAL: _l("Heavy metals (mg/kg, dry)"),
    ParameterGroup.RADIONUCLIDE: _l("Radionuclides (Bq/kg)"),
    ParameterGroup.TRACE_METAL: _l("Trace and rare metals (mg/kg, dry)"),
}
FITNESS_LABELS = {"fit": _l("fit"), "unfit": _l("not fit"), "unknown": _l("unknown")}
SORT_LABELS = {
    "newest": _l("Newest first"),
    "price_asc": _l("Price: lowest first (largest disposal fee first)"),
    "price_desc": _l("Price: highest first"),
    "quantity_desc": _l("Quantity: largest first"),
    "quantity_asc": _l("Quantity: smallest first"),
    "distance": _l("Distance from my site"),
}


def local_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["BABEL_DEFAULT_TIMEZONE"])


def to_utc(value: dt.datetime | None) -> dt.datetime | None:
    """A form's local (China Standard Time) datetime as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=local_zone()).astimezone(dt.UTC)


def to_local(value: dt.datetime | None) -> dt.datetime | None:
    """A stored UTC datetime as the naive local time a datetime-local field shows."""
    if value is None:
        return None
    return value.astimezone(local_zone()).replace(tzinfo=None, second=0, microsecond=0)


def material_choices(zh: bool) -> dict[str, list[tuple[str, str]]]:
    """Materials grouped by family (rendered as option groups)."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for material in MATERIALS.values():
        label = str(FAMILY_LABELS[material.family])
        groups.setdefault(label, []).append(
            (material.code, material.name_zh if zh else material.name_en)
        )
    return groups


def end_use_choices(zh: bool) -> list[tuple[str, str]]:
    return [(use.value, info.name_zh if zh else info.name_en) for use, info in END_USES.items()]


def _decimal(label: object, description: object = None, places: int | None = None) -> DecimalField:
    return DecimalField(
        label,
        places=places,
        validators=[Optional()],
        description=description,
        render_kw={"inputmode": "decimal"},
    )


class LotForm(FlaskForm):
    material_code = SelectField(_l("Material"), validators=[DataRequired(REQUIRED)])
    site_id = SelectField(_l("Storage site"), validators=[DataRequired(REQUIRED)])
    title_zh = StringField(_l("Title (Chinese)"), validators=[Length(max=200)])
    title_en = StringField(_l("Title (English, optional)"), validators=[Length(max=200)])
    description_zh = TextAreaField(_l("Description (Chinese)"), render_kw={"rows": 4})
    description_en = TextAreaField(_l("Description (English, optional)"), render_kw={"rows": 4})
    quantity = _decimal(_l("Quantity (t)"))
    basis = SelectField(_l("Tonnes are"), choices=[])
    moisture_pct = _decimal(
        _l("Moisture, percent of wet mass"),
        _l("Required for wet tonnes, so buyers know the dry mass."),
    )
    min_order = _decimal(_l("Minimum order (t)"))
    recurrence = SelectField(_l("Supply"), choices=[])
    monthly_quantity = _decimal(_l("Tonnes per month (recurring supply)"))
    available_from = DateField(_l("Available from"), validators=[Optional()])
    available_until = DateField(_l("Available until (optional)"), validators=[Optional()])
    delivery_terms = SelectField(_l("Delivery"), choices=[])
    sale_mode = SelectField(_l("Sale mode"), choices=[])
    price = _decimal(
        _l("Price per tonne (CNY), or start price"),
        _l(
            "A positive price is what the buyer pays you per tonne. A negative price is a "
            "disposal fee: you pay the buyer that much per tonne to take the material "
            "(e.g. -35 means you pay 35 CNY/t)."
        ),
        places=2,
    )
    reserve_price = _decimal(
        _l("Hidden reserve (CNY/t, optional)"),
        _l("Auctions and tenders only. Never shown to buyers; below it you need not sell."),
        places=2,
    )
    min_increment = _decimal(_l("Minimum bid increment (CNY/t)"), _l("Auctions only."), places=2)
    opens_at = DateTimeLocalField(
        _l("Bidding opens (optional, China time)"), validators=[Optional()]
    )
    closes_at = DateTimeLocalField(_l("Bidding closes (China time)"), validators=[Optional()])
    hard_close_at = DateTimeLocalField(
        _l("Hard close (auctions; default one hour after closing)"), validators=[Optional()]
    )
    anti_snipe_minutes = IntegerField(
        _l("Anti-sniping extension (minutes)"),
        validators=[Optional()],
        description=_l("A bid in the last N minutes moves the close N minutes later."),
    )
    submit = SubmitField(_l("Save draft"))

    def __init__(self, *args, sites=(), zh: bool = True, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        # Option groups by family (WTForms takes a dict); the unlabelled group holds the prompt.
        self.material_code.choices = {"": [("", _l("Choose…"))], **material_choices(zh)}
        self.site_id.choices = [("", _l("Choose…"))] + [
            (str(site.id), f"{site.name} · {site.city}") for site in sites
        ]
        self.basis.choices = [(b.value, label) for b, label in BASIS_LABELS.items()]
        self.recurrence.choices = [(r.value, label) for r, label in RECURRENCE_LABELS.items()]
        self.delivery_terms.choices = [(d.value, label) for d, label in DELIVERY_LABELS.items()]
        self.sale_mode.choices = [(m.value, label) for m, label in SALE_MODE_LABELS.items()]

    def service_data(self) -> dict[str, object]:
        """The submitted values in the service's terms (times in UTC)."""
        data = {name: field.data for name, field in self._fields.items()}
        for name in ("opens_at", "closes_at", "hard_close_at"):
            data[name] = to_utc(data[name])
        return data


class AssayMetaFields:
    @staticmethod
    def lab_name() -> StringField:
        return StringField(_l("Laboratory"), validators=[Length(max=200)])

    @staticmethod
    def accreditation_no() -> StringField:
        return StringField(
            _l("Accreditation number (CMA/CNAS)"), validators=[Optional(), Length(max=80)]
        )

    @staticmethod
    def sampled_on() -> DateField:
        return DateField(_l("Sampling date"), validators=[Optional()])


class AssayForm(FlaskForm):
    """Lab details and one optional field per catalog parameter, named ``v_<code>``."""

    lab_name = AssayMetaFields.lab_name()
    accreditation_no = AssayMetaFields.accreditation_no()
    sampled_on = AssayMetaFields.sampled_on()
    submit = SubmitField(_l("Save assay"))

    def values(self) -> dict[str, Decimal | None]:
        return {code: getattr(self, f"v_{code}").data for code in ASSAY_PARAMETERS}


for _code in ASSAY_PARAMETERS:
    setattr(
        AssayForm,
        f"v_{_code}",
        DecimalField(
            _code, places=None, validators=[Optional()], render_kw={"inputmode": "decimal"}
        ),
    )


class AssayCsvForm(FlaskForm):
    lab_name = AssayMetaFields.lab_name()
    accreditation_no = AssayMetaFields.accreditation_no()
    sampled_on = AssayMetaFields.sampled_on()
    csv_file = FileField(
        _l("CSV file: parameter,value,unit"), validators=[FileRequired(_l("Choose a file."))]
    )
    submit = SubmitField(_l("Upload assay"))


class CertificateForm(FlaskForm):
    kind = SelectField(
        _l("Kind"),
        choices=[("certificate", _l("Certificate or lab report")), ("photo", _l("Photo"))],
    )
    file = FileField(_l("File (PDF, PNG or JPEG)"), validators=[FileRequired(_l("Choose a file."))])
    submit = SubmitField(_l("Upload"))


class RejectForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the producer reads it)"),
        validators=[Length(max=500)],
        render_kw={"rows": 2},
    )
    submit = SubmitField(_l("Send back to the producer"))


class WithdrawForm(FlaskForm):
    reason = StringField(_l("Reason (optional)"), validators=[Length(max=500)])
    submit = SubmitField(_l("Withdraw lot"))


class GenerationForm(FlaskForm):
    site_id = SelectField(_l("Plant or site"), validators=[DataRequired(REQUIRED)])
    month = MonthField(_l("Month"), validators=[Optional()])
    tonnes = _decimal(_l("New red mud generated (t, dry)"), places=3)
    submit = SubmitField(_l("Save report"))

    def __init__(self, *args, sites=(), **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.site_id.choices = [("", _l("Choose…"))] + [
            (str(site.id), f"{site.name} · {site.city}") for site in sites
        ]
