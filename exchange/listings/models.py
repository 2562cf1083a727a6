"""Lots, their assays and certificates, and producers' monthly generation reports."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    event,
    func,
    inspect,
)
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from exchange.accounts.models import Company, Site
from exchange.db import Base, enum_column
from exchange.listings.rules import (
    Basis,
    DeliveryTerms,
    LotStatus,
    Recurrence,
    SaleMode,
    unit_vector,
)

TONNES = Numeric(14, 3)
PRICE = Numeric(12, 2)


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("remaining >= 0 AND remaining <= quantity", name="remaining_in_range"),
        CheckConstraint("min_order > 0 AND min_order <= quantity", name="min_order_in_range"),
        CheckConstraint(
            "moisture_pct IS NULL OR (moisture_pct >= 0 AND moisture_pct < 100)",
            name="moisture_range",
        ),
        CheckConstraint("min_increment IS NULL OR min_increment > 0", name="increment_positive"),
        CheckConstraint(
            "monthly_quantity IS NULL OR monthly_quantity > 0", name="monthly_quantity_positive"
        ),
        CheckConstraint(
            "anti_snipe_minutes >= 0 AND anti_snipe_minutes <= 120", name="anti_snipe_range"
        ),
        CheckConstraint(
            "available_until IS NULL OR available_until >= available_from", name="window_order"
        ),
        Index("ix_lots_status_material", "status", "material_family", "material_code"),
        # The catalogue sorts by (key, id): with ``id`` in the index a page is read in order
        # and the scan stops after it, even where many lots share a price or a quantity.
        Index("ix_lots_status_price", "status", "price", "id"),
        Index("ix_lots_status_published_at", "status", "published_at", "id"),
        Index("ix_lots_status_province", "status", "province"),
        Index("ix_lots_producer_id_status", "producer_id", "status"),
        Index("ix_lots_closes_at_open", "closes_at", "status"),
        # The catalogue's "quantity" sort walks this like the price and newest sorts above.
        Index("ix_lots_status_remaining", "status", "remaining", "id"),
        # Text search: ``search_text LIKE '%word%'`` served by a trigram index on PostgreSQL.
        # SQLite has no such index (the embedded default is small); the migration creates it on
        # PostgreSQL only and ``migrations/env.py`` skips it elsewhere.
        Index(
            "ix_lots_search_text_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
            info={"only_on": "postgresql"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("companies.id", ondelete="RESTRICT"))
    #: Storage site the material leaves from (one of the producer's sites).
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    #: Catalog material code (``exchange.catalog.materials.MATERIALS``).
    material_code: Mapped[str] = mapped_column(String(40))
    #: Copied from the catalog so the catalogue filters without a lookup.
    material_family: Mapped[str] = mapped_column(String(20))
    #: Copied from the storage site for the province filter.
    province: Mapped[str] = mapped_column(String(2))
    #: Copied from the storage site so the catalogue lists places without a join.
    city: Mapped[str] = mapped_column(String(80), server_default="")
    #: The storage site as a unit vector (x, y, z) on the sphere, copied from its coordinates.
    #: Great-circle distance grows with the chord ``|v - v0|``, so the catalogue sorts by
    #: distance with plain arithmetic in SQL (no trigonometry per row, same on every backend).
    geo_x: Mapped[float | None] = mapped_column(Float)
    geo_y: Mapped[float | None] = mapped_column(Float)
    geo_z: Mapped[float | None] = mapped_column(Float)
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str | None] = mapped_column(String(200))
    description_zh: Mapped[str | None] = mapped_column(Text)
    description_en: Mapped[str | None] = mapped_column(Text)
    #: Lower-cased number, titles and descriptions in both languages, for the text search.
    search_text: Mapped[str] = mapped_column(Text, server_default="")

    #: Tonnes listed, on the stated basis.
    quantity: Mapped[Decimal] = mapped_column(TONNES)
    #: Tonnes not yet sold or allocated; only ever decreases under the lot's row lock.
    remaining: Mapped[Decimal] = mapped_column(TONNES)
    basis: Mapped[Basis] = mapped_column(enum_column(Basis))
    moisture_pct: Mapped[Decimal | None] = mapped_column(Numeric(5, 2))
    min_order: Mapped[Decimal] = mapped_column(TONNES)
    recurrence: Mapped[Recurrence] = mapped_column(enum_column(Recurrence))
    #: For recurring supply: tonnes available per month.
    monthly_quantity: Mapped[Decimal | None] = mapped_column(TONNES)
    available_from: Mapped[dt.date] = mapped_column(Date)
    available_until: Mapped[dt.date | None] = mapped_column(Date)

    sale_mode: Mapped[SaleMode] = mapped_column(enum_column(SaleMode))
    #: Signed CNY per tonne: the buy-now price or the auction/tender start price.
    #: Negative = a disposal fee the producer pays the buyer.
    price: Mapped[Decimal] = mapped_column(PRICE)
    #: Hidden reserve (auction/tender); never shown to buyers.
    reserve_price: Mapped[Decimal | None] = mapped_column(PRICE)
    min_increment: Mapped[Decimal | None] = mapped_column(PRICE)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    opens_at: Mapped[dt.datetime | None]
    #: Current close, moved later by anti-sniping up to ``hard_close_at``.
    closes_at: Mapped[dt.datetime | None]
    hard_close_at: Mapped[dt.datetime | None]
    anti_snipe_minutes: Mapped[int] = mapped_column(Integer, default=5)
    delivery_terms: Mapped[DeliveryTerms] = mapped_column(enum_column(DeliveryTerms))

    status: Mapped[LotStatus] = mapped_column(enum_column(LotStatus), default=LotStatus.DRAFT)
    #: The moderator's reason for the last rejection, shown to the producer.
    status_note: Mapped[str | None] = mapped_column(String(500))
    #: When the producer last sent the lot for review (the moderation queue's order).
    submitted_at: Mapped[dt.datetime | None]
    published_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime | None]

    producer: Mapped[Company] = relationship()
    site: Mapped[Site] = relationship()
    assay: Mapped[Assay | None] = relationship(back_populates="lot", uselist=False)
    certificates: Mapped[list[Certificate]] = relationship(
        back_populates="lot", order_by="Certificate.id"
    )
    end_uses: Mapped[list[LotEndUse]] = relationship(
        back_populates="lot", cascade="all, delete-orphan", order_by="LotEndUse.end_use"
    )

    @property
    def number(self) -> str:
        return f"L{self.id:06d}"

    def title(self, locale: str) -> str:
        if not locale.startswith("zh") and self.title_en:
            return self.title_en
        return self.title_zh

    def description(self, locale: str) -> str | None:
        if not locale.startswith("zh") and self.description_en:
            return self.description_en
        return self.description_zh or self.description_en

    @property
    def sold(self) -> Decimal:
        """Tonnes sold or allocated so far."""
        return self.quantity - self.remaining

    def derive(self, site: Site | None) -> None:
        """Refresh the columns copied for the catalogue: search text, and place from ``site``."""
        parts = (self.title_zh, self.title_en, self.description_zh, self.description_en)
        self.search_text = " ".join(p for p in parts if p).casefold()
        if site is not None:
            self.city = site.city
            self.province = site.province
            self.geo_x, self.geo_y, self.geo_z = unit_vector(site.latitude, site.longitude)


# Nearest-first walks for the catalogue's distance sort on PostgreSQL: a KNN GiST index on the
# site's unit vector as a ``cube`` point, whose Euclidean ``<->`` is the chord, so the index order
# is great-circle order. PostgreSQL only (like the trigram index above).
Index(
    "ix_lots_geo_knn",
    func.cube(array([Lot.geo_x, Lot.geo_y, Lot.geo_z])),
    postgresql_using="gist",
    info={"only_on": "postgresql"},
).ddl_if(dialect="postgresql")


@event.listens_for(Session, "before_flush")
def _derive_lot_columns(session: Session, _context: object, _instances: object) -> None:
    """Keep the copied catalogue columns right whoever writes a lot (services, tests, demo)."""
    lots = [obj for obj in (*session.new, *session.dirty) if isinstance(obj, Lot)]
    with session.no_autoflush:
        for lot in lots:
            moved = lot.geo_x is None or inspect(lot).attrs.site_id.history.has_changes()
            lot.derive(session.get(Site, lot.site_id) if moved else None)


class Assay(Base):
    """The lab assay a lot is sold on (one per lot; a replacement is audited)."""

    __tablename__ = "assays"

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), unique=True)
    lab_name: Mapped[str] = mapped_column(String(200))
    #: CMA/CNAS accreditation number of the laboratory.
    accreditation_no: Mapped[str | None] = mapped_column(String(80))
    sampled_on: Mapped[dt.date] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    lot: Mapped[Lot] = relationship(back_populates="assay")
    values: Mapped[list[AssayValue]] = relationship(
        back_populates="assay", cascade="all, delete-orphan", order_by="AssayValue.id"
    )


class AssayValue(Base):
    """One measured parameter. ``lot_id`` is repeated so spec filters need no join."""

    __tablename__ = "assay_values"
    __table_args__ = (
        UniqueConstraint("assay_id", "parameter"),
        Index("ix_assay_values_parameter_value_lot_id", "parameter", "value", "lot_id"),
        Index("ix_assay_values_lot_id_parameter", "lot_id", "parameter"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    assay_id: Mapped[int] = mapped_column(ForeignKey("assays.id", ondelete="CASCADE"))
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    #: Catalog parameter code (``exchange.catalog.parameters``), unit implied by the code.
    parameter: Mapped[str] = mapped_column(String(12))
    value: Mapped[Decimal] = mapped_column(Numeric(16, 4))

    assay: Mapped[Assay] = relationship(back_populates="values")


class LotEndUse(Base):
    """The grading verdict of a lot's assay for one end use (fit / unfit / unknown)."""

    __tablename__ = "lot_end_uses"
    __table_args__ = (
        UniqueConstraint("lot_id", "end_use"),
        Index("ix_lot_end_uses_end_use_fitness_lot_id", "end_use", "fitness", "lot_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"))
    end_use: Mapped[str] = mapped_column(String(30))
    fitness: Mapped[str] = mapped_column(String(10))
    #: A compliance gate blocks this use (hazardous, radioactivity, heavy metals).
    gated: Mapped[bool] = mapped_column(default=False)

    lot: Mapped[Lot] = relationship(back_populates="end_uses")


