"""Companies (organizations), sites, users, memberships, invitations and login failures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Numeric,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.rules import Role, Sector, TokenScope, VerificationStatus
from exchange.db import Base, enum_column


class CompanyFacts:
    """What a company says of itself, for the ORM company and a page's plain copy of it
    (``exchange.security.SignedInCompany``); both carry the columns read here."""

    @property
    def is_verified(self) -> bool:
        return self.verification_status is VerificationStatus.VERIFIED  # type: ignore[attr-defined,no-any-return]

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None  # type: ignore[attr-defined,no-any-return]

    def display_name(self, locale: str) -> str:
        name_en: str | None = self.legal_name_en  # type: ignore[attr-defined]
        if not locale.startswith("zh") and name_en:
            return name_en
        return str(self.legal_name_zh)  # type: ignore[attr-defined]


class AccountHolder:
    """Flask-Login's protocol and the membership shortcuts, for the ORM user and a page's plain
    copy of it (``exchange.security.SignedIn``); both carry ``id`` and ``membership``."""

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return str(self.id)  # type: ignore[attr-defined]

    @property
    def company(self) -> Any:
        membership = self.membership  # type: ignore[attr-defined]
        return membership.company if membership else None

    @property
    def role(self) -> str | None:
        membership = self.membership  # type: ignore[attr-defined]
        return str(membership.role.value) if membership else None


class Company(CompanyFacts, Base):
    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint("is_producer OR is_buyer", name="has_a_role"),
        Index("ix_companies_verification_status", "verification_status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    legal_name_zh: Mapped[str] = mapped_column(String(200))
    legal_name_en: Mapped[str | None] = mapped_column(String(200))
    #: 统一社会信用代码, validated with the GB 32100 check digit.
    uscc: Mapped[str] = mapped_column(String(18), unique=True)
    is_producer: Mapped[bool] = mapped_column(Boolean, default=False)
    is_buyer: Mapped[bool] = mapped_column(Boolean, default=False)
    sector: Mapped[Sector] = mapped_column(enum_column(Sector))
    #: GB/T 2260 two-digit province code.
    province: Mapped[str] = mapped_column(String(2))
    city: Mapped[str] = mapped_column(String(80))
    address: Mapped[str | None] = mapped_column(String(300))
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(40))
    contact_email: Mapped[str] = mapped_column(String(254))
    verification_status: Mapped[VerificationStatus] = mapped_column(
        enum_column(VerificationStatus), default=VerificationStatus.PENDING
    )
    #: The administrator's reason for the last verification decision.
    verification_note: Mapped[str | None] = mapped_column(String(500))
    verified_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    #: Set by an administrator (reporting oversight): the company's writes are refused.
    suspended_at: Mapped[dt.datetime | None]
    suspension_reason: Mapped[str | None] = mapped_column(String(500))

    sites: Mapped[list[Site]] = relationship(
        back_populates="company", order_by="Site.id", cascade="all, delete-orphan"
    )
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="company", order_by="Membership.id"
    )


class Site(Base):
    """A plant, storage yard or delivery site with coordinates (WGS-84)."""

    __tablename__ = "sites"
    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude_range"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    province: Mapped[str] = mapped_column(String(2))
    city: Mapped[str] = mapped_column(String(80))
    address: Mapped[str | None] = mapped_column(String(300))
    latitude: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    longitude: Mapped[Decimal] = mapped_column(Numeric(9, 6))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    company: Mapped[Company] = relationship(back_populates="sites")


class User(AccountHolder, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    #: Platform administrators belong to no company.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Preferred UI language ("zh_Hans_CN" or "en"); None follows the browser.
    locale: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[dt.datetime | None]
    password_changed_at: Mapped[dt.datetime | None]
    #: Set when the user follows the link mailed at registration; login waits for it.
    email_confirmed_at: Mapped[dt.datetime | None]

    membership: Mapped[Membership | None] = relationship(back_populates="user", uselist=False)


class Membership(Base):
    """A user's place in one company. A user belongs to at most one company."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(enum_column(Role))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    user: Mapped[User] = relationship(back_populates="membership")
    company: Mapped[Company] = relationship(back_populates="memberships")


class Invitation(Base):
    __tablename__ = "invitations"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(enum_column(Role))
    #: SHA-256 of the token mailed to the invitee; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    accepted_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    company: Mapped[Company] = relationship()


class LoginFailure(Base):
    """One failed login, kept to detect bursts (the audit trail records the burst, not each)."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_at", "email", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    ip: Mapped[str | None] = mapped_column(String(45))
    at: Mapped[dt.datetime]


class OneTimeToken(Base):
    """A single-use, expiring token mailed to a user (e-mail confirmation, password reset)."""

    __tablename__ = "one_time_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 of the token; the token itself is only in the e-mail.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class ApiToken(Base):
    """A personal API token. Only the SHA-256 of its secret is stored; the secret is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    scope: Mapped[TokenScope] = mapped_column(enum_column(TokenScope))
    #: The secret's first characters (``rmx_AbC123``), shown so a user can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    #: SHA-256 (hex) of the whole secret.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime]
    #: Updated at most once a minute per token, so reads do not become writes on every request.
    last_used_at: Mapped[dt.datetime | None]
    last_used_ip: Mapped[str | None] = mapped_column(String(45))
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship()

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
