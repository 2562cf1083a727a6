"""marshmallow schemas of the lots API: what a client sends (load) and what it reads (dump).

Tonnes and prices are decimal strings, times ISO 8601 with a zone (see
:mod:`exchange.apiplatform.fields`). Load schemas check shapes only; the services check the
rules and answer with field errors under the same names.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate
from werkzeug.datastructures import FileStorage

from exchange.accounts.regions import PROVINCES
from exchange.apiplatform.fields import (
    Currency,
    DecimalString,
    PricePerTonne,
    Timestamp,
    Tonnes,
)
from exchange.catalog.materials import MATERIALS, EndUse, MaterialFamily
from exchange.catalog.parameters import ASSAY_PARAMETERS
from exchange.listings.rules import Basis, DeliveryTerms, LotStatus, Recurrence, SaleMode
from exchange.listings.search import MAX_SPECS, Sort, SpecFilter
from exchange.listings.uploads import KINDS

ID_RANGE = validate.Range(min=1, max=2**31 - 1)
#: Control characters (tab and line breaks excepted) and lone surrogates: PostgreSQL refuses
#: NUL in text and no title needs the others.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_NUMBER = r"-?[0-9]{1,12}(\.[0-9]{1,4})?"
SPEC_PATTERN = rf"^[A-Za-z0-9_]{{1,12}}:({_NUMBER})?:({_NUMBER})?$"
#: Times a lot's terms may name (keeps every conversion to UTC in range).
EARLIEST_YEAR, LATEST_YEAR = 2000, 2100


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


def _printable(value: str) -> None:
    if _UNPRINTABLE.search(value):
        raise ma.ValidationError(str(_l("Remove the control characters from this text.")))


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError(str(_l("This field is required.")))


def _in_years(value: dt.date) -> None:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise ma.ValidationError(
            str(_l("Give a date from %(a)d to %(b)d.", a=EARLIEST_YEAR, b=LATEST_YEAR))
        )


def Text(max_length: int, *, blank: bool = False, **kwargs: Any) -> fields.String:  # noqa: N802
    """Printable text of at most ``max_length`` characters; not blank unless ``blank``."""
    checks: list[Any] = [validate.Length(min=0 if blank else 1, max=max_length), _printable]
    if not blank:
        checks.append(_not_blank)
    return fields.String(validate=checks, **kwargs)


def Choice(values: Any, **kwargs: Any) -> fields.String:  # noqa: N802
    return fields.String(validate=validate.OneOf(list(values)), **kwargs)


def _remaining(**kwargs: Any) -> DecimalString:
    kwargs.setdefault("metadata", {"description": "Tonnes as a decimal string."})
    return DecimalString(places=3, max_digits=14, minimum=Decimal(0), **kwargs)


# --- load: the catalogue's filters -------------------------------------------------------------


class LotFilterSchema(ma.Schema):
    """The public catalogue's filters, sort and origin (query parameters)."""

    family = Choice(_values(MaterialFamily))
    material = Choice(sorted(MATERIALS))
    province = Choice(sorted(PROVINCES), metadata={"description": "GB/T 2260 province code."})
    end_use = Choice(_values(EndUse), metadata={"description": "Only lots graded fit for it."})
    sale_mode = Choice(_values(SaleMode))
    quantity_min = _remaining(metadata={"description": "Remaining tonnes at least."})
    quantity_max = _remaining(metadata={"description": "Remaining tonnes at most."})
    price_min = PricePerTonne()
    price_max = PricePerTonne()
    spec = fields.List(
        fields.String(validate=validate.Regexp(SPEC_PATTERN)),
        validate=validate.Length(max=MAX_SPECS),
        metadata={
            "description": "Assay ranges as `parameter:min:max` (either bound may be empty), "
            "e.g. `Fe2O3:40:` and `Na2O::1`; a lot without the value never matches. For "
            "verified companies and administrators only (401 without a token, 403 else)."
        },
    )
    q = fields.String(
        validate=[validate.Length(max=200), _printable],
        metadata={"description": "Words of the title or description (either language)."},
    )
    sort = Choice(_values(Sort), load_default=Sort.NEWEST.value)
    from_site = fields.Integer(  # a query string value: "12" must parse
        validate=ID_RANGE,
        metadata={"description": "One of your company's sites: the `distance` sort's origin."},
    )

    @ma.post_load
    def _specs(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        specs = []
        for index, raw in enumerate(data.pop("spec", None) or []):
            code, low, high = raw.split(":")
            if code not in ASSAY_PARAMETERS:
                raise ma.ValidationError(
                    {"spec": {index: [str(_l("Unknown parameter %(code)s.", code=code))]}}
                )
            if not low and not high:
                raise ma.ValidationError(
                    {"spec": {index: [str(_l("Give a minimum, a maximum or both."))]}}
                )
            specs.append(
                SpecFilter(code, Decimal(low) if low else None, Decimal(high) if high else None)
            )
        data["specs"] = tuple(specs)
        return data


class MyLotFilterSchema(ma.Schema):
    status = Choice(_values(LotStatus))


# --- load: a lot's terms -----------------------------------------------------------------------


def _time(**kwargs: Any) -> Timestamp:
    return Timestamp(allow_none=True, validate=_in_years, **kwargs)


def _terms_fields(required: bool) -> dict[str, fields.Field]:
    """The fields of a lot's terms; all required for a new lot (as far as the mode needs)."""
    need: dict[str, Any] = {"required": True} if required else {}
    return {
        "material_code": Choice(sorted(MATERIALS), **need),
        "site_id": fields.Integer(
            strict=True,
            validate=ID_RANGE,
            metadata={"description": "One of your company's sites: where the material is."},
            **need,
        ),
        "title_zh": Text(200, **need),
        "title_en": Text(200, blank=True, allow_none=True),
        "description_zh": Text(5000, blank=True, allow_none=True),
        "description_en": Text(5000, blank=True, allow_none=True),
        "quantity": Tonnes(**need),
        "basis": Choice(_values(Basis), **need),
        "moisture_pct": DecimalString(
            places=2,
            max_digits=5,
            minimum=Decimal(0),
            maximum=Decimal("99.99"),
            allow_none=True,
            metadata={"description": "Moisture per cent; required for wet tonnes."},
        ),
        "min_order": Tonnes(**need),
        "recurrence": Choice(_values(Recurrence), **need),
        "monthly_quantity": Tonnes(allow_none=True),
        "available_from": fields.Date(validate=_in_years, **need),
        "available_until": fields.Date(validate=_in_years, allow_none=True),
        "sale_mode": Choice(_values(SaleMode), **need),
        "price": PricePerTonne(**need),
        "reserve_price": PricePerTonne(allow_none=True),
        "min_increment": PricePerTonne(allow_none=True),
        "opens_at": _time(),
        "closes_at": _time(),
        "hard_close_at": _time(),
        "anti_snipe_minutes": fields.Integer(
            strict=True, allow_none=True, validate=validate.Range(min=0, max=120)
        ),
        "delivery_terms": Choice(_values(DeliveryTerms), **need),
    }


#: A new lot's terms (buy-now needs no times; auctions and tenders need ``closes_at``).
LotCreateSchema = ma.Schema.from_dict(_terms_fields(True), name="LotCreateSchema")
#: Terms to change; those left out keep their values.
LotUpdateSchema = ma.Schema.from_dict(_terms_fields(False), name="LotUpdateSchema")


class WithdrawSchema(ma.Schema):
    reason = Text(500, blank=True, load_default="")


class RejectSchema(ma.Schema):
    """Why a lot under review goes back to its producer as a draft."""

    reason = Text(
        500, required=True, metadata={"description": "Shown to the producer, who may fix it."}
    )


class QuantitySchema(ma.Schema):
    quantity = Tonnes(
        required=True,
        metadata={
            "description": "The new, lower quantity in tonnes; on a published lot the remaining "
            "tonnage shrinks by as much, never below what is sold."
        },
    )


# --- load: the assay ---------------------------------------------------------------------------


def _assay_field(code: str) -> DecimalString:
    parameter = ASSAY_PARAMETERS[code]
    unit = parameter.unit.value or "index"
    return DecimalString(
        places=4,
        max_digits=16,
        signed=parameter.minimum < 0,
        minimum=parameter.minimum,
        maximum=parameter.maximum,
        metadata={"description": f"{parameter.name_en} ({unit})."},
    )


#: One optional decimal string per assay parameter; unknown parameters are refused.
AssayValuesSchema = ma.Schema.from_dict(
    {code: _assay_field(code) for code in ASSAY_PARAMETERS}, name="AssayValuesSchema"
)


class AssayMetaSchema(ma.Schema):
    lab_name = Text(200, required=True)
    accreditation_no = Text(
        80, blank=True, allow_none=True, metadata={"description": "CMA or CNAS number."}
    )
    sampled_on = fields.Date(required=True, validate=_in_years)


class AssayPutSchema(AssayMetaSchema):
    values = fields.Nested(
        AssayValuesSchema,
        required=True,
        metadata={"description": "Measured values by parameter code; the rest are unknown."},
    )


class UploadedFile(fields.Raw):
    """A file part of a ``multipart/form-data`` body (a text part of that name is refused)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError(str(_l("Send a file in this part.")))
        return value


class AssayUploadSchema(AssayMetaSchema):
    file = UploadedFile(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "CSV rows `parameter,value,unit` (UTF-8 or GB 18030).",
        },
    )


class CertificateUploadSchema(ma.Schema):
    kind = Choice(KINDS, load_default="certificate")
    file = UploadedFile(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "A PDF, PNG or JPEG file (checked by content), up to the size limit.",
        },
    )


# --- dump: what clients read -------------------------------------------------------------------


class LotSummarySchema(ma.Schema):
    """A lot as the catalogue lists it."""

    id = fields.Integer()
    number = fields.String()
    title_zh = fields.String()
    title_en = fields.String(allow_none=True)
    material_code = fields.String()
    material_family = fields.String()
    province = fields.String()
    city = fields.String()
    quantity = _remaining()
    remaining = _remaining()
    basis = fields.String()
    price = PricePerTonne()
    currency = Currency()
    sale_mode = fields.String()
    closes_at = Timestamp(allow_none=True)
    published_at = Timestamp(allow_none=True)
    fit_uses = fields.List(
        fields.String(), metadata={"description": "End uses the lot's assay is graded fit for."}
    )
    distance_km = fields.Float(
        allow_none=True, metadata={"description": "From your `from_site` (distance sort only)."}
    )


class LotSchema(ma.Schema):
    """A lot's terms and status; the reserve price only for its producer and administrators."""

    id = fields.Integer()
    number = fields.String()
    status = fields.String()
    status_note = fields.String(
        allow_none=True, metadata={"description": "The moderator's reason (producer only)."}
    )
    producer_id = fields.Integer()
    site_id = fields.Integer()
    province = fields.String()
    city = fields.String()
    material_code = fields.String()
    material_family = fields.String()
    title_zh = fields.String()
    title_en = fields.String(allow_none=True)
    description_zh = fields.String(allow_none=True)
    description_en = fields.String(allow_none=True)
    quantity = _remaining()
    remaining = _remaining()
    basis = fields.String()
    moisture_pct = DecimalString(places=2, max_digits=5, allow_none=True)
    min_order = _remaining()
    recurrence = fields.String()
    monthly_quantity = _remaining(allow_none=True)
    available_from = fields.Date()
    available_until = fields.Date(allow_none=True)
    sale_mode = fields.String()
    price = PricePerTonne()
    reserve_price = PricePerTonne(allow_none=True)
    min_increment = PricePerTonne(allow_none=True)
    currency = Currency()
    opens_at = Timestamp(allow_none=True)
    closes_at = Timestamp(allow_none=True)
    hard_close_at = Timestamp(allow_none=True)
    anti_snipe_minutes = fields.Integer()
    delivery_terms = fields.String()
    submitted_at = Timestamp(allow_none=True)
    published_at = Timestamp(allow_none=True)
    closed_at = Timestamp(allow_none=True)
    created_at = Timestamp()
    updated_at = Timestamp(allow_none=True)
    fit_uses = fields.List(fields.String())
    allowed_actions = fields.List(
        fields.String(),
        metadata={"description": "What the caller may do now (`submitted`, `withdrawn`)."},
    )


class ReviewLotSchema(LotSchema):
    """A lot under review as the moderators see it."""

    problems = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={
            "description": "What stops it from being published now, by field (empty when "
            "nothing does)."
        },
    )


