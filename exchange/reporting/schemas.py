"""marshmallow schemas of the reporting API: national statistics (public), flags and the trade
desk (admins)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from exchange.accounts.regions import PROVINCES
from exchange.apiplatform.fields import DecimalString, Timestamp
from exchange.catalog.materials import MATERIALS
from exchange.reporting.anomalies import Rule
from exchange.reporting.desk import KINDS
from exchange.reporting.models import FlagStatus

_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")


class Month(fields.String):
    """A month as ``YYYY-MM``, loaded as its first day."""

    default_error_messages = {"invalid": "Use a month as YYYY-MM, e.g. 2026-07."}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": _MONTH.pattern, "example": "2026-07", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:  # type: ignore[override]
        text = super()._deserialize(value, attr, data, **kwargs)
        if not _MONTH.match(text):
            raise self.make_error("invalid")
        try:
            return dt.date(int(text[:4]), int(text[5:7]), 1)
        except ValueError:  # year 0000 matches the pattern but is no date
            raise self.make_error("invalid") from None


class PeriodQuerySchema(ma.Schema):
    start = Month(metadata={"description": "First month (default: 12 months before `end`)."})
    end = Month(metadata={"description": "Last month (default: the last whole month)."})


class UtilizationQuerySchema(PeriodQuerySchema):
    by = fields.String(
        load_default="month",
        validate=validate.OneOf(["month", "end_use", "total"]),
        metadata={"description": "Group by month (default), by end use, or one total."},
    )


def _tonnes(description: str) -> DecimalString:
    return DecimalString(
        places=3, max_digits=16, signed=True, required=True, metadata={"description": description}
    )


class TargetSchema(ma.Schema):
    year = fields.Integer(required=True)
    rate = DecimalString(places=4, max_digits=6, required=True, attribute="target_rate")
    gap_points = DecimalString(
        places=2, max_digits=6, required=True, metadata={"description": "Percentage points short."}
    )
    tonnes_short = _tonnes("Dry tonnes more that would have met the target in the period.")
    met = fields.Boolean(required=True)


class UtilizationRowSchema(ma.Schema):
    month = fields.String(allow_none=True, metadata={"description": "YYYY-MM (by=month)."})
    end_use = fields.String(allow_none=True, metadata={"description": "End use (by=end_use)."})
    generated_t = _tonnes("Red mud generated, dry tonnes (0 in rows by end use).")
    delivered_t = _tonnes("Red mud delivered to use, dry red-mud tonnes.")
    rate = DecimalString(
        places=4,
        max_digits=8,
        required=True,
        allow_none=True,
        metadata={"description": "Delivered ÷ generated; null when nothing was generated."},
    )
    deliveries = fields.Integer(required=True)
    co2_avoided_t = _tonnes("CO2 avoided by the end uses, tonnes.")
    transport_co2_t = _tonnes("CO2 of transport, tonnes.")


class UtilizationSchema(ma.Schema):
    start = fields.String(required=True)
    end = fields.String(required=True)
    refreshed_at = Timestamp(required=True, allow_none=True)
    targets = fields.List(fields.Nested(TargetSchema), required=True)
    rows = fields.List(fields.Nested(UtilizationRowSchema), required=True)
    method = fields.String(required=True)


class PriceIndexQuerySchema(PeriodQuerySchema):
    family = fields.String(
        validate=validate.OneOf(["red_mud", "rm_product", "co_waste"]),
        metadata={"description": "Only this material family."},
    )


class PricePointSchema(ma.Schema):
    week = fields.Date(required=True, metadata={"description": "Monday of the ISO week."})
    material_family = fields.String(required=True)
    price = DecimalString(
        places=2,
        max_digits=12,
        signed=True,
        required=True,
        metadata={"description": "Volume-weighted signed CNY/t; negative = disposal fee."},
    )
    volume_t = _tonnes("Tonnes traded.")
    trades = fields.Integer(required=True)


class FlagFilterSchema(ma.Schema):
    status = fields.String(validate=validate.OneOf([s.value for s in FlagStatus]))
    rule = fields.String(validate=validate.OneOf([r.value for r in Rule]))


class FlagSchema(ma.Schema):
    id = fields.Integer(required=True)
    rule = fields.String(required=True)
    subject_type = fields.String(required=True)
    subject_ids = fields.List(fields.String(), required=True)
    company_ids = fields.List(fields.Integer(), required=True)
    evidence = fields.String(required=True)
    data = fields.Dict(required=True)
    status = fields.Function(lambda f: f.status.value, required=True)
    raised_at = Timestamp(required=True)
    decided_at = Timestamp(required=True, allow_none=True)
    decided_by_id = fields.Integer(required=True, allow_none=True)
    reason = fields.String(required=True, allow_none=True)


class FlagDecisionSchema(ma.Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf([FlagStatus.DISMISSED.value, FlagStatus.ESCALATED.value]),
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class DeskQuerySchema(ma.Schema):
    """The trade desk's filters; dates are whole days (UTC), ``until`` inclusive."""

    kind = fields.String(
        load_default="contract",
        validate=validate.OneOf(list(KINDS)),
        metadata={"description": "What to search: " + ", ".join(KINDS) + "."},
    )
    company_id = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "A party: producer, bidder, buyer, seller, payer or payee."},
    )
    province = fields.String(
        validate=validate.OneOf(sorted(PROVINCES)),
        metadata={"description": "Province code (origin or destination)."},
    )
    material = fields.String(
        validate=validate.OneOf(sorted(MATERIALS)), metadata={"description": "Material code."}
    )
    status = fields.String(
        validate=validate.Length(max=30),
        metadata={"description": "A status of the chosen kind (payments: the gateway)."},
    )
    since = fields.Date()
    until = fields.Date()
    min_amount = DecimalString(
        places=2, max_digits=14, signed=True, metadata={"description": "Signed CNY, from."}
    )
    max_amount = DecimalString(
        places=2, max_digits=14, signed=True, metadata={"description": "Signed CNY, to."}
    )


