"""Trading tables. ``Award`` is the hand-over to the contracts context."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

from sqlalchemy import CheckConstraint, Enum, ForeignKey, Index, Numeric, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company
from exchange.db import Base
from exchange.listings.models import Lot


class AwardStatus(enum.StrEnum):
    OPEN = "open"  #: waiting for the contract to be signed
    CONTRACTED = "contracted"  #: the contract was signed by both parties
    LAPSED = "lapsed"  #: not signed in time; the award ladder moved on


class Award(Base):
    """Tonnage of a lot awarded to one buyer at one signed price (buy-now, auction or tender)."""

    __tablename__ = "awards"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_awards_lot_id_status", "lot_id", "status"),
        Index("ix_awards_buyer_id", "buyer_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="RESTRICT"))
    buyer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    #: The winning bid (auction/tender); None for buy-now.
    bid_id: Mapped[int | None]
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

    lot: Mapped[Lot] = relationship()
    buyer: Mapped[Company] = relationship()