class Certificate(Base):
    """An uploaded certificate or photo, stored outside ``static/`` under its SHA-256."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("lot_id", "sha256"),
        CheckConstraint("size_bytes > 0", name="size_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(ForeignKey("lots.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  #: certificate | photo
    #: A sanitised display name; never used as a path.
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(40))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())

    lot: Mapped[Lot] = relationship(back_populates="certificates")


class MonthlyGeneration(Base):
    """Tonnes of new red mud a plant generated in a month (the utilization denominator)."""

    __tablename__ = "monthly_generation"
    __table_args__ = (
        UniqueConstraint("site_id", "month"),
        CheckConstraint("tonnes >= 0", name="tonnes_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(
        ForeignKey("companies.id", ondelete="CASCADE"), index=True
    )
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    #: First day of the month.
    month: Mapped[dt.date] = mapped_column(Date)
    tonnes: Mapped[Decimal] = mapped_column(TONNES)
    #: Dry basis; generation is reported dry so it adds up with deliveries converted to dry.
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[dt.datetime | None]


class CatalogueVersion(Base):
    """One row counting committed changes to what the public catalogue shows (lots, their
    assays and end uses, sites). Cached catalogue fragments are keyed by it
    (``exchange.listings.freshness``), so a change is shown on the next request."""

    __tablename__ = "catalogue_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
