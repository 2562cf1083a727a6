"""marshmallow schemas of the audit API (administrators)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from exchange.apiplatform.fields import Timestamp


class EventFilterSchema(ma.Schema):
    """The filters of the web audit log; dates are whole days in UTC, ``until`` inclusive."""

    entity_type = fields.String(validate=validate.Length(max=40), metadata={"example": "company"})
    entity_id = fields.String(validate=validate.Length(max=40))
    action = fields.String(
        validate=validate.Length(max=80),
        metadata={"description": "Action tag or its prefix, e.g. `accounts:`."},
    )
    company = fields.Integer(
        validate=validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "Only events done by members of this company."},
    )
    since = fields.Date(metadata={"description": "From this day (UTC)."})
    until = fields.Date(metadata={"description": "To this day (UTC)."})

    @ma.post_load
    def _to_filters(self, data: dict[str, Any], **_kwargs: Any) -> dict[str, Any]:
        def start(day: dt.date | None, days: int = 0) -> dt.datetime | None:
            if day is None:
                return None
            try:
                return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(days)
            except OverflowError:  # the last representable day: no upper bound then
                return None

        return {
            "entity_type": data.get("entity_type") or None,
            "entity_id": data.get("entity_id") or None,
            "action": data.get("action") or None,
            "actor_company_id": data.get("company"),
            "since": start(data.get("since")),
            "until": start(data.get("until"), 1),
        }


class EventSchema(ma.Schema):
    id = fields.Integer(required=True)
    chain_key = fields.String(required=True, metadata={"example": "company:12"})
    chain_seq = fields.Integer(required=True)
    occurred_at = Timestamp(required=True)
    action = fields.String(required=True, metadata={"example": "accounts:company:verified"})
    entity_type = fields.String(required=True)
    entity_id = fields.String(required=True)
    actor_user_id = fields.Integer(required=True, allow_none=True)
    actor_company_id = fields.Integer(required=True, allow_none=True)
    ip = fields.String(required=True, allow_none=True)
    data = fields.Method(
        "_data",
        required=True,
        metadata={
            "type": "object",
            "description": "The event's data; hashed as canonical JSON (sorted keys, compact).",
        },
    )
    prev_hash = fields.String(required=True)
    hash = fields.String(required=True)

    def _data(self, event: Any) -> Any:
        return json.loads(event.data)


class BreakSchema(ma.Schema):
    event_id = fields.Integer(required=True, allow_none=True)
    chain_key = fields.String(required=True, allow_none=True)
    reason = fields.String(required=True)


class VerifyReportSchema(ma.Schema):
    ok = fields.Boolean(required=True)
    events = fields.Integer(required=True)
    chains = fields.Integer(required=True)
    checkpoints = fields.Integer(required=True)
    unsealed_events = fields.Integer(
        required=True, metadata={"description": "Events newer than the last checkpoint."}
    )
    record_checks = fields.Integer(
        required=True,
        metadata={
            "description": "Checks of stored rows (signatures, deliveries, evidence files) "
            "against their audit records."
        },
    )
    breaks = fields.List(fields.Nested(BreakSchema), required=True)
