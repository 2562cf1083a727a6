"""Trading tables: bids, closings, trade notices, and ``Award`` (the hand-over to contracts)."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company, User
from exchange.db import Base
from exchange.listings.models import Lot
from exchange.trading.rules import BidStatus, SaleMode


def _enum(cls: type, length: int) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


TONNES = Numeric(14, 3)
PRICE = Numeric(12, 2)


class AwardStatus(enum.StrEnum):
    OPEN = "open"  #: waiting for the contract to be signed
    CONTRACTED = "contracted"  #: the contract was signed by both parties
    LAPSED = "lapsed"  #: not signed in time; the award ladder moved on


class Bid(Base):
    """One bid on an auction or tender lot. A revision is a new row; the old one is superseded.

    Rows are never deleted: the bid history of a lot is its revision chains. Within a lot, ids
    grow in commit order because every bid is inserted under the lot's row lock.
    """

    __tablename__ = "bids"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "min_quantity IS NULL OR (min_quantity > 0 AND min_quantity <= quantity)",
            name="min_quantity_in_range",
        ),
        CheckConstraint(
            "filled_quantity >= 0 AND filled_quantity <= quantity", name="filled_in_range"
        ),
        UniqueConstraint("company_id", "idempotency_key"),
        # One live bid per company and lot (auction and tender alike): a second bid revises it.
        Index(
            "uq_bids_lot_id_company_id_live",
            "lot_id",
            "company_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_bids_lot_id_status", "lot_id", "status"),
        Index("ix_bids_company_id_placed_at", "company_id", "placed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"))
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    #: The user who placed it (kept if the user later leaves the company).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The client's address (also covered by a sealed bid's commitment).
    ip: Mapped[str | None] = mapped_column(String(45))
    #: Signed CNY per tonne (negative = the producer pays the buyer this disposal fee).
    price: Mapped[Decimal] = mapped_column(PRICE)
    quantity: Mapped[Decimal] = mapped_column(TONNES)
    #: The smallest partial fill the bidder accepts; None = the lot's minimum order.
    min_quantity: Mapped[Decimal | None] = mapped_column(TONNES)
    #: The buyer's declared end use (catalog code), checked against the lot's compliance gates.
    end_use: Mapped[str] = mapped_column(String(30))
    status: Mapped[BidStatus] = mapped_column(_enum(BidStatus, 16), default=BidStatus.ACTIVE)
    placed_at: Mapped[dt.datetime]
    #: When the status last changed (superseded, withdrawn, won, lost, lapsed).
    updated_at: Mapped[dt.datetime | None]
    #: Tonnes allocated at close or by the award ladder.
    filled_quantity: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    #: The company's earlier bid that this one revises (the revision chain; see ``superseded_by``).
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("bids.id", ondelete="RESTRICT"), unique=True
    )
    #: Chosen by the client per submission so a retried or double-clicked form bids once.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    #: Sealed tenders: the random nonce of the commitment recorded in the audit chain.
    seal_nonce: Mapped[str | None] = mapped_column(String(32))

    lot: Mapped[Lot] = relationship()
    company: Mapped[Company] = relationship()
    user: Mapped[User | None] = relationship()
    #: The revision that replaced this bid (the next link of the chain), if any.
    superseded_by: Mapped[Bid | None] = relationship(
        primaryjoin="remote(Bid.supersedes_id) == Bid.id", viewonly=True, uselist=False
    )


class ReserveDecision(enum.StrEnum):
    NOT_NEEDED = "not_needed"  #: the reserve was met (or there was none)
    PENDING = "pending"  #: the producer may accept the best bids below the reserve
    ACCEPTED = "accepted"  #: the producer accepted below the reserve
    DECLINED = "declined"  #: the producer declined; only bids at or above the reserve win
    EXPIRED = "expired"  #: the window passed without a decision; treated as declined


class LotClosing(Base):
    """The one closing of an auction, tender or buy-now lot (unique per lot: closed once)."""

    __tablename__ = "lot_closings"
    __table_args__ = (
        CheckConstraint(
            "allocated_quantity >= 0 AND allocated_quantity <= lot_quantity",
            name="allocated_in_range",
        ),
        Index("ix_lot_closings_decision_decision_due_at", "decision", "decision_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"), unique=True)
    sale_mode: Mapped[SaleMode] = mapped_column(_enum(SaleMode, 12))
    closed_at: Mapped[dt.datetime]
    lot_quantity: Mapped[Decimal] = mapped_column(TONNES)
    #: Tonnes awarded at close (0 while a reserve decision is pending).
    allocated_quantity: Mapped[Decimal] = mapped_column(TONNES, default=Decimal(0))
    bid_count: Mapped[int] = mapped_column(Integer, default=0)
    reserve_met: Mapped[bool] = mapped_column(default=True)
    decision: Mapped[ReserveDecision] = mapped_column(
        _enum(ReserveDecision, 12), default=ReserveDecision.NOT_NEEDED
    )
    #: Until when the producer may accept the best bids below the reserve.
    decision_due_at: Mapped[dt.datetime | None]
    decided_at: Mapped[dt.datetime | None]
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    lot: Mapped[Lot] = relationship()

    @property
    def below_reserve_accepted(self) -> bool:
        return self.decision is ReserveDecision.ACCEPTED


class NoticeKind(enum.StrEnum):
    OUTBID = "outbid"  #: a provisionally winning bid was pushed out
    WINNING = "winning"  #: a bid moved back into the provisional winners
    WON = "won"
    LOST = "lost"
    AWARDED = "awarded"  #: tonnage came down the award ladder
    RESERVE_DECISION = "reserve_decision"  #: to the producer: bids below the reserve
    CLOSED = "closed"  #: to the producer: the lot closed


class TradeNotice(Base):
    """An in-app notice to a company about its bids or lots, e-mailed by a job after commit.

    Written in the trading transaction (one cheap insert) so the hot path renders no e-mail.
    """

    __tablename__ = "trade_notices"
    __table_args__ = (
        Index("ix_trade_notices_company_id_id", "company_id", "id"),
        Index("ix_trade_notices_emailed_at", "emailed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    #: The user to e-mail (the bidder, or for producers None = the company's owners).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    bid_id: Mapped[int | None] = mapped_column(ForeignKey("bids.id", ondelete="CASCADE"))
    kind: Mapped[NoticeKind] = mapped_column(_enum(NoticeKind, 20))
    created_at: Mapped[dt.datetime]
    emailed_at: Mapped[dt.datetime | None]

    lot: Mapped[Lot] = relationship()


class Award(Base):
    """Tonnage of a lot awarded to one buyer at one signed price (buy-now, auction or tender)."""

    __tablename__ = "awards"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_awards_lot_id_status", "lot_id", "status"),
        Index("ix_awards_buyer_id", "buyer_id"),
        UniqueConstraint("buyer_id", "idempotency_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    #: The winning bid (auction/tender); None for buy-now.
    bid_id: Mapped[int | None] = mapped_column(ForeignKey("bids.id", ondelete="RESTRICT"))
    #: buy_now | auction | tender | ladder (passed down after a lapse)
    source: Mapped[str] = mapped_column(String(20))
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    #: Signed CNY per tonne (negative = disposal fee paid by the producer).
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    #: The buyer's declared end use, checked against the lot's compliance gates.
    end_use: Mapped[str | None] = mapped_column(String(30))
    status: Mapped[AwardStatus] = mapped_column(
        Enum(
            AwardStatus,
            native_enum=False,
            length=12,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=AwardStatus.OPEN,
    )
    #: The contract must be signed by both parties before this time, else the award lapses.
    sign_by: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    #: Buy-now: the client's key for this purchase, so a resubmitted form buys once.
    idempotency_key: Mapped[str | None] = mapped_column(String(64))
    #: Set when ``award_lapsed`` ran the ladder for this award (it runs once).
    lapsed_at: Mapped[dt.datetime | None]
    #: A ladder award: the lapsed award whose tonnage it took over.
    lapsed_award_id: Mapped[int | None] = mapped_column(
        ForeignKey("awards.id", ondelete="RESTRICT")
    )

    lot: Mapped[Lot] = relationship()
    buyer: Mapped[Company] = relationship()
