"""Buyers' demands (with accepted materials and spec windows) and the stored matches."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchange.accounts.models import Company, Site
from exchange.catalog.parameters import ASSAY_PARAMETERS, DERIVED_QUANTITIES
from exchange.db import Base, UTCDateTime
from exchange.demand.freight import TransportMode
from exchange.demand.rules import DemandStatus, SpecWindow, Visibility
from exchange.listings.models import Lot
from exchange.listings.rules import Recurrence


def _enum(cls: type, length: int = 12) -> Enum:
    return Enum(
        cls,
        native_enum=False,
        length=length,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


TONNES = Numeric(14, 3)
PRICE = Numeric(12, 2)
ASSAY = Numeric(16, 4)


class Demand(Base):
    """What a buyer wants delivered: quantities and prices per dry tonne, delivered to its site."""

    __tablename__ = "demands"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "min_lot_size > 0 AND min_lot_size <= quantity", name="min_lot_size_in_range"
        ),
        CheckConstraint("window_end >= window_start", name="window_order"),
        CheckConstraint("accepts_road OR accepts_rail OR accepts_water", name="has_a_mode"),
        Index("ix_demands_status_end_use", "status", "end_use"),
        Index("ix_demands_buyer_id_status", "buyer_id", "status"),
        Index("ix_demands_status_visibility_province", "status", "visibility", "province"),
        Index("ix_demands_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    #: Catalog end use (``exchange.catalog.materials.EndUse``); its compliance gates apply.
    end_use: Mapped[str] = mapped_column(String(30))
    #: Dry tonnes: the whole need (one-off) or per month (monthly).
    quantity: Mapped[Decimal] = mapped_column(TONNES)
    recurrence: Mapped[Recurrence] = mapped_column(_enum(Recurrence))
    #: The smallest lot worth buying, in dry tonnes (lots with less remaining do not match).
    min_lot_size: Mapped[Decimal] = mapped_column(TONNES)
    #: One of the buyer's sites.
    delivery_site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    #: Copied from the delivery site for the wanted board's province filter.
    province: Mapped[str] = mapped_column(String(2))
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    #: Signed CNY per dry tonne DELIVERED (price + freight). Negative = the buyer wants to be
    #: paid at least this much per tonne to take the material.
    max_price: Mapped[Decimal] = mapped_column(PRICE)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    accepts_road: Mapped[bool] = mapped_column(Boolean, default=True)
    accepts_rail: Mapped[bool] = mapped_column(Boolean, default=False)
    accepts_water: Mapped[bool] = mapped_column(Boolean, default=False)
    visibility: Mapped[Visibility] = mapped_column(_enum(Visibility))
    status: Mapped[DemandStatus] = mapped_column(_enum(DemandStatus), default=DemandStatus.OPEN)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    #: Set by every service that changes the demand; the matching sweep looks at it.
    updated_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    #: When the demand's matches were last computed (its column); NULL or before
    #: ``updated_at`` while the background recompute queued by its last change is pending.
    matched_at: Mapped[dt.datetime | None]

    buyer: Mapped[Company] = relationship()
    delivery_site: Mapped[Site] = relationship()
    materials: Mapped[list[DemandMaterial]] = relationship(
        back_populates="demand",
        cascade="all, delete-orphan",
        order_by="DemandMaterial.id",
    )
    specs: Mapped[list[DemandSpec]] = relationship(
        back_populates="demand", cascade="all, delete-orphan", order_by="DemandSpec.id"
    )

    @property
    def number(self) -> str:
        return f"D{self.id:06d}"

    @property
    def matches_pending(self) -> bool:
        """Whether an open demand's matches are still being computed after its last change."""
        if self.status is not DemandStatus.OPEN:
            return False
        if self.matched_at is None:
            return True
        return self.updated_at is not None and self.matched_at < self.updated_at

    @property
    def modes(self) -> tuple[TransportMode, ...]:
        flags = (
            (TransportMode.ROAD, self.accepts_road),
            (TransportMode.RAIL, self.accepts_rail),
            (TransportMode.WATER, self.accepts_water),
        )
        return tuple(mode for mode, on in flags if on)

    @property
    def families(self) -> list[str]:
        return list(dict.fromkeys(m.material_family for m in self.materials))

    @property
    def material_codes(self) -> list[str]:
        return [m.material_code for m in self.materials if m.material_code]

    @property
    def windows(self) -> tuple[SpecWindow, ...]:
        return tuple(s.window for s in self.specs)


