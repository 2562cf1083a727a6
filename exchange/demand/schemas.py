"""marshmallow schemas of the demand API: demands (sent and read) and ranked matches.

Tonnes and prices are decimal strings (see :mod:`exchange.apiplatform.fields`). Load schemas
check shapes only; the services check the rules and answer with field errors under the same
names (a spec row's errors under ``specs`` → row index → field).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from exchange.apiplatform.fields import Currency, DecimalString, PricePerTonne, Timestamp, Tonnes
from exchange.catalog.materials import MATERIALS, EndUse, MaterialFamily
from exchange.demand.drafts import MAX_SPECS
from exchange.demand.freight import TransportMode
from exchange.demand.rules import DemandStatus, Visibility, spec_quantities
from exchange.listings.rules import Recurrence
from exchange.listings.schemas import SPEC_PATTERN
from exchange.listings.search import MAX_SPECS as CATALOGUE_MAX_SPECS
from exchange.listings.search import Sort, SpecFilter

_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


def _printable(value: str) -> None:
    if _UNPRINTABLE.search(value):
        raise ma.ValidationError(str(_l("Remove the control characters from this text.")))


def AssayBound(**kwargs: Any) -> DecimalString:  # noqa: N802
    """A spec window bound in the parameter's unit (``Numeric(16, 4)``)."""
    kwargs.setdefault(
        "metadata", {"description": "Bound in the parameter's unit, as a decimal string."}
    )
    return DecimalString(places=4, max_digits=16, signed=True, **kwargs)


def _locale() -> str:
    return str(get_locale() or "zh")


# --- load: what clients send ------------------------------------------------------------------


class SpecWindowSchema(ma.Schema):
    parameter = fields.String(
        required=True,
        validate=validate.OneOf(list(spec_quantities())),
        metadata={"description": "Assay parameter or derived quantity (`Na2O+K2O`, `I_Ra`)."},
    )
    minimum = AssayBound(allow_none=True, load_default=None)
    maximum = AssayBound(allow_none=True, load_default=None)


#: ``parameter:min:max`` as in the lots catalogue; a parameter may be a derived quantity
#: such as ``Na2O+K2O`` (send the ``+`` as ``%2B``).
DEMAND_SPEC_PATTERN = SPEC_PATTERN.replace("[A-Za-z0-9_]", "[A-Za-z0-9_+]")