class DeskRowSchema(ma.Schema):
    kind = fields.String(required=True)
    id = fields.Integer(required=True)
    label = fields.String(required=True)
    status = fields.String(required=True)
    at = fields.Method(
        "_at",
        required=True,
        allow_none=True,
        metadata={"type": "string", "description": "ISO date or timestamp of the record."},
    )
    company_ids = fields.List(fields.Integer(), required=True)
    province = fields.String(required=True, allow_none=True)
    material_code = fields.String(required=True, allow_none=True)
    quantity_t = DecimalString(places=3, max_digits=16, required=True, allow_none=True)
    amount_cny = DecimalString(
        places=2,
        max_digits=18,
        signed=True,
        required=True,
        allow_none=True,
        metadata={"description": "Signed CNY; negative = a disposal fee the producer pays."},
    )
    chain_key = fields.String(required=True, metadata={"example": "contract:12"})

    def _at(self, row: Any) -> str | None:
        return row.at.isoformat() if row.at is not None else None


class TimelineEventSchema(ma.Schema):
    action = fields.String(required=True, attribute="event.action")
    occurred_at = Timestamp(required=True, attribute="event.occurred_at")
    chain_seq = fields.Integer(required=True, attribute="event.chain_seq")
    actor_user_id = fields.Integer(required=True, allow_none=True, attribute="event.actor_user_id")
    actor_company_id = fields.Integer(
        required=True, allow_none=True, attribute="event.actor_company_id"
    )
    user = fields.String(required=True, allow_none=True)
    company = fields.String(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True, attribute="event.ip")
    changes = fields.Dict(
        required=True, metadata={"description": "Changed fields as `{field: [old, new]}`."}
    )
    fields_ = fields.Dict(required=True, data_key="fields", attribute="fields")
    hash = fields.String(required=True, attribute="event.hash")


class DeskRecordSchema(ma.Schema):
    record = fields.Nested(DeskRowSchema, required=True, attribute="row")
    chain = fields.Method("_chain", required=True, metadata={"type": "object"})
    chain_events = fields.Integer(required=True)
    events = fields.List(fields.Nested(TimelineEventSchema), required=True)

    def _chain(self, record: Any) -> dict[str, Any]:
        report = record.chain
        return {
            "ok": report.ok,
            "events": report.events,
            "breaks": [b.reason for b in report.breaks],
        }


class LedgerEntrySchema(ma.Schema):
    """One movement in a company's own red mud ledger (the generator's traceable record)."""

    date = fields.Date(required=True)
    direction = fields.String(
        required=True,
        validate=validate.OneOf(["generated", "delivered", "received"]),
        metadata={"description": "generated; delivered (out, to a buyer); received (in)."},
    )
    material_code = fields.String(required=True)
    quantity_t = DecimalString(
        places=3,
        max_digits=16,
        signed=True,
        required=True,
        metadata={"description": "As recorded: generation dry, deliveries on their basis."},
    )
    basis = fields.String(required=True, validate=validate.OneOf(["dry", "wet"]))
    red_mud_dry_t = DecimalString(
        places=3,
        max_digits=16,
        signed=True,
        required=True,
        allow_none=True,
        metadata={"description": "Dry red-mud tonnes the line stands for (null: not convertible)."},
    )
    site = fields.String(required=True)
    counterparty_id = fields.Integer(required=True, allow_none=True)
    destination_province = fields.String(required=True, allow_none=True)
    end_use = fields.String(required=True, allow_none=True)
    reference = fields.String(required=True)


class OversightSchema(ma.Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={"description": "Mailed to the company's users and kept in its audit chain."},
    )


class SuspensionStateSchema(ma.Schema):
    id = fields.Integer(required=True)
    suspended = fields.Boolean(required=True, attribute="is_suspended")
    suspended_at = Timestamp(required=True, allow_none=True)
    suspension_reason = fields.String(required=True, allow_none=True)