class DemandMaterial(Base):
    """An accepted material: a whole family (``material_code`` NULL) or one material of it."""

    __tablename__ = "demand_materials"
    __table_args__ = (
        UniqueConstraint("demand_id", "material_family", "material_code"),
        Index("ix_demand_materials_family_code", "material_family", "material_code", "demand_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"))
    material_family: Mapped[str] = mapped_column(String(20))
    material_code: Mapped[str | None] = mapped_column(String(40))

    demand: Mapped[Demand] = relationship(back_populates="materials")


class DemandSpec(Base):
    """A spec window: ``min_value ≤ value ≤ max_value`` on a parameter or derived quantity."""

    __tablename__ = "demand_specs"
    __table_args__ = (
        UniqueConstraint("demand_id", "parameter"),
        CheckConstraint("min_value IS NOT NULL OR max_value IS NOT NULL", name="has_a_bound"),
        CheckConstraint(
            "min_value IS NULL OR max_value IS NULL OR min_value <= max_value",
            name="window_order",
        ),
        Index("ix_demand_specs_parameter_demand_id", "parameter", "demand_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"))
    #: Catalog parameter code or derived quantity ("Na2O+K2O", "I_Ra", "I_r").
    parameter: Mapped[str] = mapped_column(String(12))
    min_value: Mapped[Decimal | None] = mapped_column(ASSAY)
    max_value: Mapped[Decimal | None] = mapped_column(ASSAY)

    demand: Mapped[Demand] = relationship(back_populates="specs")

    @property
    def window(self) -> SpecWindow:
        return SpecWindow(self.parameter, self.min_value, self.max_value)


