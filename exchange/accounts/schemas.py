"""marshmallow schemas of the accounts API: companies, sites, members, tokens, the caller."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma
from marshmallow import fields, validate

from exchange.accounts.regions import PROVINCES
from exchange.accounts.rules import Role, Sector, TokenScope, VerificationStatus
from exchange.apiplatform.fields import DecimalString, Timestamp


def _values(enum: type) -> list[str]:
    return [member.value for member in enum]  # type: ignore[attr-defined]


class SiteSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    province = fields.String(required=True, metadata={"description": "GB/T 2260 code."})
    city = fields.String(required=True)
    address = fields.String(required=True, allow_none=True)
    latitude = DecimalString(places=6, max_digits=9, signed=True, required=True)
    longitude = DecimalString(places=6, max_digits=9, signed=True, required=True)
    created_at = Timestamp(required=True)


class SiteCreateSchema(ma.Schema):
    """A new plant, storage yard or delivery site; coordinates WGS-84, inside China."""

    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    province = fields.String(
        required=True,
        validate=validate.OneOf(sorted(PROVINCES)),
        metadata={"description": "GB/T 2260 two-digit province code."},
    )
    city = fields.String(required=True, validate=validate.Length(min=1, max=80))
    address = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    latitude = DecimalString(
        places=6,
        max_digits=9,
        minimum=Decimal(3),
        maximum=Decimal(54),
        required=True,
        metadata={"description": "Latitude in degrees north."},
    )
    longitude = DecimalString(
        places=6,
        max_digits=9,
        minimum=Decimal(73),
        maximum=Decimal(136),
        required=True,
        metadata={"description": "Longitude in degrees east."},
    )

    @ma.validates("name")
    def _name_not_blank(self, value: str, **_kwargs: object) -> None:
        if not value.strip():
            raise ma.ValidationError("Must not be blank.")

    @ma.validates("city")
    def _city_not_blank(self, value: str, **_kwargs: object) -> None:
        if not value.strip():
            raise ma.ValidationError("Must not be blank.")


class MemberSchema(ma.Schema):
    """A membership: the user and their role in the company."""

    id = fields.Integer(
        required=True, metadata={"description": "The membership's id (to change or remove it)."}
    )
    user_id = fields.Integer(required=True)
    display_name = fields.String(required=True, attribute="user.display_name")
    email = fields.String(required=True, attribute="user.email")
    role = fields.String(required=True, validate=validate.OneOf(_values(Role)))
    joined_at = Timestamp(required=True, attribute="created_at")


class MemberRoleSchema(ma.Schema):
    """A member's new role; a company always keeps at least one owner."""

    role = fields.String(required=True, validate=validate.OneOf(_values(Role)))


class InvitationCreateSchema(ma.Schema):
    """Invite a colleague by e-mail; the link mailed to them is valid for 14 days."""

    email = fields.Email(required=True, validate=validate.Length(max=254))
    role = fields.String(
        load_default=Role.TRADER.value,
        validate=validate.OneOf(_values(Role)),
        metadata={"description": "The role the colleague gets on accepting (default trader)."},
    )


class InvitationSchema(ma.Schema):
    """An invitation to join the company (never its link)."""

    id = fields.Integer(required=True)
    email = fields.String(required=True)
    role = fields.String(required=True, validate=validate.OneOf(_values(Role)))
    created_at = Timestamp(required=True)
    expires_at = Timestamp(required=True)


class CompanyPublicSchema(ma.Schema):
    """What anyone sees on a company's public profile page."""

    id = fields.Integer(required=True)
    legal_name_zh = fields.String(required=True)
    legal_name_en = fields.String(required=True, allow_none=True)
    uscc = fields.String(required=True, metadata={"description": "统一社会信用代码 (GB 32100)."})
    is_producer = fields.Boolean(required=True)
    is_buyer = fields.Boolean(required=True)
    sector = fields.String(required=True, validate=validate.OneOf(_values(Sector)))
    province = fields.String(required=True)
    city = fields.String(required=True)
    verification_status = fields.String(
        required=True, validate=validate.OneOf(_values(VerificationStatus))
    )


class CompanySchema(CompanyPublicSchema):
    """The caller's own company with its contact details, sites and members."""

    address = fields.String(required=True, allow_none=True)
    contact_name = fields.String(required=True)
    contact_phone = fields.String(required=True)
    contact_email = fields.String(required=True)
    verification_note = fields.String(required=True, allow_none=True)
    verified_at = Timestamp(required=True, allow_none=True)
    created_at = Timestamp(required=True)
    sites = fields.List(fields.Nested(SiteSchema), required=True)
    members = fields.List(fields.Nested(MemberSchema), required=True, attribute="memberships")


class CallerSchema(ma.Schema):
    """Who the token acts as."""

    user_id = fields.Integer(required=True)
    display_name = fields.String(required=True)
    email = fields.String(required=True)
    is_admin = fields.Boolean(required=True)
    company_id = fields.Integer(required=True, allow_none=True)
    role = fields.String(required=True, allow_none=True, validate=validate.OneOf(_values(Role)))
    token_id = fields.Integer(required=True)
    token_scope = fields.String(required=True, validate=validate.OneOf(_values(TokenScope)))


class TokenSchema(ma.Schema):
    """A token as listed: never its secret."""

    id = fields.Integer(required=True)
    name = fields.String(required=True)
    scope = fields.String(required=True, validate=validate.OneOf(_values(TokenScope)))
    prefix = fields.String(required=True, metadata={"description": "First characters."})
    created_at = Timestamp(required=True)
    last_used_at = Timestamp(required=True, allow_none=True)
    revoked_at = Timestamp(required=True, allow_none=True)
    active = fields.Boolean(required=True, attribute="is_active")


class TokenFilterSchema(ma.Schema):
    active = fields.Boolean(metadata={"description": "Only active (true) or revoked (false)."})


class VerificationFilterSchema(ma.Schema):
    status = fields.String(
        validate=validate.OneOf(_values(VerificationStatus)),
        metadata={"description": "Only companies in this verification status (default: all)."},
    )
    q = fields.String(
        validate=validate.Length(max=100),
        metadata={"description": "Part of the Chinese or English name, or of the USCC."},
    )


class VerificationDecisionSchema(ma.Schema):
    """An administrator's decision on a company; the owners are told by e-mail."""

    decision = fields.String(
        required=True,
        validate=validate.OneOf(
            [VerificationStatus.VERIFIED.value, VerificationStatus.REJECTED.value]
        ),
    )
    reason = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={"description": "Shown to the company; required to reject."},
    )
