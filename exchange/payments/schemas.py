"""marshmallow schemas of the payments API: invoices, payments, card checkout, bank transfers.

Money is integer fen with its currency; times are ISO 8601 with a zone (see
:mod:`exchange.apiplatform.fields`). Load schemas check shapes; the services check the rules.
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from flask_babel import lazy_gettext as _l
from marshmallow import fields, validate

from exchange.apiplatform.fields import Currency, MinorUnits, Timestamp
from exchange.payments.rules import InvoiceKind, InvoiceStatus

ID_RANGE = validate.Range(min=1, max=2**31 - 1)
#: Control characters (tab and line breaks excepted) and lone surrogates.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


def _printable(value: str) -> None:
    if _UNPRINTABLE.search(value):
        raise ma.ValidationError(str(_l("Remove the control characters from this text.")))


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ma.ValidationError(str(_l("This field is required.")))


class InvoiceFilterSchema(ma.Schema):
    status = fields.String(validate=validate.OneOf(_values(InvoiceStatus)))
    kind = fields.String(validate=validate.OneOf(_values(InvoiceKind)))
    contract_id = fields.Integer(validate=ID_RANGE)


class PaymentFilterSchema(ma.Schema):
    contract_id = fields.Integer(validate=ID_RANGE)


class InvoiceSchema(ma.Schema):
    reference = fields.String(metadata={"description": "What the payer writes on a bank transfer."})
    contract_id = fields.Integer()
    delivery_id = fields.Integer(allow_none=True)
    kind = fields.Function(lambda i: i.kind.value, metadata={"enum": _values(InvoiceKind)})
    status = fields.Function(lambda i: i.status.value, metadata={"enum": _values(InvoiceStatus)})
    payer_id = fields.Integer(allow_none=True)
    payee_id = fields.Integer(allow_none=True)
    currency = Currency()
    amount_fen = MinorUnits(metadata={"description": "What the payer pays on this invoice."})
    gross_fen = MinorUnits(metadata={"description": "The value billed, before the deposit."})
    deposit_applied_fen = MinorUnits()
    fee_fen = MinorUnits(metadata={"description": "The exchange's fee, kept from the payee."})
    paid_fen = MinorUnits()
    open_fen = MinorUnits(metadata={"description": "What the payer still owes."})
    gateway = fields.String()
    description = fields.String()
    issued_at = Timestamp()
    due_on = fields.Date()
    overdue_at = Timestamp(allow_none=True)
    released_at = Timestamp(allow_none=True)
    cancelled_at = Timestamp(allow_none=True)
    refund_of = fields.Function(
        lambda i: i.refund_of.reference if i.refund_of is not None else None, allow_none=True
    )


class PaymentSchema(ma.Schema):
    id = fields.Integer()
    invoice = fields.Function(lambda p: p.invoice.reference)
    gateway = fields.String()
    external_ref = fields.String()
    amount_fen = MinorUnits()
    applied_fen = MinorUnits()
    excess_fen = MinorUnits()
    refunded_fen = MinorUnits()
    currency = Currency()
    received_at = Timestamp()


class CheckoutSchema(ma.Schema):
    url = fields.String(metadata={"description": "Stripe Checkout's hosted page: send the payer."})


class BankTransferCreateSchema(ma.Schema):
    received_on = fields.Date(required=True)
    amount_fen = MinorUnits(required=True, validate=validate.Range(min=1, max=10**15))
    currency = Currency(load_default="CNY")
    reference_text = fields.String(
        required=True,
        validate=[validate.Length(max=200), _printable],
        metadata={"description": "The transfer's memo; the invoice reference is read from it."},
    )
    payer_name = fields.String(
        required=True, validate=[validate.Length(min=1, max=200), _printable, _not_blank]
    )
    separate = fields.Boolean(
        load_default=False,
        metadata={"description": "Another transfer identical to one already recorded."},
    )


class TransferMatchSchema(ma.Schema):
    reference = fields.String(
        required=True, validate=[validate.Length(min=1, max=80), _printable, _not_blank]
    )


class ReconciliationSchema(ma.Schema):
    outcome = fields.String(metadata={"enum": ["matched", "unmatched", "duplicate"]})
    transfer_id = fields.Function(
        lambda r: r.transfer.id if r.transfer is not None else None, allow_none=True
    )
    invoice = fields.Function(
        lambda r: r.invoice.reference if r.invoice is not None else None, allow_none=True
    )
    received_on = fields.Date()
    amount_fen = MinorUnits()
    applied_fen = MinorUnits()
    excess_fen = MinorUnits()
    open_after_fen = MinorUnits()
    message = fields.String()


__all__: list[Any] = [
    "BankTransferCreateSchema",
    "CheckoutSchema",
    "InvoiceFilterSchema",
    "InvoiceSchema",
    "PaymentFilterSchema",
    "PaymentSchema",
    "ReconciliationSchema",
    "TransferMatchSchema",
]