class Match(Base):
    """A lot that passes every hard constraint of a demand, with the figures that rank it.

    Rows are recomputed per lot or per demand (never the whole cross product); a pair that stops
    matching loses its row. All money is per dry tonne, signed.

    The explanation of every constraint is not stored: ``matching.explain`` evaluates the pair
    again when it is read. Storing it for every pair made a lot's recompute build, send and
    write a couple of kilobytes per matching demand, most of the slowest recomputes' time.
    """

    __tablename__ = "matches"
    # ``explanation`` below is a plain attribute, not a column.
    __allow_unmapped__ = True
    __table_args__ = (
        UniqueConstraint("lot_id", "demand_id"),
        Index("ix_matches_demand_id_landed_cost", "demand_id", "landed_cost"),
        Index("ix_matches_lot_id_net_price", "lot_id", "net_price"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"))
    #: Cheapest accepted transport mode.
    mode: Mapped[str] = mapped_column(String(8))
    distance_km: Mapped[Decimal] = mapped_column(Numeric(9, 1))
    #: CNY per dry tonne, handling included.
    freight: Mapped[Decimal] = mapped_column(PRICE)
    #: The lot's price per dry tonne + freight.
    landed_cost: Mapped[Decimal] = mapped_column(PRICE)
    #: The demand's maximum delivered price − freight: the best the producer can get ex works.
    net_price: Mapped[Decimal] = mapped_column(PRICE)
    #: kg CO2 per dry tonne for the transport.
    co2_kg_per_t: Mapped[Decimal] = mapped_column(Numeric(10, 2))
    #: Smallest relative margin inside the spec windows; NULL when the demand has none.
    margin_score: Mapped[Decimal | None] = mapped_column(Numeric(14, 4))
    #: Share of the demand the lot can supply (0–1).
    coverage: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    #: When the pair first matched (kept across recomputes).
    first_matched_at: Mapped[dt.datetime]
    computed_at: Mapped[dt.datetime]

    lot: Mapped[Lot] = relationship()
    demand: Mapped[Demand] = relationship()

    #: Every constraint with its value, limit and margin, the route and the alternatives
    #: (``rules.explanation``); set by ``matching.explain``, None on a row read otherwise.
    explanation: dict[str, Any] | None = None


class MatchSweep(Base):
    """One run of the periodic matching sweep: lots and demands changed since the previous run."""

    __tablename__ = "match_sweeps"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    lots: Mapped[int] = mapped_column(Integer, default=0)
    demands: Mapped[int] = mapped_column(Integer, default=0)
    expired: Mapped[int] = mapped_column(Integer, default=0)
    #: True when the run rebuilt everything (first run, or the administrators' command).
    full: Mapped[bool] = mapped_column(Boolean, default=False)


class MatchNotice(Base):
    """Which side was told about a pair, so that no pair is announced twice to the same side."""

    __tablename__ = "match_notices"
    __table_args__ = (UniqueConstraint("lot_id", "demand_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    demand_id: Mapped[int] = mapped_column(ForeignKey("demands.id", ondelete="CASCADE"))
    buyer_notified_at: Mapped[dt.datetime | None]
    producer_notified_at: Mapped[dt.datetime | None]


class MatchAlertSetting(Base):
    """A user's match alerts (in-app notice, and e-mail); users without a row get defaults."""

    __tablename__ = "match_alert_settings"
    __table_args__ = (CheckConstraint("min_headroom >= 0", name="headroom_not_negative"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    #: Tell me about new lots matching my company's demands.
    as_buyer: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Tell me about new demands matching my company's lots.
    as_producer: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Only announce a match whose headroom (maximum delivered price − landed cost, CNY per dry
    #: tonne) is at least this much: the surplus a deal at that pair can split.
    min_headroom: Mapped[Decimal] = mapped_column(PRICE, default=Decimal(0))
    #: Also send an e-mail (the in-app notice is always left).
    by_email: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


# --- The lots as matching sees them -------------------------------------------------------------


def quantity_column(code: str) -> str:
    """The ``match_lots`` column of a parameter or derived quantity ("Na2O+K2O" → "q_na2o_k2o")."""
    return "q_" + re.sub(r"[^a-z0-9]+", "_", code.lower()).strip("_")


#: Every quantity a spec window or a compliance gate can name.
MATCH_QUANTITIES = (*ASSAY_PARAMETERS, *DERIVED_QUANTITIES)

#: One row per published lot: its terms on a dry basis, its storage coordinates and one column
#: per assay quantity (derived ones computed as the rules compute them). The demand-side
#: prefilter scans this table with plain column predicates, which measured ~20 times faster
#: than set operations over ``assay_values``. Matching keeps it: a lot's row is rewritten when
#: the lot is recomputed, and rows older than their lot's last change are refreshed first.
match_lots = Table(
    "match_lots",
    Base.metadata,
    Column("lot_id", Integer, ForeignKey("lots.id", ondelete="CASCADE"), primary_key=True),
    Column("producer_id", Integer, nullable=False),
    Column("material_family", String(20), nullable=False),
    Column("material_code", String(40), nullable=False),
    #: Waste-law gates apply (red mud, co-wastes) or not (products).
    Column("solid_waste", Boolean, nullable=False),
    #: Signed CNY per dry tonne.
    Column("price_dry", Numeric(14, 4), nullable=False),
    Column("remaining_dry", TONNES, nullable=False),
    Column("min_order_dry", TONNES, nullable=False),
    Column("available_from", Date, nullable=False),
    Column("available_until", Date),
    Column("latitude", Numeric(9, 6), nullable=False),
    Column("longitude", Numeric(9, 6), nullable=False),
    *(Column(quantity_column(code), ASSAY) for code in MATCH_QUANTITIES),
    Column("refreshed_at", UTCDateTime(), nullable=False),
    # Narrow, so the staleness check reads an index instead of the wide rows.
    Index("ix_match_lots_lot_id_refreshed_at", "lot_id", "refreshed_at"),
)