class AssayValueSchema(ma.Schema):
    parameter = fields.String()
    value = DecimalString(places=4, max_digits=16, signed=True)
    unit = fields.String()


class EndUseGradeSchema(ma.Schema):
    end_use = fields.String()
    fitness = fields.String(metadata={"description": "fit, unfit or unknown."})
    gated = fields.Boolean(metadata={"description": "A compliance gate decides this use."})


class AssaySchema(ma.Schema):
    lot_id = fields.Integer()
    lab_name = fields.String()
    accreditation_no = fields.String(allow_none=True)
    sampled_on = fields.Date()
    created_at = Timestamp()
    values = fields.List(fields.Nested(AssayValueSchema))
    end_uses = fields.List(fields.Nested(EndUseGradeSchema))


class CertificateSchema(ma.Schema):
    id = fields.Integer()
    lot_id = fields.Integer()
    kind = fields.String()
    filename = fields.String()
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()
    created_at = Timestamp()


class GenerationReportSchema(ma.Schema):
    """The dry tonnes of new red mud one of your sites generated in a month."""

    site_id = fields.Integer(
        required=True, validate=ID_RANGE, metadata={"description": "One of your company's sites."}
    )
    month = fields.Date(
        required=True,
        validate=_in_years,
        metadata={"description": "Any day of the month (stored as its first day)."},
    )
    tonnes = Tonnes(required=True, metadata={"description": "Dry tonnes generated that month."})


class GenerationSchema(ma.Schema):
    """A plant's monthly generation report: the denominator of the utilization statistics."""

    id = fields.Integer(required=True)
    site_id = fields.Integer(required=True)
    month = fields.Date(required=True)
    tonnes = Tonnes(required=True, metadata={"description": "Dry tonnes."})
    updated_at = Timestamp(required=True, allow_none=True)
