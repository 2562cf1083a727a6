"""marshmallow schemas of the contracts API: what a client sends (load) and what it reads (dump).

Tonnes and prices are decimal strings, money integer fen, times ISO 8601 with a zone (see
:mod:`exchange.apiplatform.fields`). Load schemas check shapes only; the services check the
rules (and answer with field errors under the same names).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from flask_smorest.fields import Upload
from marshmallow import fields, validate

from exchange.apiplatform.fields import (
    Currency,
    DecimalString,
    MinorUnits,
    PricePerTonne,
    Timestamp,
    Tonnes,
)
from exchange.catalog.materials import EndUse
from exchange.catalog.parameters import ASSAY_PARAMETERS
from exchange.contracts.actions import Action
from exchange.contracts.models import DeliveryStatus, DisputeOutcome, Side
from exchange.contracts.rules import ContractStatus, QualityAction

ID_RANGE = validate.Range(min=1, max=2**31 - 1)
#: Control characters (tab and line breaks excepted) and lone surrogates: no reading has them,
#: and PostgreSQL refuses NUL in text.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


def _printable(value: str) -> None:
    if _UNPRINTABLE.search(value):
        raise ma.ValidationError(str(_l("Remove the control characters from this text.")))


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError(str(_l("This field is required.")))


def Text(max_length: int, *, blank: bool = False, **kwargs: Any) -> fields.String:  # noqa: N802
    """Printable text of at most ``max_length`` characters; not blank unless ``blank``."""
    checks: list[Any] = [validate.Length(min=0 if blank else 1, max=max_length), _printable]
    if not blank:
        checks.append(_not_blank)
    return fields.String(validate=checks, **kwargs)


def TonnesOrZero(**kwargs: Any) -> DecimalString:  # noqa: N802
    """Tonnes as a string with up to 3 decimals, 0 allowed (a tare, tonnes rejected)."""
    kwargs.setdefault("metadata", {"description": "Tonnes as a decimal string."})
    return DecimalString(places=3, max_digits=14, minimum=Decimal(0), **kwargs)


def Percent(**kwargs: Any) -> DecimalString:  # noqa: N802
    kwargs.setdefault("metadata", {"description": "Per cent as a decimal string."})
    return DecimalString(places=2, max_digits=5, **kwargs)


# --- load: what clients send ------------------------------------------------------------------


class ContractFilterSchema(ma.Schema):
    status = fields.String(validate=validate.OneOf(_values(ContractStatus)))
    side = fields.String(
        validate=validate.OneOf(["selling", "buying"]),
        metadata={"description": "Only contracts where your company sells or buys."},
    )
    q = fields.String(
        validate=[validate.Length(max=100), _printable],
        metadata={"description": "Part of the contract number or of a party's legal name."},
    )


class SignSchema(ma.Schema):
    """Signing for your company: your password again, and the terms hash you read."""

    password = fields.String(
        required=True,
        load_only=True,
        validate=[validate.Length(min=1, max=1024), _printable],
        metadata={"description": "Your password, re-entered to sign for your company."},
    )
    terms_hash = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9a-f]{64}$"),
        metadata={
            "description": "The `terms_hash` of the contract as you read it. If the terms "
            "changed since (an amendment), nothing is signed and the answer is 409."
        },
    )


class AmendmentSchema(ma.Schema):
    """Terms the parties may change before both have signed; any change voids the signatures."""

    tolerance_pct = Percent(minimum=Decimal(0), maximum=Decimal(20))
    delivery_site = Text(400)
    window_start = fields.Date()
    window_end = fields.Date()
    schedule = Text(1000, blank=True)
    deposit_pct = Percent(minimum=Decimal(0), maximum=Decimal(100))
    payment_due_days = fields.Integer(strict=True, validate=validate.Range(min=0, max=365))

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError(str(_l("Change at least one term.")), "_schema")


class CancellationSchema(ma.Schema):
    reason = Text(500, required=True, metadata={"description": "Why the contract should end."})


class DispatchSchema(ma.Schema):
    """A load leaving the seller: weighbridge gross and tare (net is computed)."""

    dispatched_on = fields.Date(required=True, metadata={"description": "Not in the future."})
    origin_site = Text(
        200,
        blank=True,
        load_default="",
        metadata={"description": "Where it was loaded; empty for the lot's storage site."},
    )
    carrier = Text(200, required=True)
    vehicle_plate = Text(40, required=True, metadata={"description": "Plate or wagon number."})
    manifest_no = Text(
        60,
        required=True,
        metadata={"description": "Transfer manifest (转移联单) number; unique per contract."},
    )
    gross_t = Tonnes(required=True)
    tare_t = TonnesOrZero(required=True)


def _assay_field(code: str) -> DecimalString:
    parameter = ASSAY_PARAMETERS[code]
    unit = parameter.unit.value or "index"
    return DecimalString(
        places=4,
        max_digits=16,
        minimum=parameter.minimum,
        maximum=parameter.maximum,
        metadata={"description": f"{parameter.name_en} ({unit})."},
    )


#: One optional decimal string per assay parameter; unknown parameters are refused.
ReassaySchema = ma.Schema.from_dict(
    {code: _assay_field(code) for code in ASSAY_PARAMETERS}, name="ReassaySchema"
)


class ReceiptSchema(ma.Schema):
    """A load arriving at the buyer: receiving weighbridge, optional re-assay, inspection."""

    received_on = fields.Date(
        required=True, metadata={"description": "Not before dispatch, not in the future."}
    )
    received_gross_t = Tonnes(required=True)
    received_tare_t = TonnesOrZero(required=True)
    end_use = fields.String(
        load_default=None,
        validate=validate.OneOf(_values(EndUse)),
        metadata={"description": "What the material goes to; omitted: the contract's end use."},
    )
    assay = fields.Nested(
        ReassaySchema,
        load_default=dict,
        metadata={
            "description": "The receiving re-assay, by parameter; the contract's quality "
            "clause adjusts the price or rejects the load from it."
        },
    )
    rejected_t = TonnesOrZero(
        load_default=None, metadata={"description": "Tonnes rejected at inspection."}
    )
    rejection_reason = Text(500, blank=True, load_default="")


class DisputeCreateSchema(ma.Schema):
    reason = Text(500, required=True)
    evidence = Text(
        5000,
        blank=True,
        load_default="",
        metadata={"description": "Weighbridge tickets, lab report numbers and the like."},
    )
    delivery_id = fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=ID_RANGE,
        metadata={"description": "The delivery disputed; omitted or null: the whole contract."},
    )


class DecisionSchema(ma.Schema):
    outcome = fields.String(
        required=True,
        validate=validate.OneOf(_values(DisputeOutcome)),
        metadata={
            "description": "`resumed`: back to where it was disputed from; "
            "`terminated`: the contract ends."
        },
    )
    decision = Text(5000, required=True, metadata={"description": "Shown to both parties."})
    forfeit_fen = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=10**15),
        metadata={
            "description": "Only with `terminated`: fen of the held deposit that go to the "
            "other party as the terms provide; the rest is returned."
        },
    )


# --- dump: what clients read ------------------------------------------------------------------


class PartySchema(ma.Schema):
    id = fields.Integer(required=True)
    legal_name_zh = fields.String(required=True)
    legal_name_en = fields.String(required=True, allow_none=True)


class SignatureSchema(ma.Schema):
    id = fields.Integer(required=True)
    side = fields.String(required=True, validate=validate.OneOf(_values(Side)))
    company_id = fields.Integer(required=True)
    user_id = fields.Integer(required=True)
    signer_name = fields.String(required=True, attribute="user.display_name")
    signed_at = Timestamp(required=True)
    ip = fields.String(required=True, allow_none=True)
    terms_hash = fields.String(required=True, metadata={"description": "The hash signed."})
    terms_version = fields.Integer(required=True)
    void = fields.Boolean(
        required=True, metadata={"description": "True once the terms changed after signing."}
    )
    voided_at = Timestamp(required=True, allow_none=True)


class QualityLineSchema(ma.Schema):
    """One parameter of a re-assay against the quality clause (decimals as strings)."""

    parameter = fields.String(required=True)
    value = fields.String(required=True, allow_none=True)
    action = fields.String(required=True, validate=validate.OneOf(_values(QualityAction)))
    deviation = fields.String(required=True)
    adjustment = fields.String(
        required=True, metadata={"description": "Signed change to the price per tonne."}
    )
    reason = fields.String(required=True)


class DeliverySchema(ma.Schema):
    """A load: the seller's dispatch and, once recorded, the buyer's receipt."""

    id = fields.Integer(required=True)
    contract_id = fields.Integer(required=True)
    seq = fields.Integer(required=True, metadata={"description": "1, 2, 3… within the contract."})
    status = fields.String(required=True, validate=validate.OneOf(_values(DeliveryStatus)))
    dispatched_on = fields.Date(required=True)
    origin_site = fields.String(required=True)
    carrier = fields.String(required=True)
    vehicle_plate = fields.String(required=True)
    manifest_no = fields.String(required=True)
    gross_t = Tonnes(required=True)
    tare_t = TonnesOrZero(required=True)
    net_t = Tonnes(required=True)
    counted_t = Tonnes(
        required=True, metadata={"description": "Tonnes on the contract's basis (wet or dry)."}
    )
    dispatched_at = Timestamp(required=True)
    received_on = fields.Date(required=True, allow_none=True)
    received_gross_t = Tonnes(required=True, allow_none=True)
    received_tare_t = TonnesOrZero(required=True, allow_none=True)
    received_net_t = Tonnes(required=True, allow_none=True)
    weight_discrepancy = fields.Boolean(
        required=True,
        metadata={"description": "Received and dispatched net differ beyond the threshold."},
    )
    receiving_assay = fields.Dict(
        required=True, allow_none=True, keys=fields.String(), values=fields.String()
    )
    accepted_t = TonnesOrZero(required=True, allow_none=True)
    rejected_t = TonnesOrZero(required=True, allow_none=True)
    rejection_reason = fields.String(required=True, allow_none=True)
    quality_adjustment = PricePerTonne(
        required=True,
        allow_none=True,
        metadata={"description": "Signed change to the price per tonne (0 or negative)."},
    )
    quality_lines = fields.List(fields.Nested(QualityLineSchema), required=True, allow_none=True)
    value_fen = MinorUnits(
        required=True,
        allow_none=True,
        metadata={"description": "Accepted tonnes × adjusted price, in fen, signed."},
    )
    end_use = fields.String(required=True, allow_none=True)
    received_at = Timestamp(required=True, allow_none=True)


class DisputeAttachmentSchema(ma.Schema):
    """An evidence file in a dispute (download it from its ``/attachments/{id}`` URL)."""

    id = fields.Integer(required=True)
    filename = fields.String(required=True)
    content_type = fields.String(
        required=True, validate=validate.OneOf(["application/pdf", "image/png", "image/jpeg"])
    )
    size_bytes = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    uploaded_by_company_id = fields.Integer(required=True)
    uploaded_at = Timestamp(required=True)


class EvidenceUploadSchema(ma.Schema):
    """One evidence file, sent as ``multipart/form-data``."""

    attachment = Upload(
        required=True,
        metadata={"description": "PDF, PNG or JPEG, checked by content; 10 MB at most."},
    )


class DisputeSchema(ma.Schema):
    id = fields.Integer(required=True)
    contract_id = fields.Integer(required=True)
    delivery_id = fields.Integer(required=True, allow_none=True)
    opened_by_company_id = fields.Integer(required=True)
    opened_at = Timestamp(required=True)
    reason = fields.String(required=True)
    evidence = fields.String(required=True)
    disputed_from = fields.String(required=True, validate=validate.OneOf(_values(ContractStatus)))
    open = fields.Boolean(required=True, attribute="is_open")
    outcome = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(_values(DisputeOutcome))
    )
    decision = fields.String(required=True, allow_none=True)
    decided_at = Timestamp(required=True, allow_none=True)
    attachments = fields.List(fields.Nested(DisputeAttachmentSchema), required=True)


class ContractSummarySchema(ma.Schema):
    """A contract as listed."""

    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"example": "RMX-2027-000123"})
    status = fields.String(required=True, validate=validate.OneOf(_values(ContractStatus)))
    seller = fields.Nested(PartySchema, required=True)
    buyer = fields.Nested(PartySchema, required=True)
    lot_id = fields.Integer(required=True)
    material_code = fields.String(required=True)
    quantity = Tonnes(required=True)
    basis = fields.String(required=True, validate=validate.OneOf(["wet", "dry"]))
    price = PricePerTonne(required=True)
    currency = Currency(required=True)
    total_fen = MinorUnits(
        required=True,
        metadata={"description": "Quantity × price in fen, signed (negative: the producer pays)."},
    )
    sign_by = Timestamp(required=True)
    terms_version = fields.Integer(required=True)
    terms_hash = fields.String(required=True, metadata={"description": "SHA-256 of the terms."})
    created_at = Timestamp(required=True)
    activated_at = Timestamp(required=True, allow_none=True)
    closed_at = Timestamp(required=True, allow_none=True)


class QualityTermSchema(ma.Schema):
    parameter = fields.String(required=True)
    minimum = fields.String(required=True, allow_none=True)
    maximum = fields.String(required=True, allow_none=True)
    adjustment_per_unit = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Price deduction per tonne per unit outside; null: reject."},
    )
    reject_beyond = fields.String(required=True, allow_none=True)
    unit = fields.String(required=True)


class StandardSchema(ma.Schema):
    code = fields.String(required=True)
    title_en = fields.String(required=True)
    title_zh = fields.String(required=True)


class ContractSchema(ContractSummarySchema):
    """A contract with its terms, signatures, deliveries, disputes and what you may do now."""

    tolerance_pct = Percent(required=True)
    moisture_pct = Percent(required=True, allow_none=True)
    delivery_mode = fields.String(required=True, validate=validate.OneOf(["ex_works", "delivered"]))
    delivery_site = fields.String(required=True)
    window_start = fields.Date(required=True)
    window_end = fields.Date(required=True)
    schedule = fields.String(required=True)
    origin_province = fields.String(required=True)
    destination_province = fields.String(required=True)
    inter_provincial = fields.Boolean(
        required=True,
        metadata={"description": "Crosses a province border: utilization needs a filing (备案)."},
    )
    quality_clause = fields.List(fields.Nested(QualityTermSchema), required=True)
    deposit_pct = Percent(required=True)
    payment_due_days = fields.Integer(required=True)
    end_use = fields.String(required=True, allow_none=True)
    standards = fields.List(fields.Nested(StandardSchema), required=True)
    disputed_from = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(_values(ContractStatus))
    )
    seller_cancel_requested_at = Timestamp(required=True, allow_none=True)
    buyer_cancel_requested_at = Timestamp(required=True, allow_none=True)
    terms = fields.Dict(
        required=True,
        keys=fields.String(),
        metadata={
            "description": "The canonical terms the parties sign; `terms_hash` is their "
            "SHA-256 as canonical JSON (sorted keys, compact)."
        },
    )
    signatures = fields.List(fields.Nested(SignatureSchema), required=True)
    deliveries = fields.List(fields.Nested(DeliverySchema), required=True)
    disputes = fields.List(fields.Nested(DisputeSchema), required=True)
    allowed_actions = fields.List(
        fields.String(validate=validate.OneOf(_values(Action))),
        required=True,
        metadata={"description": "What you may do on this contract now (the lifecycle table)."},
    )