class DemandFilterSchema(ma.Schema):
    """Filters of the demand list: the wanted board's (the lot catalogue's filters, for
    demands), plus your own demands' status."""

    scope = fields.String(
        validate=validate.OneOf(["own", "wanted"]),
        metadata={
            "description": "`own`: your company's demands (administrators: all; a token is "
            "needed); `wanted`: open public demands, as the wanted board lists them. Default: "
            "`own` with a token, `wanted` without."
        },
    )
    family = fields.String(validate=validate.OneOf(_values(MaterialFamily)))
    material = fields.String(
        validate=validate.OneOf(sorted(MATERIALS)),
        metadata={"description": "Demands accepting this material (or its whole family)."},
    )
    province = fields.String(
        validate=validate.Regexp(r"^[0-9]{2}$"),
        metadata={"description": "Delivery province (two-digit division code)."},
    )
    end_use = fields.String(validate=validate.OneOf(_values(EndUse)))
    mode = fields.String(
        validate=validate.OneOf(_values(TransportMode)),
        metadata={"description": "Demands accepting this transport mode."},
    )
    supply = Tonnes(
        metadata={"description": "Tonnes you can supply: demands whose minimum lot is at most it."}
    )
    quantity_min = Tonnes(
        metadata={"description": "Tonnes wanted at least (per month if monthly)."}
    )
    quantity_max = Tonnes(metadata={"description": "Tonnes wanted at most (per month if monthly)."})
    price_min = PricePerTonne(
        metadata={"description": "Maximum delivered price at least (signed CNY per tonne)."}
    )
    price_max = PricePerTonne(
        metadata={
            "description": "Maximum delivered price at most (signed; `0` or less finds "
            "buyers who want to be paid to take the material)."
        }
    )
    spec = fields.List(
        fields.String(validate=validate.Regexp(DEMAND_SPEC_PATTERN)),
        validate=validate.Length(max=CATALOGUE_MAX_SPECS),
        metadata={
            "description": "Your material's assay ranges as `parameter:min:max` (either bound may "
            "be empty), e.g. `Fe2O3:45:45`: demands whose window on the parameter overlaps the "
            "range; a demand without a window on it accepts any value."
        },
    )
    q = fields.String(
        validate=[validate.Length(max=200), _printable],
        metadata={"description": "Words of the title or notes, or a demand number."},
    )
    sort = fields.String(
        validate=validate.OneOf(_values(Sort)),
        load_default=Sort.NEWEST.value,
        metadata={
            "description": "`price_*` sorts by the signed maximum delivered price, `quantity_*` "
            "by the tonnes wanted, `distance` by the distance from `from_site` to the delivery "
            "site."
        },
    )
    from_site = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "One of your company's sites: the `distance` sort's origin."},
    )
    status = fields.String(
        validate=validate.OneOf(_values(DemandStatus)),
        metadata={"description": "Only with scope `own`."},
    )

    @ma.post_load
    def _specs(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        specs = []
        for index, raw in enumerate(data.pop("spec", None) or []):
            code, low, high = raw.split(":")
            if code not in spec_quantities():
                raise ma.ValidationError(
                    {"spec": {index: [str(_l("Unknown parameter %(code)s.", code=code))]}}
                )
            if not low and not high:
                raise ma.ValidationError(
                    {"spec": {index: [str(_l("Give a minimum, a maximum or both."))]}}
                )
            minimum = Decimal(low) if low else None
            maximum = Decimal(high) if high else None
            if minimum is not None and maximum is not None and maximum < minimum:
                raise ma.ValidationError(
                    {"spec": {index: [str(_l("The maximum is below the minimum."))]}}
                )
            specs.append(SpecFilter(code, minimum, maximum))
        data["specs"] = tuple(specs)
        data["sort"] = Sort(data.get("sort") or Sort.NEWEST.value)
        return data


class DemandWriteSchema(ma.Schema):
    """A demand's terms; every field is required to post, any subset may be sent to edit."""

    title = fields.String(required=True, validate=[validate.Length(min=1, max=200), _printable])
    end_use = fields.String(required=True, validate=validate.OneOf(_values(EndUse)))
    families = fields.List(
        fields.String(validate=validate.OneOf(_values(MaterialFamily))),
        required=True,
        validate=validate.Length(min=1, max=len(MaterialFamily)),
    )
    materials = fields.List(
        fields.String(validate=validate.OneOf(sorted(MATERIALS))),
        load_default=list,
        validate=validate.Length(max=len(MATERIALS)),
        metadata={"description": "Only these materials of the families; empty: any of them."},
    )
    specs = fields.List(
        fields.Nested(SpecWindowSchema),
        load_default=list,
        validate=validate.Length(max=MAX_SPECS),
    )
    quantity = Tonnes(
        required=True,
        metadata={"description": "Dry tonnes wanted: the whole need, or per month if monthly."},
    )
    recurrence = fields.String(required=True, validate=validate.OneOf(_values(Recurrence)))
    min_lot_size = Tonnes(required=True, metadata={"description": "Smallest lot, dry tonnes."})
    delivery_site_id = fields.Integer(
        required=True, strict=True, validate=validate.Range(min=1, max=2**31 - 1)
    )
    window_start = fields.Date(required=True)
    window_end = fields.Date(required=True)
    max_price = PricePerTonne(
        required=True,
        metadata={
            "description": "Highest signed price per dry tonne DELIVERED (price + freight), "
            "CNY; negative: you want to be paid at least this much to take the material."
        },
    )
    modes = fields.List(
        fields.String(validate=validate.OneOf(_values(TransportMode))),
        required=True,
        validate=validate.Length(min=1, max=len(TransportMode)),
    )
    visibility = fields.String(required=True, validate=validate.OneOf(_values(Visibility)))
    notes = fields.String(
        load_default="", validate=[validate.Length(max=2000), _printable], allow_none=False
    )


class CloseSchema(ma.Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(["fulfilled", "withdrawn"]),
        metadata={
            "description": "`fulfilled`: you got what you needed; `withdrawn`: no longer needed."
        },
    )


# --- dump: what clients read ------------------------------------------------------------------


class CompanyRefSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.Method("_name", required=True)

    def _name(self, company: Any) -> str:
        return str(company.display_name(_locale()))


class DemandSchema(ma.Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    title = fields.String(required=True)
    buyer = fields.Nested(CompanyRefSchema, required=True)
    status = fields.Function(lambda d: d.status.value, required=True)
    visibility = fields.Function(lambda d: d.visibility.value, required=True)
    end_use = fields.String(required=True)
    families = fields.List(fields.String(), required=True)
    materials = fields.List(fields.String(), attribute="material_codes", required=True)
    specs = fields.Method("_specs", required=True)
    quantity = Tonnes(required=True)
    recurrence = fields.Function(lambda d: d.recurrence.value, required=True)
    min_lot_size = Tonnes(required=True)
    delivery_site_id = fields.Integer(required=True)
    province = fields.String(required=True)
    window_start = fields.Date(required=True)
    window_end = fields.Date(required=True)
    max_price = PricePerTonne(required=True)
    currency = Currency(required=True)
    modes = fields.Function(lambda d: [m.value for m in d.modes], required=True)
    notes = fields.String(required=True, allow_none=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True, allow_none=True)
    closed_at = Timestamp(required=True, allow_none=True)
    matches_pending = fields.Boolean(
        required=True,
        metadata={
            "description": "True while the matches of an open demand are being computed after "
            "its last change (a background job); read its matches once it is false."
        },
    )

    def _specs(self, demand: Any) -> list[dict[str, Any]]:
        return [
            {
                "parameter": s.parameter,
                "minimum": None if s.min_value is None else f"{Decimal(s.min_value):.4f}",
                "maximum": None if s.max_value is None else f"{Decimal(s.max_value):.4f}",
            }
            for s in demand.specs
        ]


class _MatchFigures(ma.Schema):
    mode = fields.String(
        required=True, metadata={"description": "Cheapest accepted transport mode."}
    )
    distance_km = DecimalString(places=1, max_digits=9, required=True)
    freight = PricePerTonne(
        required=True, metadata={"description": "CNY per dry tonne, handling included."}
    )
    landed_cost = PricePerTonne(
        required=True, metadata={"description": "The lot's price per dry tonne + freight."}
    )
    net_price = PricePerTonne(
        required=True,
        metadata={"description": "The demand's maximum delivered price − freight."},
    )
    co2_kg_per_t = DecimalString(
        places=2,
        max_digits=10,
        required=True,
        metadata={"description": "Transport CO2, kg per dry tonne."},
    )
    margin_score = DecimalString(
        places=4,
        max_digits=14,
        signed=True,
        required=True,
        allow_none=True,
        metadata={"description": "Smallest relative margin inside the spec windows."},
    )
    coverage = DecimalString(
        places=4,
        max_digits=7,
        required=True,
        metadata={"description": "Share of the demand the lot can supply (0–1)."},
    )
    explanation = fields.Dict(
        required=True,
        metadata={
            "description": "Every constraint with its value, limit and margin; the route "
            "(distance, rate, handling, freight, CO2) and the cheaper-to-dearer alternatives."
        },
    )
    first_matched_at = Timestamp(required=True)
    computed_at = Timestamp(required=True)


class LotRefSchema(ma.Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    title = fields.Method("_title", required=True)
    producer_id = fields.Integer(required=True)

    def _title(self, lot: Any) -> str:
        return str(lot.title(_locale()))


class DemandRefSchema(ma.Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True)
    title = fields.String(required=True)
    buyer = fields.Nested(CompanyRefSchema, required=True)
    end_use = fields.String(required=True)
    max_price = PricePerTonne(required=True)


class DemandMatchSchema(_MatchFigures):
    """A lot matching one of your demands, in the buyer's order (landed cost first)."""

    lot = fields.Nested(LotRefSchema, required=True)


class LotMatchSchema(_MatchFigures):
    """A demand matching your lot, in the producer's order (net price after freight first)."""

    demand = fields.Nested(DemandRefSchema, required=True)


class DemandPatchSchema(DemandWriteSchema):
    """Some of a demand's terms (load it with ``partial=True``): the others stay as they are."""
