"""Reporting tables: anomaly flags, declared affiliations, and the pre-aggregated statistics.

The statistics pages and the API read only ``utilization_monthly`` and ``price_index_weekly``
(a few thousand rows, whatever the number of deliveries); a periodic job rebuilds them from the
source tables (see ``statistics.refresh``).
"""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company
from exchange.db import Base, enum_column

TONNES = Numeric(14, 3)


class FlagStatus(enum.StrEnum):
    OPEN = "open"
    DISMISSED = "dismissed"  #: reviewed: nothing wrong
    ESCALATED = "escalated"  #: reviewed: worth acting on (investigation, suspension)


class AnomalyFlag(Base):
    """A finding of an anomaly rule, for an administrator to review (audit chain ``flag:id``)."""

    __tablename__ = "anomaly_flags"
    __table_args__ = (
        Index("ix_anomaly_flags_status_raised_at", "status", "raised_at"),
        Index("ix_anomaly_flags_rule_status", "rule", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: ``exchange.reporting.anomalies.Rule`` value.
    rule: Mapped[str] = mapped_column(String(40))
    #: The finding's stable key: the same situation found again raises no second flag.
    fingerprint: Mapped[str] = mapped_column(String(300), unique=True)
    #: company_pair | company | trade | delivery | lot | login
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_ids: Mapped[list[str]] = mapped_column(JSON)
    #: Companies involved, for links and filters.
    company_ids: Mapped[list[int]] = mapped_column(JSON)
    #: The rule's evidence in words (English, as recorded) and as data.
    evidence: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[FlagStatus] = mapped_column(enum_column(FlagStatus, 12), default=FlagStatus.OPEN)
    raised_at: Mapped[dt.datetime]
    decided_at: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The administrator's reason for the last decision.
    reason: Mapped[str | None] = mapped_column(String(1000))


class AffiliationKind(enum.StrEnum):
    PARENT_SUBSIDIARY = "parent_subsidiary"
    COMMON_OWNER = "common_owner"
    SHARED_MANAGEMENT = "shared_management"
    OTHER = "other"


class CompanyAffiliation(Base):
    """Two companies an administrator knows to be related (entered from registries or filings)."""

    __tablename__ = "company_affiliations"
    __table_args__ = (
        UniqueConstraint("company_a_id", "company_b_id"),
        CheckConstraint("company_a_id < company_b_id", name="ordered_pair"),
        Index("ix_company_affiliations_company_b_id", "company_b_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: The pair is stored with the smaller id first, so it is unique whichever way entered.
    company_a_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    company_b_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    kind: Mapped[AffiliationKind] = mapped_column(enum_column(AffiliationKind, 24))
    note: Mapped[str] = mapped_column(String(500), default="")
    declared_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]

    company_a: Mapped[Company] = relationship(foreign_keys=[company_a_id])
    company_b: Mapped[Company] = relationship(foreign_keys=[company_b_id])


class UtilizationMonthly(Base):
    """Pre-aggregated utilization: month × province × producer × plant × end use.

    Every measure is additive, so any grouping is a plain SUM over these rows. Generation rows
    have ``end_use = ''``; delivery rows carry the end use (``unspecified`` when none was given).
    """

    __tablename__ = "utilization_monthly"
    __table_args__ = (
        UniqueConstraint("month", "province", "producer_id", "site_id", "end_use"),
        Index("ix_utilization_monthly_province_month", "province", "month"),
        Index("ix_utilization_monthly_producer_id_month", "producer_id", "month"),
        Index("ix_utilization_monthly_end_use_month", "end_use", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[dt.date] = mapped_column(Date)
    #: Province of the producer's plant (GB/T 2260 code).
    province: Mapped[str] = mapped_column(String(2))
    producer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    end_use: Mapped[str] = mapped_column(String(30))
    #: Dry tonnes of red mud generated (producers' monthly reports).
    generated_t: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    #: Dry red-mud tonnes delivered to use (accepted, converted; see reporting.rules).
    delivered_t: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    #: Dry tonnes of the delivered materials themselves (products before the red-mud factor).
    material_dry_t: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
    #: Wet deliveries without a moisture figure: counted here, not in the tonnes.
    unconverted: Mapped[int] = mapped_column(Integer, default=0)
    co2_avoided_t: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    transport_co2_t: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))


class PriceIndexWeekly(Base):
    """Pre-aggregated prices: ISO week (Monday, Shanghai dates) × material family × province.

    ``value_cny`` is Σ signed price × tonnes, so the weighted price of any grouping is
    Σ value ÷ Σ volume. CNY only.
    """

    __tablename__ = "price_index_weekly"
    __table_args__ = (
        UniqueConstraint("week", "material_family", "province"),
        Index("ix_price_index_weekly_material_family_week", "material_family", "week"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[dt.date] = mapped_column(Date)
    material_family: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(2))
    volume_t: Mapped[Decimal] = mapped_column(Numeric(16, 3))
    value_cny: Mapped[Decimal] = mapped_column(Numeric(22, 5))
    trades: Mapped[int] = mapped_column(Integer)


class StatisticsRefresh(Base):
    """One run of the statistics job: what it rebuilt and when (the pages show 'as of')."""

    __tablename__ = "statistics_refreshes"
    __table_args__ = (Index("ix_statistics_refreshes_kind_finished_at", "kind", "finished_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: full | incremental
    kind: Mapped[str] = mapped_column(String(12))
    #: The months rebuilt (first days), as ISO dates.
    months: Mapped[list[str]] = mapped_column(JSON)
    utilization_rows: Mapped[int] = mapped_column(Integer)
    price_rows: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime]
