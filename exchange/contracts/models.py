"""Contracts, their signatures, deliveries and disputes, and the yearly contract number counter."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company, User
from exchange.contracts.rules import ContractStatus
from exchange.db import Base
from exchange.listings.models import Lot
from exchange.trading.models import Award

TONNES = Numeric(14, 3)
PRICE = Numeric(12, 2)
PERCENT = Numeric(5, 2)


def _enum(cls: type[enum.Enum], length: int = 24) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class Side(enum.StrEnum):
    SELLER = "seller"
    BUYER = "buyer"


class DeliveryStatus(enum.StrEnum):
    DISPATCHED = "dispatched"  #: weighed out, on the road, awaiting the buyer's receipt
    ACCEPTED = "accepted"
    PARTIALLY_ACCEPTED = "partially_accepted"
    REJECTED = "rejected"


class DisputeOutcome(enum.StrEnum):
    RESUMED = "resumed"  #: the contract went back to where it was disputed from
    TERMINATED = "terminated"


class ContractNumberCounter(Base):
    """The last contract number issued in a year: numbers run 1, 2, 3… per year, no gaps."""

    __tablename__ = "contract_number_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)


class Contract(Base):
    """A contract drawn from an award; ``terms`` (hashed) is what the parties sign.

    The columns repeat the terms for queries and display; the terms JSON and its hash are the
    record. Prices are signed per tonne: negative = a disposal fee the producer pays the buyer.
    """

    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("tolerance_pct >= 0 AND tolerance_pct < 100", name="tolerance_range"),
        CheckConstraint("deposit_pct >= 0 AND deposit_pct <= 100", name="deposit_range"),
        CheckConstraint("payment_due_days >= 0", name="due_days_not_negative"),
        CheckConstraint("seller_id <> buyer_id", name="distinct_parties"),
        CheckConstraint("window_end >= window_start", name="window_order"),
        CheckConstraint("terms_version >= 1", name="terms_version_positive"),
        Index("ix_contracts_seller_id_status", "seller_id", "status"),
        Index("ix_contracts_buyer_id_status", "buyer_id", "status"),
        Index("ix_contracts_status_sign_by", "status", "sign_by"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: RMX-<year>-<seq>, from ``contract_number_counters``.
    number: Mapped[str] = mapped_column(String(24), unique=True)
    award_id: Mapped[int] = mapped_column(ForeignKey("awards.id", ondelete="RESTRICT"), unique=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), index=True)
    material_code: Mapped[str] = mapped_column(String(40))
    #: The assay the lot was sold on, frozen at drafting: lab, date, values as strings.
    assay_snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: wet | dry: which tonnes the quantity counts (dry = weighbridge net less moisture).
    basis: Mapped[str] = mapped_column(String(3))
    #: Moisture (% wet mass) stated in the contract, for dry-basis tonnes without a re-assay.
    moisture_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    quantity: Mapped[Decimal] = mapped_column(TONNES)
    tolerance_pct: Mapped[Decimal] = mapped_column(PERCENT)
    #: Signed CNY (or ``currency``) per tonne.
    price: Mapped[Decimal] = mapped_column(PRICE)
    currency: Mapped[str] = mapped_column(String(3))
    #: quantity x price in fen, signed.
    total_fen: Mapped[int] = mapped_column(BigInteger)
    #: ex_works | delivered
    delivery_mode: Mapped[str] = mapped_column(String(12))
    delivery_site: Mapped[str] = mapped_column(String(400))
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    schedule: Mapped[str] = mapped_column(String(1000), default="")
    #: Province codes the material leaves from and goes to; different = inter-provincial
    #: utilization, which needs a filing (备案) with the environment authorities.
    origin_province: Mapped[str] = mapped_column(String(2))
    destination_province: Mapped[str] = mapped_column(String(2))
    quality_clause: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    deposit_pct: Mapped[Decimal] = mapped_column(PERCENT)
    payment_due_days: Mapped[int] = mapped_column(Integer)
    end_use: Mapped[str | None] = mapped_column(String(30))
    standards: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    sign_by: Mapped[dt.datetime]
    status: Mapped[ContractStatus] = mapped_column(
        _enum(ContractStatus), default=ContractStatus.AWAITING_SIGNATURES
    )
    #: The state a disputed contract returns to when the dispute is resolved.
    disputed_from: Mapped[ContractStatus | None] = mapped_column(_enum(ContractStatus))
    #: The canonical terms (see ``rules.canonical_terms``) and their SHA-256.
    terms: Mapped[dict[str, Any]] = mapped_column(JSON)
    terms_hash: Mapped[str] = mapped_column(String(64))
    #: 1 at drafting, +1 on each amendment (which voids the signatures given so far).
    terms_version: Mapped[int] = mapped_column(Integer, default=1)
    seller_cancel_requested_at: Mapped[dt.datetime | None]
    buyer_cancel_requested_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    activated_at: Mapped[dt.datetime | None]
    #: When it reached a final state (completed, lapsed, cancelled, terminated).
    closed_at: Mapped[dt.datetime | None]

    award: Mapped[Award] = relationship()
    lot: Mapped[Lot] = relationship()
    seller: Mapped[Company] = relationship(foreign_keys=[seller_id])
    buyer: Mapped[Company] = relationship(foreign_keys=[buyer_id])
    signatures: Mapped[list[Signature]] = relationship(
        back_populates="contract", order_by="Signature.id"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="contract", order_by="Delivery.seq"
    )
    disputes: Mapped[list[Dispute]] = relationship(back_populates="contract", order_by="Dispute.id")

    def company_id_of(self, side: Side) -> int:
        return self.seller_id if side is Side.SELLER else self.buyer_id

    def side_of(self, company_id: int | None) -> Side | None:
        if company_id is not None and company_id == self.seller_id:
            return Side.SELLER
        if company_id is not None and company_id == self.buyer_id:
            return Side.BUYER
        return None

    @property
    def inter_provincial(self) -> bool:
        return self.origin_province != self.destination_province

    @property
    def valid_signatures(self) -> list[Signature]:
        return [s for s in self.signatures if not s.void]


class Signature(Base):
    """One company's signature on one version of the terms (void once the terms change)."""

    __tablename__ = "contract_signatures"
    __table_args__ = (
        # One valid signature per side: the database refuses a double signature outright.
        Index(
            "uq_contract_signatures_contract_id_side_valid",
            "contract_id",
            "side",
            unique=True,
            sqlite_where=text("NOT void"),
            postgresql_where=text("NOT void"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), index=True
    )
    side: Mapped[Side] = mapped_column(_enum(Side, 8))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    signed_at: Mapped[dt.datetime]
    ip: Mapped[str | None] = mapped_column(String(45))
    #: The terms hash the signer saw and signed.
    terms_hash: Mapped[str] = mapped_column(String(64))
    terms_version: Mapped[int] = mapped_column(Integer)
    void: Mapped[bool] = mapped_column(Boolean, default=False)
    voided_at: Mapped[dt.datetime | None]

    contract: Mapped[Contract] = relationship(back_populates="signatures")
    user: Mapped[User] = relationship()
    company: Mapped[Company] = relationship()


class Delivery(Base):
    """One load: the seller's dispatch (weighbridge out) and the buyer's receipt (in, re-assay).

    Tonnes are weighbridge (wet) tonnes; ``counted`` is on the contract's basis, and so are the
    accepted and rejected tonnes.
    """

    __tablename__ = "contract_deliveries"
    __table_args__ = (
        UniqueConstraint("contract_id", "seq"),
        UniqueConstraint("contract_id", "manifest_no"),
        CheckConstraint("tare_t >= 0 AND gross_t > tare_t", name="weights_ordered"),
        # To the kilogram, not exactly equal: SQLite does this arithmetic in binary floating
        # point, where 49.1 - 15.2 is not 33.9.
        CheckConstraint(
            "net_t - (gross_t - tare_t) < 0.0005 AND (gross_t - tare_t) - net_t < 0.0005",
            name="net_is_gross_less_tare",
        ),
        CheckConstraint("counted_t > 0", name="counted_positive"),
        CheckConstraint(
            "received_net_t IS NULL OR received_net_t > 0", name="received_net_positive"
        ),
        CheckConstraint(
            "accepted_t IS NULL OR (accepted_t >= 0 AND rejected_t >= 0)",
            name="accepted_rejected_not_negative",
        ),
        CheckConstraint(
            "quality_adjustment IS NULL OR quality_adjustment <= 0",
            name="adjustment_not_positive",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), index=True
    )
    #: 1, 2, 3… within the contract.
    seq: Mapped[int] = mapped_column(Integer)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.DISPATCHED
    )
    # --- dispatch (seller) ---
    dispatched_on: Mapped[dt.date] = mapped_column(Date)
    origin_site: Mapped[str] = mapped_column(String(200))
    carrier: Mapped[str] = mapped_column(String(200))
    vehicle_plate: Mapped[str] = mapped_column(String(40))
    #: The transfer manifest (转移联单 / waybill) number; unique within the contract.
    manifest_no: Mapped[str] = mapped_column(String(60))
    gross_t: Mapped[Decimal] = mapped_column(TONNES)
    tare_t: Mapped[Decimal] = mapped_column(TONNES)
    net_t: Mapped[Decimal] = mapped_column(TONNES)
    #: Tonnes on the contract's basis (dry = net less the contract's moisture).
    counted_t: Mapped[Decimal] = mapped_column(TONNES)
    dispatched_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    dispatched_at: Mapped[dt.datetime]
    # --- receipt (buyer) ---
    received_on: Mapped[dt.date | None] = mapped_column(Date)
    received_gross_t: Mapped[Decimal | None] = mapped_column(TONNES)
    received_tare_t: Mapped[Decimal | None] = mapped_column(TONNES)
    received_net_t: Mapped[Decimal | None] = mapped_column(TONNES)
    #: Received and dispatched net differ by more than the flag threshold.
    weight_discrepancy: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The buyer's re-assay on receipt ``{parameter: "value"}``; None if not assayed.
    receiving_assay: Mapped[dict[str, str] | None] = mapped_column(JSON)
    accepted_t: Mapped[Decimal | None] = mapped_column(TONNES)
    rejected_t: Mapped[Decimal | None] = mapped_column(TONNES)
    rejection_reason: Mapped[str | None] = mapped_column(String(500))
    #: Signed change to the price per tonne from the quality clause (0 or negative).
    quality_adjustment: Mapped[Decimal | None] = mapped_column(PRICE)
    #: The clause's verdict line by line: parameter, value, action, deviation, adjustment, reason.
    quality_lines: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    #: accepted x (price + adjustment), in fen, signed.
    value_fen: Mapped[int | None] = mapped_column(BigInteger)
    #: The end use the material went to (the basis of utilization and carbon statistics).
    end_use: Mapped[str | None] = mapped_column(String(30))
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    received_at: Mapped[dt.datetime | None]

    contract: Mapped[Contract] = relationship(back_populates="deliveries")

    @property
    def received(self) -> bool:
        return self.status is not DeliveryStatus.DISPATCHED


