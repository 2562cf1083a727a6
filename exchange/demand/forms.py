"""HTML forms of the demand context. They parse; the service decides what is acceptable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    FieldList,
    Form,
    FormField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput, ListWidget

from exchange.catalog.materials import END_USES, MATERIALS, MaterialFamily
from exchange.demand import labels
from exchange.demand.drafts import DemandDraft
from exchange.demand.freight import TransportMode
from exchange.demand.rules import SpecWindow, Visibility
from exchange.i18n import is_zh

#: Spec rows shown on the form; more than the catalog presets ever need.
SPEC_ROWS = 8


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _decimal(label: Any, **kwargs: Any) -> DecimalField:
    return DecimalField(label, places=None, validators=[Optional()], **kwargs)


class SpecRowForm(Form):
    parameter = SelectField(_l("Parameter"), validate_choice=False, default="")
    minimum = DecimalField(_l("Minimum"), places=None, validators=[Optional()])
    maximum = DecimalField(_l("Maximum"), places=None, validators=[Optional()])

    def is_blank(self) -> bool:
        return not self.parameter.data and self.minimum.data is None and self.maximum.data is None


class DemandForm(FlaskForm):
    title = StringField(
        _l("Title"), description=_l("What you need it for, e.g. “Iron corrective for kiln 2”.")
    )
    end_use = SelectField(_l("End use"), validate_choice=False)
    families = MultiCheckboxField(_l("Acceptable material families"), validate_choice=False)
    materials = SelectMultipleField(
        _l("Only these materials (optional)"),
        validate_choice=False,
        description=_l(
            "Leave empty to accept every material of the ticked families. If you pick materials "
            "of a family, only those are accepted from it."
        ),
    )
    specs = FieldList(FormField(SpecRowForm), min_entries=SPEC_ROWS, max_entries=40)
    apply_preset = SubmitField(_l("Fill in the typical windows for this end use"))
    quantity = _decimal(_l("Quantity (dry tonnes)"))
    recurrence = RadioField(_l("Quantity is"), validate_choice=False, default="one_off")
    min_lot_size = _decimal(
        _l("Minimum lot (dry tonnes)"),
        description=_l("Lots with less remaining are not worth a delivery to you."),
    )
    delivery_site_id = SelectField(_l("Deliver to"), validate_choice=False)
    window_start = DateField(
        _l("Delivery from"), validators=[Optional()], render_kw={"type": "date"}
    )
    window_end = DateField(
        _l("Delivery until"), validators=[Optional()], render_kw={"type": "date"}
    )
    max_price = _decimal(
        _l("Maximum price delivered (CNY per dry tonne)"),
        description=_l(
            "Price plus freight to your site. Negative means you want to be paid at least this "
            "much per tonne to take the material, e.g. -30."
        ),
    )
    modes = MultiCheckboxField(_l("Transport you accept"), validate_choice=False)
    visibility = RadioField(_l("Who sees this demand"), validate_choice=False, default="public")
    notes = TextAreaField(_l("Notes for producers (optional)"), render_kw={"rows": 3})
    submit = SubmitField(_l("Save demand"))

    def __init__(self, *args: Any, sites: list[Any] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        zh = is_zh()
        self.end_use.choices = [("", _l("Choose…"))] + [
            (e.value, info.name_zh if zh else info.name_en) for e, info in END_USES.items()
        ]
        self.families.choices = [(f.value, labels.FAMILY[f]) for f in MaterialFamily]
        self.materials.choices = [
            (m.code, f"{labels.FAMILY[m.family]} · {m.name_zh if zh else m.name_en}")
            for m in MATERIALS.values()
        ]
        self.recurrence.choices = list(labels.RECURRENCE.items())
        self.delivery_site_id.choices = [(str(s.id), f"{s.name} · {s.city}") for s in (sites or [])]
        self.modes.choices = [(m.value, labels.MODE[m]) for m in TransportMode]
        self.visibility.choices = [(v.value, labels.VISIBILITY[v]) for v in Visibility]
        parameters = labels.parameter_choices()
        for row in self.specs:
            row.parameter.choices = parameters

    # --- to and from the service's draft ---------------------------------------------------------

    def to_draft(self) -> tuple[DemandDraft, list[int]]:
        """The draft, and for each of its spec windows the form row it came from."""
        rows, origin = [], []
        for i, row in enumerate(self.specs):
            if row.form.is_blank():
                continue
            rows.append(SpecWindow(row.parameter.data or "", row.minimum.data, row.maximum.data))
            origin.append(i)
        site = self.delivery_site_id.data
        draft = DemandDraft(
            title=self.title.data or "",
            end_use=self.end_use.data or "",
            families=tuple(self.families.data or ()),
            materials=tuple(self.materials.data or ()),
            specs=tuple(rows),
            quantity=self.quantity.data,
            recurrence=self.recurrence.data or "",
            min_lot_size=self.min_lot_size.data,
            delivery_site_id=int(site) if site and str(site).isdigit() else None,
            window_start=self.window_start.data,
            window_end=self.window_end.data,
            max_price=self.max_price.data,
            modes=tuple(self.modes.data or ()),
            visibility=self.visibility.data or "",
            notes=self.notes.data or "",
        )
        return draft, origin

    def fill_specs(self, windows: tuple[SpecWindow, ...] | list[SpecWindow]) -> None:
        """Put ``windows`` into the first rows and clear the others."""
        windows = list(windows)[: len(self.specs)]
        for i, row in enumerate(self.specs):
            window = windows[i] if i < len(windows) else None
            row.parameter.data = window.parameter if window else ""
            row.minimum.data = _plain(window.minimum) if window else None
            row.maximum.data = _plain(window.maximum) if window else None
            row.minimum.raw_data = None
            row.maximum.raw_data = None

    def fill_from(self, demand: Any) -> None:
        self.title.data = demand.title
        self.end_use.data = demand.end_use
        self.families.data = demand.families
        self.materials.data = demand.material_codes
        self.fill_specs(demand.windows)
        self.quantity.data = _plain(demand.quantity)
        self.recurrence.data = demand.recurrence.value
        self.min_lot_size.data = _plain(demand.min_lot_size)
        self.delivery_site_id.data = str(demand.delivery_site_id)
        self.window_start.data = demand.window_start
        self.window_end.data = demand.window_end
        self.max_price.data = _plain(demand.max_price)
        self.modes.data = [m.value for m in demand.modes]
        self.visibility.data = demand.visibility.value
        self.notes.data = demand.notes or ""


def plain(value: Decimal | None) -> Decimal | None:
    """A stored decimal without trailing zeros (3000.000 → 3000) for editing."""
    return None if value is None else Decimal(format(Decimal(value).normalize(), "f"))


_plain = plain


class CloseForm(FlaskForm):
    outcome = RadioField(
        _l("Why close it"),
        choices=[("fulfilled", _l("We got what we needed")), ("withdrawn", _l("No longer needed"))],
        validate_choice=False,
        default="fulfilled",
    )
    submit = SubmitField(_l("Close demand"))


class AlertForm(FlaskForm):
    as_buyer = BooleanField(_l("Tell me when a new lot matches our demands"))
    as_producer = BooleanField(_l("Tell me when a new demand matches our lots"))
    by_email = BooleanField(_l("Also send me an e-mail (the notice under the bell is always left)"))
    min_headroom = DecimalField(
        _l("Only when the headroom is at least (CNY per tonne)"),
        places=None,
        validators=[Optional()],
        description=_l(
            "Headroom = the buyer's maximum delivered price − the landed cost: what a deal "
            "between the two can share. 0 announces every new match."
        ),
    )
    submit = SubmitField(_l("Save alerts"))