class Dispute(Base):
    """A party's dispute on the contract or one delivery, and the administrator's decision."""

    __tablename__ = "contract_disputes"
    __table_args__ = (
        # At most one open dispute per contract: a disputed contract takes no second one.
        Index(
            "uq_contract_disputes_contract_id_open",
            "contract_id",
            unique=True,
            sqlite_where=text("decided_at IS NULL"),
            postgresql_where=text("decided_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contract_id: Mapped[int] = mapped_column(
        ForeignKey("contracts.id", ondelete="RESTRICT"), index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("contract_deliveries.id", ondelete="RESTRICT")
    )
    opened_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    opened_by_company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT")
    )
    opened_at: Mapped[dt.datetime]
    reason: Mapped[str] = mapped_column(String(500))
    evidence: Mapped[str] = mapped_column(Text, default="")
    disputed_from: Mapped[ContractStatus] = mapped_column(_enum(ContractStatus))
    outcome: Mapped[DisputeOutcome | None] = mapped_column(_enum(DisputeOutcome, 12))
    decision: Mapped[str | None] = mapped_column(Text)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    decided_at: Mapped[dt.datetime | None]

    contract: Mapped[Contract] = relationship(back_populates="disputes")
    delivery: Mapped[Delivery | None] = relationship()
    opened_by_company: Mapped[Company] = relationship()
    attachments: Mapped[list[DisputeAttachment]] = relationship(
        back_populates="dispute", order_by="DisputeAttachment.id"
    )

    @property
    def is_open(self) -> bool:
        return self.decided_at is None


class DisputeAttachment(Base):
    """A file a party gave as evidence in a dispute (PDF, PNG, JPEG), stored under its SHA-256
    outside ``static/`` and served only to the contract's parties and administrators."""

    __tablename__ = "contract_dispute_attachments"
    __table_args__ = (
        UniqueConstraint("dispute_id", "sha256"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    dispute_id: Mapped[int] = mapped_column(
        ForeignKey("contract_disputes.id", ondelete="RESTRICT"), index=True
    )
    #: A sanitised display name; never used as a path.
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    uploaded_by_company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="RESTRICT")
    )
    uploaded_at: Mapped[dt.datetime]

    dispute: Mapped[Dispute] = relationship(back_populates="attachments")
    uploaded_by_company: Mapped[Company] = relationship()
